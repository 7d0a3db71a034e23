"""seeds.py: make the seed corpora of tests/fuzz/corpus/ (run after make).

    python3 -m tests.fuzz.seeds          # from the repository root, as root
                                         # or a user, like the tests

A seed is where the fuzzer starts: it mutates the seeds into new inputs,
so seeds that hold the real structure (records, CGI variables, entities)
let it reach the deep paths in seconds.  This writes:

  fuzz_wire/, fuzz_request/   what nginx and lighttpd really send: the
        front server is started by `deploy/stack front start`, with the
        project's own configuration, in front of a FastCGI server of this
        script that listens on the pool's socket, records each request's
        bytes and answers it (fcgi.py builds and parses the records).
        Then the hostile records (tests/kit/fcgi.py's HOSTILE and more):
        libfcgi's two crashers, other roles, an abort, a second
        request id, garbage.  Each file starts with the target's own
        header (fuzz_wire.c, fuzz_request.c say what it holds);
  fuzz_param/   query strings: test_param.c's table and the hostile ones
        of the integration tests;
  fuzz_html/    the Fortune table's messages and what HTML escaping must
        get right.

Files are named after what they hold; a file this script does not make
(an input that once broke something) is left alone.  Python standard
library only.
"""

import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from ..kit import fcgi, web
from ..kit.stack import Stack

CORPUS = Path(__file__).resolve().parent / "corpus"

# What the peer asks through the front server: method, target, headers,
# body.  The routes, HEAD, a body (so that FCGI_STDIN holds data), an
# unknown route, odd headers, a query to decode.
HTTP_REQUESTS = [
    ("plaintext", "GET", "/plaintext", {}, b""),
    ("json", "GET", "/json", {}, b""),
    ("db", "GET", "/db", {}, b""),
    ("queries", "GET", "/queries?queries=20", {}, b""),
    ("fortunes", "GET", "/fortunes", {}, b""),
    ("updates", "GET", "/updates?queries=%35%30%30&x=1", {}, b""),
    ("cached", "GET", "/cached-queries?count=-1&count=7", {}, b""),
    ("head", "HEAD", "/json", {}, b""),
    ("post", "POST", "/json", {"Content-Type": "application/x-www-form-urlencoded"},
     b"a=1&b=" + b"x" * 300),
    ("notfound", "GET", "/no/such/route?q=%00%ff", {}, b""),
    ("headers", "GET", "/plaintext", {"X-Long": "v" * 200, "Cookie": "a=b; c=d",
                                      "Accept-Language": "ja, en;q=0.5"}, b""),
]


class Capture:
    """A FastCGI server on a unix socket: records every request's bytes
    (BEGIN to the empty STDIN) and answers each with a plain 200."""

    def __init__(self, path):
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # the front server's workers run as www-data
        self.sock.listen(16)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, conn):
        buf = b""
        with conn:
            while True:
                start, rid, keep = 0, None, False
                while True:  # records up to the empty STDIN
                    while len(buf) < start + 8 or \
                            len(buf) < start + 8 + struct.unpack(">H", buf[start + 4:start + 6])[0] \
                            + buf[start + 6]:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    _, rtype, rid, clen, plen = struct.unpack(">BBHHBx", buf[start:start + 8])
                    if rtype == fcgi.BEGIN_REQUEST:
                        keep = bool(buf[start + 10] & fcgi.KEEP_CONN)
                    start += 8 + clen + plen
                    if rtype == fcgi.STDIN and clen == 0:
                        break
                self.requests.append(buf[:start])
                buf = buf[start:]
                body = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok"
                conn.sendall(fcgi.record(fcgi.STDOUT, rid, body) + fcgi.record(fcgi.STDOUT, rid)
                             + fcgi.record(fcgi.END_REQUEST, rid, struct.pack(">IB3x", 0, 0)))
                if not keep:
                    return

    def close(self):
        self.sock.close()


def capture(server):
    """{name: bytes} of what server sends for HTTP_REQUESTS."""
    out = {}
    st = Stack(server=server, name="seeds-" + server)
    try:
        st.call("front", "start", timeout=60)
        sock = None
        for d in st.var_dirs():
            if os.path.isdir(os.path.join(d, "run")):
                sock = os.path.join(os.path.realpath(d), "run", "fcgi.sock")
        cap = Capture(sock)
        try:
            # lighttpd disables a backend it could not reach (the socket
            # was not there while it started) for a few seconds.
            deadline = time.monotonic() + 15
            while not cap.requests and time.monotonic() < deadline:
                web.try_get(st.url("/plaintext"), timeout=2)
                time.sleep(0.2)
            for name, method, target, headers, body in HTTP_REQUESTS:
                before = len(cap.requests)
                web.request(method, st.url(target), headers=headers, body=body or None)
                if len(cap.requests) > before:
                    out["%s-%s" % (server, name)] = cap.requests[-1]
        finally:
            cap.close()
    finally:
        st.cleanup()
    return out


def hostile():
    """The records that crashed libfcgi (fcgi.HOSTILE), and some."""
    whole = fcgi.whole()
    return {
        "get-values-bomb": fcgi.HOSTILE["bomb"] + whole,
        "get-values": fcgi.record(fcgi.GET_VALUES, 0, fcgi.pairs(
            {"FCGI_MAX_CONNS": "", "FCGI_MAX_REQS": "", "FCGI_MPXS_CONNS": ""})),
        "unknown-type": fcgi.record(0x55, 0, b"\x01\x02") + whole,
        "huge-pair": fcgi.HOSTILE["huge"],
        "authorizer": fcgi.begin(1, role=2, flags=fcgi.KEEP_CONN) + fcgi.params({"A": "b"})
        + fcgi.stdin() + whole,
        "filter": fcgi.begin(3, role=3) + fcgi.params({"A": "b"}, 3) + fcgi.stdin(b"", 3),
        "abort": fcgi.begin(5, flags=fcgi.KEEP_CONN) + fcgi.record(
            fcgi.PARAMS, 5, fcgi.pairs({"A": "b"})) + fcgi.record(fcgi.ABORT_REQUEST, 5)
        + whole,
        "second-id": whole + fcgi.begin(2) + fcgi.params(fcgi.get_params("/json"), 2)
        + fcgi.stdin(b"", 2),
        "keep-twice": fcgi.begin(flags=fcgi.KEEP_CONN) + fcgi.params(
            fcgi.get_params("/json")) + fcgi.stdin() + fcgi.begin(flags=fcgi.KEEP_CONN)
        + fcgi.params(fcgi.get_params("/db", "HEAD")) + fcgi.stdin(),
        "interleaved": fcgi.begin() + fcgi.record(fcgi.PARAMS, 1, fcgi.pairs(
            {"REQUEST_METHOD": "GET"})) + fcgi.record(fcgi.STDIN, 9, b"other")
        + fcgi.params({"REQUEST_URI": "/json"}) + fcgi.stdin(b"body"),
        "long-lengths": fcgi.begin() + fcgi.record(fcgi.PARAMS, 1, struct.pack(
            ">II", 0x80000000 | 11, 0x80000000 | 5) + b"REQUEST_URI/json")
        + fcgi.record(fcgi.PARAMS, 1) + fcgi.stdin(),
        "padded": fcgi.begin() + fcgi.record(fcgi.PARAMS, 1, fcgi.pairs(
            fcgi.get_params("/plaintext")), padding=5) + fcgi.record(fcgi.PARAMS, 1)
        + fcgi.record(fcgi.STDIN, 1, b"x", padding=7) + fcgi.stdin(),
        "garbage": b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 32,
    }


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main():
    streams = {}
    for server in ("nginx", "lighttpd"):
        got = capture(server)
        print("%s: %d requests captured" % (server, len(got)))
        streams.update(got)
    streams.update(hostile())
    for name, data in sorted(streams.items()):
        # fuzz_wire: --request-max 1024 + 0x1f00 (the largest), no skipped id.
        write("fuzz_wire", name, b"\x1f\x00\x00" + data)
        # fuzz_request: the peer shuts its writing side; a second piece
        # from byte 16 (after a BEGIN), a third from byte 64.
        write("fuzz_request", name, b"\x00\x00\x10\x00\x40" + data)

    queries = ["", "queries", "queries=", "queries=2", "queries=0", "queries=-5",
               "queries=foo", "queries=5foo", "queries=20", "queries=500",
               "queries=501", "queries=99999999999999999999999", "queries=+7",
               "queries=%2B7", "queries=007", "queries=%32%30", "queries=%2",
               "queries=5&queries=7", "a=1&queries=9&b=2", "xqueries=9",
               "queries=0x1F", "queries=1e3", "queries=12.5", "queries=%00",
               "queries=-0", "queries=%2D3", "queries=0000000000000000000007"]
    for i, q in enumerate(queries):
        write("fuzz_param", "q%02d" % i, b"\x00" + q.encode())
        write("fuzz_param", "c%02d" % i, b"\x01" + q.replace("queries", "count").encode())

    fortunes = ["fortune: No such file or directory",
                "A computer scientist is someone who fixes things that aren't broken.",
                "After enough decimal places, nobody gives a damn.",
                "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
                "A computer program does what you tell it to do, not what you want it to do.",
                "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen",
                "Any program that runs right is obsolete.",
                "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af",
                "Additional fortune added at request time.",
                "&amp; &lt;&gt; &#39; already escaped"]
    for i, f in enumerate(fortunes):
        write("fuzz_html", "f%02d" % i, f.encode())
    write("fuzz_html", "f%02d" % len(fortunes), b"\0\xff\xfe'\"&<>\xe2\x80")
    return 0


if __name__ == "__main__":
    sys.exit(main())
