"""lib.py: what every integration test needs, and nothing else.

    tap = lib.TAP()                      # "ok N - ..." / "not ok N - ..." lines
    with lib.Stack(server="nginx", workers=4, tap=tap) as st:
        r = lib.get(st.url("/json"))     # Response(status, headers, body)
        st.psql("SELECT 1")              # deploy/stack psql -At -c ...

A test file wraps its body in lib.main(body), which turns exceptions,
Ctrl-C, SIGTERM and its own deadline into a "not ok" line, always leaves
through the Stack's stop, and exits non-zero when any check failed.  Every
line a test prints is either a TAP line or a "# " comment: tests/run counts
the "ok" / "not ok" lines of all files.

Python standard library only.
"""

import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import zlib
from pathlib import Path

# The stack, ports and processes are tests/stack.py's, shared with the
# bench; they are named here too, so that a test needs lib alone.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stack import (APP_NAME, REPO, STACK, Stack, StackError,  # noqa: E402,F401
                   alive, all_pids, descendants, free_port, is_app, port_is_free,
                   proc_environ, proc_exe, proc_ppid, run, tail, wait_exit)

# The build under test: make test passes its B directory as TFB_BUILD_DIR.
BUILD = Path(os.environ.get("TFB_BUILD_DIR") or REPO / "build")
APP_BIN = BUILD / "tfb-fcgi"


# --------------------------------------------------------------------------
# The reporter

class TAP:
    """Numbered check lines.  A check passes or fails; details go on "# "
    lines right after the check so that a reader sees why."""

    MAX_DETAIL_LINES = 40
    MAX_LINE = 400

    def __init__(self):
        self.n = 0
        self.failed = 0
        self._lock = threading.Lock()

    @staticmethod
    def _one_line(text):
        return " ".join(str(text).split())

    def note(self, *lines):
        """Print "# " comment lines (each argument may hold several)."""
        for text in lines:
            for line in str(text).splitlines() or [""]:
                if len(line) > self.MAX_LINE:
                    line = line[: self.MAX_LINE] + "..."
                print("# " + line if line else "#", flush=True)

    def check(self, cond, desc, details=()):
        """One check: ok when cond is true.  details (a string or a list
        of strings) are printed under a failing check only."""
        with self._lock:
            self.n += 1
            desc = self._one_line(desc)
            if cond:
                print("ok %d - %s" % (self.n, desc), flush=True)
                return True
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            if isinstance(details, str):
                details = [details]
            lines = []
            for d in details:
                lines.extend(str(d).splitlines())
            if len(lines) > self.MAX_DETAIL_LINES:
                cut = len(lines) - self.MAX_DETAIL_LINES
                lines = lines[: self.MAX_DETAIL_LINES] + ["(%d more lines)" % cut]
            self.note(*lines)
            return False

    def ok(self, desc):
        return self.check(True, desc)

    def fail(self, desc, details=()):
        return self.check(False, desc, details)

    def skip(self, desc, reason):
        """A check that cannot run here for a reason that is no gap in
        the machine (an external PostgreSQL the test must not restart).
        tests/run counts it apart, neither passed nor failed."""
        with self._lock:
            self.n += 1
            print("ok %d - %s # SKIP %s" % (self.n, self._one_line(desc),
                                             self._one_line(reason)), flush=True)

    def tool(self, name, desc):
        """The path of a program deploy/deps test installs; None, and a
        failed check desc, when it is missing: that is a gap in the
        machine the tests must not hide by skipping."""
        path = shutil.which(name)
        if path is None:
            self.fail(desc, "%s not found; deploy/deps test installs it" % name)
        return path

    def root(self, desc):
        """True when we are root.  Otherwise a check that needs root
        cannot run: skipped on a developer's machine, failed under CI
        (CI set, as CI runs as root), where it must never go missing."""
        if os.geteuid() == 0:
            return True
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            self.fail(desc, "needs root, and CI runs as root")
        else:
            self.skip(desc, "not root")
        return False

    def problems(self, desc, problems):
        """A check from a list of TFB verifier problems (level, reason,
        url): it passes only when none is a fail or a warn, because a
        WARN counts as a failure for this project."""
        bad = [p for p in problems if p[0] in ("fail", "warn")]
        details = ["%s: %s (%s)" % (p[0].upper(), p[1], p[2]) for p in bad]
        return self.check(not bad, desc, details)

    def exit_code(self):
        return 1 if self.failed else 0


# Both derive from BaseException, like KeyboardInterrupt, so that no
# "except Exception" on the way swallows them.
class TestTimeout(BaseException):
    """Raised by the deadline alarm of lib.main."""


class Terminated(BaseException):
    """Raised by SIGTERM / SIGHUP so that finally blocks still run."""


def _on_alarm(signum, frame):
    raise TestTimeout("test file exceeded its deadline")


def _on_term(signum, frame):
    raise Terminated("signal %d" % signum)


def main(body, deadline=600):
    """Run body(tap) with a deadline (seconds), report anything that
    escapes it as a failed check, and exit with the TAP verdict."""
    tap = TAP()
    # Ctrl-C must raise KeyboardInterrupt even when our parent started us
    # with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    signal.alarm(deadline)
    try:
        body(tap)
    except KeyboardInterrupt:
        tap.fail("interrupted (Ctrl-C)")
    except (TestTimeout, Terminated) as e:
        tap.fail("test aborted: %s" % e)
    except Exception as e:
        tap.fail("test raised %s: %s" % (type(e).__name__, e),
                 traceback.format_exc())
    finally:
        signal.alarm(0)
    sys.exit(tap.exit_code())


def sanitize_flags(path):
    """["-fsanitize=..."] for a binary or library built with AddressSanitizer
    or UndefinedBehaviorSanitizer (make SANITIZE=address,undefined), as its
    symbols show; [] otherwise.  What links against it needs the same."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    kinds = [k for k, sym in (("address", b"__asan_init"), ("undefined", b"__ubsan_handle"))
             if sym in data]
    return ["-fsanitize=" + ",".join(kinds)] if kinds else []


def stack_step(tap, st, *args, timeout=120, after=""):
    """deploy/stack ARGS on st as one check, "deploy/stack ARGS" and after;
    whether it passed."""
    r = st.run(*args, timeout=timeout)
    return tap.check(r.returncode == 0, "deploy/stack %s%s" % (" ".join(args), after),
                     tail(r.stdout, 10))


def owns_pg(tap, what):
    """False, with what skipped, when PGHOST names a PostgreSQL of someone
    else's, which a test must not stop, restart or fill."""
    if os.environ.get("PGHOST"):
        tap.skip(what, "PGHOST is set: the stack uses a PostgreSQL it does not own")
        return False
    return True


def wait_for(pred, timeout, step=0.02):
    """Poll pred() until it returns something true or timeout seconds
    pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def preflight(tap, paths=None):
    """One check that the programs a test needs exist (by default the app
    binary and the stack script); False (and a failed check) when they do
    not, so the caller can stop."""
    paths = paths or (APP_BIN, STACK)
    missing = [str(p) for p in paths if not p.exists()]
    return tap.check(not missing, "%s exist" % " and ".join(p.name for p in paths),
                     ["missing: " + ", ".join(missing),
                      "run `make` first; deploy/stack is the stack script"])


# --------------------------------------------------------------------------
# HTTP

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
        body = self.body[:limit]
        more = "..." if len(self.body) > limit else ""
        return "HTTP %s, Content-Type %r, %d body bytes: %r%s" % (
            self.status, self.headers.get("Content-Type"), len(self.body),
            body, more)


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
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                      timeout=timeout)
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
    return request("GET", url, {"Accept": accept} if accept else None,
                   timeout=timeout)


def try_get(url, accept=None, timeout=15):
    """get(), but a connection error or timeout comes back as a Response
    with status None and the error text as its body."""
    try:
        return get(url, accept, timeout)
    except (OSError, http.client.HTTPException) as e:
        return Response(None, Headers(), ("%s: %s" % (type(e).__name__, e)).encode())


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
