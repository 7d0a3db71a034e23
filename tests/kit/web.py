"""web: ports and HTTP, the way the tests speak it.

    r = web.get(url)                      # Response(status, headers, body)
    r = web.try_get(url)                  # status None on a connection error
    raw = web.raw_exchange(port, b"HEAD / HTTP/1.1\\r\\n...")
    rs = web.batch(url, 16)               # 16 concurrent GETs
    with web.Clients("127.0.0.1", port, paths, 8) as c: ...   # kept connections
    port = web.free_port()                # in TFB_TEST_PORTS

Python standard library only.
"""

import concurrent.futures
import gzip
import http.client
import os
import re
import socket
import threading
import time
import urllib.parse
import zlib

# Ports the tests may listen on, "LO-HI": 28080-28099 unless TFB_TEST_PORTS
# names others (several people running tests on one machine each take a
# range of their own).
PORT_RANGE = os.environ.get("TFB_TEST_PORTS", "28080-28099")
_taken_ports = set()


def port_is_free(port, host="127.0.0.1"):
    """True when nothing listens on host:port and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers do: a TIME-WAIT connection that happens to use
        # the port on its local side does not stop them from listening.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) != 0


def free_port():
    """A port in PORT_RANGE that nothing uses and that this process has
    not handed out yet; an ephemeral port when the range is exhausted."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", PORT_RANGE)
    if m:
        ports = list(range(int(m.group(1)), int(m.group(2)) + 1))
        # Start at a place of our own, so that test files run side by side
        # seldom race for the same port.
        k = os.getpid() % len(ports) if ports else 0
        for port in ports[k:] + ports[:k]:
            if port not in _taken_ports and port_is_free(port):
                _taken_ports.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _taken_ports.add(port)
    return port


class Headers:
    """Case-insensitive response headers.  A repeated header is joined
    with ", " (what requests does); .items() keeps the original order."""

    def __init__(self, pairs=()):
        self._items = list(pairs)
        self._map = {}
        for k, v in self._items:
            key = k.lower()
            self._map[key] = v if key not in self._map else self._map[key] + ", " + v

    def get(self, name, default=None):
        return self._map.get(name.lower(), default)

    def __contains__(self, name):
        return name.lower() in self._map

    def __getitem__(self, name):
        return self._map[name.lower()]

    def items(self):
        return list(self._items)

    def __repr__(self):
        return "Headers(%r)" % self._items


class Response:
    __slots__ = ("status", "headers", "body", "elapsed")

    def __init__(self, status, headers, body, elapsed=0.0):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def __iter__(self):  # status, headers, body = get(...)
        return iter((self.status, self.headers, self.body))

    def summary(self, limit=300):
        """One line for diagnostics: status, content type, body start."""
        more = "..." if len(self.body) > limit else ""
        return "HTTP %s, Content-Type %r, %d body bytes: %r%s" % (
            self.status, self.headers.get("Content-Type"), len(self.body),
            self.body[:limit], more)


# What requests 2.x sends, so that the server sees the verifier's request.
DEFAULT_HEADERS = {
    "User-Agent": "python-requests/2.31.0",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}


def _decode(body, encoding):
    encoding = (encoding or "").lower().strip()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


def request(method, url, headers=None, body=None, timeout=15):
    """One request on a fresh connection.  Returns a Response whose body
    is decoded from gzip/deflate like requests would.  Raises OSError /
    http.client.HTTPException (socket.timeout on a timeout)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query or url.endswith("?"):
        target += "?" + parts.query
    hdrs = dict(DEFAULT_HEADERS)
    hdrs.update(headers or {})
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        h = Headers(resp.getheaders())
        return Response(resp.status, h, _decode(data, h.get("Content-Encoding")),
                        time.monotonic() - t0)
    finally:
        conn.close()


def get(url, accept=None, timeout=15):
    return request("GET", url, {"Accept": accept} if accept else None, timeout=timeout)


def try_get(url, accept=None, timeout=15):
    """get(), but a connection error or timeout comes back as a Response
    with status None and the error text as its body."""
    try:
        return get(url, accept, timeout)
    except (OSError, http.client.HTTPException) as e:
        return Response(None, Headers(), ("%s: %s" % (type(e).__name__, e)).encode())


def batch(url, n, timeout=10, accept=None):
    """n concurrent try_get(url): a list of Responses."""
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(lambda _: try_get(url, accept, timeout), range(n)))


def read_response(fp, method="GET"):
    """Read one HTTP/1.x response from a binary file object (so that
    pipelined responses can be read one after the other).  Returns a
    Response; raises ValueError on a malformed one, EOFError on EOF."""
    line = fp.readline(65537)
    if not line:
        raise EOFError("connection closed before a status line")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", line)
    if not m:
        raise ValueError("bad status line %r" % line)
    status = int(m.group(1))
    pairs = []
    while True:
        line = fp.readline(65537)
        if not line:
            raise EOFError("connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode("latin-1").partition(":")
        pairs.append((k.strip(), v.strip()))
    h = Headers(pairs)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, h, b"")
    if "chunked" in (h.get("Transfer-Encoding") or "").lower():
        body = b""
        while True:
            size = int(fp.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while fp.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += fp.read(size)
            fp.readline(3)
        return Response(status, h, body)
    if h.get("Content-Length") is not None:
        return Response(status, h, fp.read(int(h.get("Content-Length"))))
    return Response(status, h, fp.read())


def raw_exchange(port, data, timeout=10, host="127.0.0.1"):
    """Send raw bytes, read until the server closes (or timeout); return
    all bytes received.  For what http.client hides: HEAD bodies."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def head_status(port, path, host="127.0.0.1"):
    """The status of a HEAD of path on a connection of its own (None when
    no status line came), and the raw answer."""
    raw = raw_exchange(port, ("HEAD %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                              % (path, host, port)).encode())
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return (int(m.group(1)) if m else None), raw


def pipelined(port, paths, timeout=10, host="127.0.0.1"):
    """Send GETs for all paths at once on one connection, then read the
    responses in order.  Returns a list of Responses (may be shorter
    than paths when the server closes early)."""
    req = b"".join(
        ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n" % (p, host, port)).encode()
        for p in paths)
    out = []
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        fp = s.makefile("rb")
        for _ in paths:
            try:
                out.append(read_response(fp))
            except (EOFError, ValueError, OSError):
                break
    return out


class Clients:
    """concurrency clients, each on a kept HTTP/1.1 connection of its own,
    each cycling through paths (client k starting at path k), until
    stop() or max_s seconds.  results: one (start, end, path, status,
    body) per request, start taken before the first byte leaves and end
    once the answer has fully arrived; status None and the error as body
    when the connection failed (the client then opens a new one)."""

    def __init__(self, host, port, paths, concurrency, max_s=30):
        self.host, self.port = host, port
        self.paths, self.max_s = paths, max_s
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(k,), daemon=True)
                         for k in range(concurrency)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def run(self):
        """Start, and return once every client has run its max_s."""
        self.__enter__()
        for t in self._threads:
            t.join(self.max_s + 15)
        return self.results

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.max_s + 15)

    def _client(self, k):
        conn, mine = None, []
        end = time.monotonic() + self.max_s
        i = k
        while not self._stop.is_set() and time.monotonic() < end:
            path = self.paths[i % len(self.paths)]
            i += 1
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
                conn.request("GET", path)
                r = conn.getresponse()
                status, body = r.status, r.read()
                if r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                status, body = None, "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            mine.append((t0, time.monotonic(), path, status, body))
        if conn is not None:
            conn.close()
        with self._lock:
            self.results.extend(mine)

    def failed(self):
        return [r for r in self.results if r[3] != 200]

    def summary(self):
        """/db {200: 12, None: 1}, ...: the statuses by route."""
        by = {}
        for _, _, path, status, _ in self.results:
            route = by.setdefault(path.split("?")[0], {})
            route[status] = route.get(status, 0) + 1
        return ", ".join("%s %s" % (p, by[p]) for p in sorted(by))
