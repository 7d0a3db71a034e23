"""test_fcgi_worker.py: one tfb-fcgi process, spoken to directly over
FastCGI (fcgi.py), with no front server in between.

Its connections (a worker holds many; none pins it):
- kept connections do not pin it: a request on another is served while
  one idles, and the idle one serves again after;
- slow peers (one byte, a BEGIN alone, parameters without the end of
  stdin) do not hold it: others are served meanwhile, and each slow one
  is closed at --read-timeout, not before; an idle kept connection at
  --idle-timeout; a peer that stops reading is closed at once;
- --max-conns: the connection past it waits for a free slot;
- hostile records never reach libfcgi's defects: FCGI_GET_VALUES naming a
  variable eight times is answered (each once), a name-value length near
  2^31, a record hidden in a BEGIN's padding or an empty record of another
  request closes the connection, a request over --request-max is answered
  413 and its connection closed, other roles
  get FCGI_UNKNOWN_ROLE, FCGI_ABORT_REQUEST ends the request, a second
  request id gets FCGI_CANT_MPX_CONN; two hundred such connections in a
  row leave the worker alive and serving at once.

And as a FastCGI responder:
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
import re
import signal
import socket
import tempfile
import time

from ..kit import APP_BIN, fcgi, web
from ..kit.pool import Worker
from ..kit.tap import main


def answered(r, body=b"Hello, World!"):
    return r.status == 200 and r.body == body and r.protocol_status == 0


def check_serves(tap, tmp):
    with Worker().start(os.path.join(tmp, "w.sock")) as w:
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
        port = web.free_port()
        with Worker().start("127.0.0.1:%d" % port, env={"FCGI_WEB_SERVER_ADDRS": allow}) as w:
            with w.connect(timeout=3) as c:
                if ok:
                    r = c.get("/plaintext")
                    tap.check(answered(r), "FCGI_WEB_SERVER_ADDRS=%r: 127.0.0.1 served"
                              % allow, [repr(r), w.log_text()])
                else:
                    c.send(fcgi.whole())
                    tap.check(c.eof(3), "FCGI_WEB_SERVER_ADDRS=%r: 127.0.0.1 closed "
                              "unanswered" % allow, w.log_text())
    bad = {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1,bogus"}
    with Worker().start("127.0.0.1:%d" % web.free_port(), env=bad) as w:
        rc = w.wait(5)
        tap.check(rc == 2 and "bogus" in w.log_text(),
                  "FCGI_WEB_SERVER_ADDRS with a bad entry: exit 2, named",
                  ["exit %s" % rc, w.log_text()])


def check_keep_conn(tap, tmp):
    with Worker().start(os.path.join(tmp, "k.sock")) as w:
        with w.connect() as c:
            rs = [c.get(p, keep=True) for p in ("/plaintext", "/json", "/plaintext")]
            tap.check(all(r.status == 200 for r in rs),
                      "FCGI_KEEP_CONN: three requests on one connection answered",
                      [repr(r) for r in rs])
            tap.check(not c.eof(0.3), "FCGI_KEEP_CONN: the connection stays open")


def check_garbage(tap, tmp):
    with Worker().start(os.path.join(tmp, "g.sock")) as w:
        with w.connect() as c:
            c.send(b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 64)
            tap.check(c.eof(5), "garbage instead of records: the connection is closed")
        t0 = time.monotonic()
        with w.connect() as c:
            r = c.get("/plaintext")
        tap.check(answered(r) and time.monotonic() - t0 < 2,
                  "and the next connection is served at once", [repr(r), w.log_text()])


def check_sigterm(tap, tmp):
    with Worker().start(os.path.join(tmp, "t.sock")) as w:
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
        with Worker().start(os.path.join(tmp, "t%d.sock" % sent)) as w:
            with w.connect() as c:
                whole = fcgi.whole()
                c.send(whole[:sent])
                time.sleep(0.3)
                w.proc.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                tap.check(w.alive(),
                          "SIGTERM, %s: the worker stays for the request" % when)
                c.send(whole[sent:])
                r = c.read_response()
                tap.check(answered(r), "SIGTERM, %s: and answers it" % when,
                          [repr(r), w.log_text()])
            rc = w.wait(3)
            tap.check(rc == 0, "SIGTERM, %s: then exits 0" % when,
                      ["exit %s" % rc, w.log_text()])


def served_meanwhile(w, what):
    """A whole request on a new connection is answered within a second."""
    t0 = time.monotonic()
    with w.connect(timeout=3) as c:
        r = c.get("/plaintext")
    return answered(r) and time.monotonic() - t0 < 1


def check_other_signals(tap, tmp):
    """SIGUSR1 reopens --log-file and the worker serves on (libfcgi's own
    handler would have stopped it); SIGHUP is a graceful stop."""
    log = os.path.join(tmp, "app.log")
    with Worker().start(os.path.join(tmp, "u.sock"), args=["--log-file", log]) as w:
        with w.connect() as c:
            c.get("/plaintext")
        os.rename(log, log + ".1")
        w.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 3
        while not os.path.exists(log) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        reopened = os.path.exists(log) and "reopened" in open(log).read()
        tap.check(reopened and w.alive() and served_meanwhile(w, "usr1"),
                  "SIGUSR1: the worker reopens its --log-file and serves on",
                  w.log_text())
        w.proc.send_signal(signal.SIGUSR2)
        w.proc.send_signal(signal.SIGPIPE)
        time.sleep(0.2)
        tap.check(w.alive() and served_meanwhile(w, "usr2"),
                  "SIGUSR2 and SIGPIPE: ignored")
        w.proc.send_signal(signal.SIGHUP)
        rc = w.wait(3)
        tap.check(rc == 0, "SIGHUP: a graceful stop, exit 0 (%s)" % rc)


SLOW_RE = re.compile(r"slow request: (\S+) (\d+) in ([\d.]+) ms \(read ([\d.]+), db "
                     r"([\d.]+), app ([\d.]+), write ([\d.]+)\)")


def timed_request(w, delay):
    """One /plaintext whose last bytes come delay seconds after its first:
    its reading phase lasts about that long."""
    whole = fcgi.whole("/plaintext?x=1")
    with w.connect() as c:
        c.send(whole[:20])
        time.sleep(delay)
        c.send(whole[20:])
        return c.read_response()


def check_timing(tap, tmp):
    """--server-timing answers with the phases so far; --slow-ms logs a
    request at its threshold and not below, one line with its route, its
    query and phases that add up to its total."""
    with Worker().start(os.path.join(tmp, "st.sock"), args=["--server-timing"]) as w:
        with w.connect() as c:
            r = c.get("/plaintext")
        st = r.headers.get("server-timing", "")
        tap.check(answered(r) and re.fullmatch(
            r"read;dur=[\d.]+, db;dur=[\d.]+, app;dur=[\d.]+", st) is not None,
                  "--server-timing: a Server-Timing header with read, db, app (%r)" % st)
    with Worker().start(os.path.join(tmp, "nst.sock")) as w:
        with w.connect() as c:
            r = c.get("/plaintext")
        tap.check(answered(r) and "server-timing" not in r.headers,
                  "without it: no Server-Timing header")
    with Worker().start(os.path.join(tmp, "slow.sock"), args=["--slow-ms", "250"]) as w:
        fast = timed_request(w, 0.0)
        below = timed_request(w, 0.1)
        above = timed_request(w, 0.4)
        time.sleep(0.2)
        lines = SLOW_RE.findall(w.log_text())
        tap.check(answered(fast) and answered(below) and answered(above) and len(lines) == 1,
                  "--slow-ms 250: a request of 0.4 s is logged, ones of 0 and 0.1 s are "
                  "not (%d lines)" % len(lines), w.log_text())
        if lines:
            route, status, total, *phases = lines[0]
            total, phases = float(total), [float(x) for x in phases]
            tap.check(route == "/plaintext?x=1" and status == "200" and total >= 250 and
                      abs(sum(phases) - total) <= 0.005 and phases[0] >= 350,
                      "the line: route and query, status, phases that add up to the "
                      "total (%s)" % (lines[0],))


def check_no_pinning(tap, tmp):
    with Worker().start(os.path.join(tmp, "p.sock")) as w:
        a, b = w.connect(), w.connect()
        try:
            ra = a.get("/plaintext", keep=True)
            rb = b.get("/json", keep=True)  # a idles, kept
            ra2 = a.get("/plaintext", keep=True)
            tap.check(answered(ra) and rb.status == 200 and answered(ra2),
                      "keep-conn: a request on a second connection is served while "
                      "the first one idles, and the first serves again",
                      [repr(ra), repr(rb), repr(ra2), w.log_text()])
        finally:
            a.close()
            b.close()


def check_pipelined(tap, tmp):
    """Two requests sent back to back on a kept connection, the second
    before the first is answered (no front server does; a FastCGI peer
    may): the first is answered, then the connection closes at once: the
    second is never left waiting until --idle-timeout."""
    one = fcgi.whole(flags=fcgi.KEEP_CONN)
    with Worker().start(os.path.join(tmp, "pl.sock")) as w:
        with w.connect() as c:
            t0 = time.monotonic()
            c.send(one + one)
            r = c.read_response()
            closed = c.eof(timeout=3)
            took = time.monotonic() - t0
        tap.check(answered(r) and closed and took < 2,
                  "two requests back to back on a kept connection: the first "
                  "answered, then the connection closed at once (%.2f s)" % took,
                  [repr(r), w.log_text()])
        with w.connect() as c:
            tap.check(answered(c.get("/plaintext")), "  and the worker serves on")


def check_slow_peers(tap, tmp):
    whole = fcgi.whole()
    no_stdin_end = fcgi.begin() + fcgi.params(fcgi.get_params("/plaintext"))
    cases = [("one byte", whole[:1]), ("a BEGIN alone", fcgi.begin()),
             ("parameters, no end of stdin", no_stdin_end)]
    with Worker().start(os.path.join(tmp, "s.sock"), args=["--read-timeout", "1s"]) as w:
        for what, data in cases:
            c = w.connect(timeout=5)
            try:
                c.send(data)
                t0 = time.monotonic()
                tap.check(served_meanwhile(w, what),
                          "a slow peer (%s): another connection is served meanwhile"
                          % what, w.log_text())
                closed = c.eof(4)
                took = time.monotonic() - t0
                tap.check(closed and 0.7 < took < 2.5,
                          "a slow peer (%s): closed at the 1 s read deadline (%.2f s)"
                          % (what, took), ["closed: %s" % closed, w.log_text()])
            finally:
                c.close()
    with Worker().start(os.path.join(tmp, "i.sock"), args=["--idle-timeout", "1s"]) as w:
        with w.connect(timeout=5) as c:
            r = c.get("/plaintext", keep=True)
            t0 = time.monotonic()
            closed = c.eof(4)
            took = time.monotonic() - t0
            tap.check(answered(r) and closed and 0.7 < took < 2.5,
                      "an idle kept connection: closed at the 1 s idle deadline (%.2f s)"
                      % took, [repr(r), "closed: %s" % closed])


def check_deaf_peer(tap, tmp):
    """A peer that stops reading but not writing: the answer cannot be
    written, and the worker closes the connection at once.  libfcgi's own
    close lingered on it, waiting 2 s for each read, the worker held."""
    whole = fcgi.whole(flags=fcgi.KEEP_CONN)
    with Worker().start(os.path.join(tmp, "d.sock")) as w:
        w.connect().close()  # up and serving
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(w.bind)
            s.shutdown(socket.SHUT_RD)
            s.sendall(whole)
            time.sleep(0.05)
            t0 = time.monotonic()
            served = served_meanwhile(w, "deaf")
            took = time.monotonic() - t0
            closed = False
            deadline = time.monotonic() + 1
            while not closed and time.monotonic() < deadline:
                try:
                    s.send(b"x")  # a unix socket refuses once the worker closed
                    time.sleep(0.02)
                except OSError:
                    closed = True
        tap.check(served and took < 0.5 and closed and w.alive(),
                  "a peer that stops reading: its connection closed at once, the "
                  "next one served in %.3f s" % took,
                  ["served: %s, closed: %s" % (served, closed), w.log_text()])


def check_max_conns(tap, tmp):
    with Worker().start(os.path.join(tmp, "m.sock"), args=["--max-conns", "2"]) as w:
        a, b = w.connect(), w.connect()
        a.send(fcgi.begin())  # two connections held, reading
        b.send(fcgi.begin())
        time.sleep(0.2)
        c = w.connect(timeout=5)
        try:
            c.send(fcgi.whole())
            waited = c.eof(0.5) is False
            a.close()  # a slot comes free
            r = c.read_response()
            tap.check(waited and answered(r),
                      "--max-conns 2: a third connection waits until one closes, "
                      "then is served", [repr(r), w.log_text()])
        finally:
            for x in (a, b, c):
                x.close()


def check_hostile(tap, tmp):
    whole = fcgi.whole()
    hostile = fcgi.HOSTILE  # what crashed libfcgi: fcgi.py says how
    with Worker().start(os.path.join(tmp, "h.sock"), args=["--request-max", "8192"]) as w:
        with w.connect() as c:
            body = b"".join(fcgi.pairs({"FCGI_MPXS_CONNS": ""}) for _ in range(8))
            body += fcgi.pairs({"FCGI_MAX_CONNS": "", "FCGI_MAX_REQS": ""})
            c.send(fcgi.record(fcgi.GET_VALUES, 0, body))
            rec = c.read_record()
            c.send(whole)
            r = c.read_response()
        got = rec[2] if rec else b""
        tap.check(rec is not None and rec[0] == fcgi.GET_VALUES_RESULT and
                  got.count(b"FCGI_MPXS_CONNS") == 1 and b"FCGI_MAX_CONNS256" in got and
                  answered(r) and w.alive(),
                  "FCGI_GET_VALUES naming FCGI_MPXS_CONNS 8 times: answered, each "
                  "variable once, then a request on the same connection",
                  [repr(rec), repr(r), w.log_text()])

        for what, data in (
                ("a name of 2^31 - 2 bytes and a value of 1", hostile["huge"]),
                ("FCGI_GET_VALUES x 4 in the padding of a BEGIN", hostile["smuggled"]),
                ("an empty record of another request, then a split pair",
                 hostile["skipped"])):
            with w.connect() as c:
                c.send(data)
                closed = c.eof(3)
            tap.check(closed and w.alive() and served_meanwhile(w, what),
                      "%s: the connection is closed, the worker serves on" % what,
                      w.log_text())

        with w.connect() as c:
            c.send(fcgi.begin() + fcgi.params({"X": "y" * 9000}) + fcgi.stdin())
            r = c.read_response()
            closed = c.eof(3)
        tap.check(r.status == 413 and r.protocol_status == 0 and closed and
                  served_meanwhile(w, "413"),
                  "a request over --request-max 8192: answered 413, the connection "
                  "closed, the worker serves on", [repr(r), w.log_text()])

        for role, name in ((2, "authorizer"), (3, "filter")):
            with w.connect() as c:
                c.send(fcgi.begin(1, role=role, flags=fcgi.KEEP_CONN) +
                       fcgi.params({"A": "b"}) + fcgi.stdin())
                end = c.read_response()
                r = c.get("/plaintext")
            tap.check(end.protocol_status == 3 and answered(r),
                      "role %s: FCGI_END_REQUEST with FCGI_UNKNOWN_ROLE, and the "
                      "connection serves on" % name, [repr(end), repr(r)])

        with w.connect() as c:
            c.send(fcgi.begin(5, flags=fcgi.KEEP_CONN) +
                   fcgi.record(fcgi.PARAMS, 5, fcgi.pairs({"A": "b"})) +
                   fcgi.record(fcgi.ABORT_REQUEST, 5))
            end = c.read_response(5)
            r = c.get("/json")
        tap.check(end.protocol_status == 0 and end.app_status is not None and
                  r.status == 200,
                  "FCGI_ABORT_REQUEST: the request ends (FCGI_END_REQUEST), the "
                  "connection serves on", [repr(end), repr(r)])

        with w.connect() as c:
            c.send(whole + fcgi.begin(2) + fcgi.params(fcgi.get_params("/json")) +
                   fcgi.stdin(b"", 2))
            r1 = c.read_response(1)
            r2 = c.read_response(2)
        tap.check(answered(r1) and r2.protocol_status == fcgi.CANT_MPX_CONN,
                  "a second request id on a busy connection: FCGI_CANT_MPX_CONN, the "
                  "first one answered", [repr(r1), repr(r2)])

        # The records that crashed a worker (libfcgi's overflow, at the
        # front and hidden in padding, and its assert, reached at once and
        # through a skipped record), two hundred in a row, then a request
        # at once.
        pid = w.proc.pid
        for i in range(200):
            try:
                with w.connect(timeout=3) as c:
                    c.send(hostile[("bomb", "huge", "smuggled", "skipped")[i % 4]])
            except OSError:
                pass
        t0 = time.monotonic()
        with w.connect(timeout=3) as c:
            r = c.get("/plaintext")
        took = time.monotonic() - t0
        tap.check(answered(r) and w.alive() and w.proc.pid == pid and took < 1,
                  "200 connections of records that crashed libfcgi: the worker lives "
                  "and serves the next request in %.3f s" % took, [repr(r), w.log_text()])


def body(tap):
    tap.need([APP_BIN])
    with tempfile.TemporaryDirectory(prefix="tfb-test-fcgi-") as tmp:
        check_serves(tap, tmp)
        check_allow_list(tap)
        for check in (check_keep_conn, check_garbage, check_sigterm, check_other_signals,
                      check_timing, check_no_pinning, check_pipelined, check_slow_peers,
                      check_deaf_peer, check_max_conns, check_hostile):
            check(tap, tmp)


if __name__ == "__main__":
    main(body, deadline=120)
