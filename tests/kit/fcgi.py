"""fcgi: a raw FastCGI client, to talk to a responder the way a front
server does, or the way a broken or hostile peer might.

    with fcgi.connect(("127.0.0.1", 9000)) as c:       # or a unix path
        out = c.request({"REQUEST_METHOD": "GET", "REQUEST_URI": "/json"})
        out.status, out.headers, out.body

Records are built byte by byte (record(), params()), so that a test can
send any of them alone, in pieces, or wrong; HOSTILE holds the ones that
crashed libfcgi.  Python standard library only.
"""

import socket
import struct

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = range(1, 8)
DATA, GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = range(8, 12)
RESPONDER = 1
KEEP_CONN = 1
REQUEST_COMPLETE, CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE = range(4)


def record(rtype, rid, content=b"", padding=0):
    """One record: the 8-byte header, content, padding."""
    return struct.pack(">BBHHBx", VERSION, rtype, rid, len(content), padding) + \
        content + b"\0" * padding


def _length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def pairs(d):
    """Name-value pairs, FastCGI-encoded."""
    out = b""
    for k, v in d.items():
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        out += _length(len(k)) + _length(len(v)) + k + v
    return out


def begin(rid=1, role=RESPONDER, flags=0):
    return record(BEGIN_REQUEST, rid, struct.pack(">HB5x", role, flags))


def params(d, rid=1):
    """PARAMS records for d, then the empty one that ends them."""
    body = pairs(d)
    out = b""
    for i in range(0, len(body), 65535):
        out += record(PARAMS, rid, body[i:i + 65535])
    return out + record(PARAMS, rid)


def stdin(data=b"", rid=1):
    out = b""
    for i in range(0, len(data), 65535):
        out += record(STDIN, rid, data[i:i + 65535])
    return out + record(STDIN, rid)


def whole(path="/plaintext", rid=1, flags=0):
    """A whole GET of path: BEGIN, PARAMS, the empty STDIN."""
    return begin(rid, flags=flags) + params(get_params(path), rid) + stdin(b"", rid)


def get_params(path, method="GET"):
    """The CGI variables nginx sends for a GET of path."""
    uri = path
    p, _, q = path.partition("?")
    return {"REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": p,
            "SCRIPT_NAME": p, "QUERY_STRING": q, "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1"}


class Response:
    """What came back for one request: the CGI response split up, and the
    FCGI_END_REQUEST fields (None when the connection ended first)."""

    def __init__(self):
        self.stdout = b""
        self.stderr = b""
        self.app_status = None
        self.protocol_status = None
        self.status = None
        self.headers = {}
        self.body = b""
        self.records = []  # (type, request id, content) in order

    def _parse(self):
        head, sep, body = self.stdout.partition(b"\r\n\r\n")
        if not sep:
            return
        self.body = body
        self.status = 200
        for line in head.split(b"\r\n"):
            k, _, v = line.decode("latin-1").partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "status" in self.headers:
            self.status = int(self.headers["status"].split()[0])

    def __repr__(self):
        return "<fcgi.Response status=%s app=%s proto=%s %d bytes>" % (
            self.status, self.app_status, self.protocol_status, len(self.stdout))


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self._buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_record(self):
        """The next record as (type, request id, content), or None at EOF."""
        while True:
            if len(self._buf) >= 8:
                _, rtype, rid, clen, plen = struct.unpack(">BBHHBx", self._buf[:8])
                if len(self._buf) >= 8 + clen + plen:
                    content = self._buf[8:8 + clen]
                    self._buf = self._buf[8 + clen + plen:]
                    return rtype, rid, content
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:  # closed with our bytes unread
                chunk = b""
            if not chunk:
                return None
            self._buf += chunk

    def read_response(self, rid=1):
        """Records up to FCGI_END_REQUEST of rid (or EOF)."""
        r = Response()
        while True:
            rec = self.read_record()
            if rec is None:
                break
            r.records.append(rec)
            rtype, got, content = rec
            if rtype == STDOUT and got == rid:
                r.stdout += content
            elif rtype == STDERR and got == rid:
                r.stderr += content
            elif rtype == END_REQUEST and got == rid:
                r.app_status, r.protocol_status = struct.unpack(">IB3x", content)
                break
        r._parse()
        return r

    def eof(self, timeout=None):
        """True when the peer closes within timeout without sending
        anything more; False when it sends a record or stays silent."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.read_record() is None
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)

    def request(self, params_dict, body=b"", rid=1, keep=False):
        """One whole request, sent at once, and its response."""
        self.send(begin(rid, flags=KEEP_CONN if keep else 0) +
                  params(params_dict, rid) + stdin(body, rid))
        return self.read_response(rid)

    def get(self, path, keep=False):
        return self.request(get_params(path), keep=keep)


def connect(addr, timeout=10):
    """A connection to a unix socket path or a (host, port) pair."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                          socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    return Connection(s)


# The records that crashed a libfcgi responder; the worker must close
# each connection and serve on.  A BEGIN's padding read as a record
# overflowed libfcgi's 64-byte FCGI_GET_VALUES answer ("bomb" at the
# front, "smuggled" from inside a request); a name-value length near
# 2^31 hit its assert ("huge" at once, "skipped": after an empty record
# of another request libfcgi skips the next PARAMS, "a name of 6 bytes",
# and reads the 6 bytes of that name as a pair of 2^31 - 2 and 1 bytes).
_FOUR = record(GET_VALUES, 0, b"".join(pairs({"FCGI_MPXS_CONNS": ""}) for _ in range(4)))
HUGE_PAIR = record(PARAMS, 1, b"\xff\xff\xff\xfe\x01a")
HOSTILE = {
    "bomb": record(GET_VALUES, 0, b"".join(pairs({"FCGI_MPXS_CONNS": ""})
                                           for _ in range(8))),
    "huge": begin() + HUGE_PAIR,
    "smuggled": struct.pack(">BBHHBx", VERSION, BEGIN_REQUEST, 1, 8, len(_FOUR))
    + struct.pack(">HB5x", RESPONDER, 0) + _FOUR + params(get_params("/plaintext")) + stdin(),
    "skipped": begin() + record(STDIN, 2) + record(PARAMS, 1, b"\x06\x00") + HUGE_PAIR
    + params(get_params("/plaintext")) + stdin(),
    "garbage": b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 64,
}
