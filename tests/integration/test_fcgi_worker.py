#!/usr/bin/env python3
"""test_fcgi_worker.py: one tfb-fcgi process, spoken to directly over
FastCGI (fcgi.py), with no front server in between.

- it answers, over a unix socket and over TCP;
- FCGI_WEB_SERVER_ADDRS (IPv4 and IPv6) lets the listed front servers in
  and closes the connections of others unanswered; a malformed list is a
  configuration error (exit 2);
- a kept connection (FCGI_KEEP_CONN) carries several requests;
- a connection sending garbage is closed and the worker serves the next;
- SIGTERM: an idle worker leaves at once; one in the middle of reading a
  request answers it first, then leaves.

No database is needed: /plaintext and /json do not touch it.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi  # noqa: E402
import lib  # noqa: E402


class Worker:
    """build/tfb-fcgi --bind ADDR, its log in a temporary directory.  As a
    context manager, killed on the way out whatever happened."""

    def __init__(self, bind, env=None):
        self.dir = tempfile.mkdtemp(prefix="tfb-test-worker-")
        self.log = os.path.join(self.dir, "log")
        e = dict(os.environ)
        # A database that is not there: start-up must not need one.
        e.update(PGHOST=os.path.join(self.dir, "nopg"), PGCONNECT_TIMEOUT="1")
        e.update(env or {})
        self.bind = bind
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen([str(lib.APP_BIN), "--bind", bind], env=e,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)

    def addr(self):
        if "/" in self.bind:
            return self.bind
        host, _, port = self.bind.rpartition(":")
        return (host.strip("[]"), int(port))

    def connect(self, timeout=10):
        deadline = time.monotonic() + 5
        while True:
            try:
                return fcgi.connect(self.addr(), timeout)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.02)

    def wait(self, timeout):
        return lib.wait_exit(self.proc, timeout)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def answered(r, body=b"Hello, World!"):
    return r.status == 200 and r.body == body and r.protocol_status == 0


def check_serves(tap, tmp):
    with Worker(os.path.join(tmp, "w.sock")) as w:
        with w.connect() as c:
            r = c.get("/plaintext")
        tap.check(answered(r), "unix socket: /plaintext answered, FCGI_REQUEST_COMPLETE",
                  [repr(r), r.stdout[:200]])
        with w.connect() as c:
            r = c.get("/json")
        tap.check(r.status == 200 and r.body == b'{"message":"Hello, World!"}',
                  "unix socket: /json answered", [repr(r), r.stdout[:200]])


def check_allow_list(tap):
    for allow, ok in (("127.0.0.1", True), ("::1, 127.0.0.1", True),
                      ("127.0.0.2", False), ("::1", False)):
        port = lib.free_port()
        with Worker("127.0.0.1:%d" % port, {"FCGI_WEB_SERVER_ADDRS": allow}) as w:
            with w.connect(timeout=3) as c:
                if ok:
                    r = c.get("/plaintext")
                    tap.check(answered(r), "FCGI_WEB_SERVER_ADDRS=%r: 127.0.0.1 served"
                              % allow, [repr(r), w.log_text()])
                else:
                    c.send(fcgi.begin() + fcgi.params(fcgi.get_params("/plaintext"))
                           + fcgi.stdin())
                    tap.check(c.eof(3), "FCGI_WEB_SERVER_ADDRS=%r: 127.0.0.1 closed "
                              "unanswered" % allow, w.log_text())
    with Worker("127.0.0.1:%d" % lib.free_port(), {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1,bogus"}) as w:
        rc = w.wait(5)
        tap.check(rc == 2 and "bogus" in w.log_text(),
                  "FCGI_WEB_SERVER_ADDRS with a bad entry: exit 2, named",
                  ["exit %s" % rc, w.log_text()])


def check_keep_conn(tap, tmp):
    with Worker(os.path.join(tmp, "k.sock")) as w:
        with w.connect() as c:
            rs = [c.get(p, keep=True) for p in ("/plaintext", "/json", "/plaintext")]
            tap.check(all(r.status == 200 for r in rs),
                      "FCGI_KEEP_CONN: three requests on one connection answered",
                      [repr(r) for r in rs])
            tap.check(not c.eof(0.3), "FCGI_KEEP_CONN: the connection stays open")


def check_garbage(tap, tmp):
    with Worker(os.path.join(tmp, "g.sock")) as w:
        with w.connect() as c:
            c.send(b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 64)
            tap.check(c.eof(5), "garbage instead of records: the connection is closed")
        t0 = time.monotonic()
        with w.connect() as c:
            r = c.get("/plaintext")
        tap.check(answered(r) and time.monotonic() - t0 < 2,
                  "and the next connection is served at once", [repr(r), w.log_text()])


def check_sigterm(tap, tmp):
    with Worker(os.path.join(tmp, "t.sock")) as w:
        with w.connect() as c:  # up and serving
            c.get("/plaintext")
        t0 = time.monotonic()
        w.proc.send_signal(signal.SIGTERM)
        rc = w.wait(3)
        tap.check(rc == 0, "SIGTERM, idle: exits 0 at once (%.2f s)" % (time.monotonic() - t0),
                  ["exit %s" % rc, w.log_text()])

    # Connected but silent is what libfcgi's own accept got wrong: it
    # polled the new connection, and a signal during that poll made it
    # close a connection the front server was about to write to.
    for sent, when in ((0, "connected, nothing sent yet"), (20, "a request half read")):
        with Worker(os.path.join(tmp, "t%d.sock" % sent)) as w:
            with w.connect() as c:
                whole = fcgi.begin() + fcgi.params(fcgi.get_params("/plaintext")) + \
                    fcgi.stdin()
                c.send(whole[:sent])
                time.sleep(0.3)
                w.proc.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                tap.check(w.proc.poll() is None,
                          "SIGTERM, %s: the worker stays for the request" % when)
                c.send(whole[sent:])
                r = c.read_response()
                tap.check(answered(r), "SIGTERM, %s: and answers it" % when,
                          [repr(r), w.log_text()])
            rc = w.wait(3)
            tap.check(rc == 0, "SIGTERM, %s: then exits 0" % when,
                      ["exit %s" % rc, w.log_text()])


def body(tap):
    if not lib.preflight(tap, [lib.APP_BIN]):
        return
    tmp = tempfile.mkdtemp(prefix="tfb-test-fcgi-")
    check_serves(tap, tmp)
    check_allow_list(tap)
    check_keep_conn(tap, tmp)
    check_garbage(tap, tmp)
    check_sigterm(tap, tmp)


if __name__ == "__main__":
    lib.main(body, deadline=120)
