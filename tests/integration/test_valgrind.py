"""test_valgrind.py: one tfb-fcgi under valgrind's memcheck, against a real
PostgreSQL, serving 10,000 mixed requests over raw FastCGI (fcgi.py), then
stopped by SIGTERM.

The mix: the seven routes (counts clamped or not, some hostile), HEAD, an
unknown path (404), POST (405), most on one kept connection and every
tenth on a connection of its own; and every 500th request, on a
connection of its own, one of the records that crashed libfcgi, which the
worker must close.  Every answer must carry the status it should.  Then
valgrind must report no error and no definite leak: --leak-check=full
--errors-for-leak-kinds=definite --error-exitcode=99, so that its exit
status says it, and its summary is read too.  Memory still reachable at
exit (libfcgi's, libpq's, the cache) is no leak.

Valgrind makes the worker some 20 times slower: about 3 ms a request
here, 30 s for the lot.  A binary built with a sanitizer cannot run under
valgrind: under make test-sanitize the plain build (build/, which it
builds too) is the one run here.
"""

import os
import re
import signal
import subprocess
import tempfile
import time

from ..kit import APP_BIN, REPO, STACK, fcgi
from ..kit.cmd import tail, wait_exit
from ..kit.pg import Database
from ..kit.tap import main

REQUESTS = 10000
NEW_CONN_EVERY = 10
HOSTILE_EVERY = 500
VALGRIND_EXIT = 99

# (method, target, status): the mix, taken in turn.
MIX = [
    ("GET", "/plaintext", 200),
    ("GET", "/json", 200),
    ("GET", "/db", 200),
    ("GET", "/queries?queries=20", 200),
    ("GET", "/fortunes", 200),
    ("GET", "/updates?queries=5", 200),
    ("GET", "/cached-queries?count=50", 200),
    ("GET", "/queries?queries=99999999999999999999", 200),
    ("GET", "/queries?queries=%2D1&queries=3", 200),
    ("GET", "/cached-queries?count=0x10", 200),
    ("GET", "/updates?queries=", 200),
    ("HEAD", "/fortunes", 200),
    ("HEAD", "/updates?queries=3", 200),
    ("GET", "/no/such/route?queries=5", 404),
    ("POST", "/json", 405),
]


def connect(sock, proc, timeout=30):
    """A connection to the worker once it accepts (valgrind starts slowly)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fcgi.connect(sock, timeout=20)
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)


def serve_mix(tap, sock, proc):
    """The 10,000 requests; a failed check for wrong answers."""
    wrong = []
    closed = 0
    # The records that crashed libfcgi; the worker closes each connection.
    hostile = [fcgi.HOSTILE[k] for k in ("huge", "smuggled", "skipped", "garbage")]
    kept = connect(sock, proc)
    try:
        for i in range(REQUESTS):
            if i % HOSTILE_EVERY == HOSTILE_EVERY - 1:
                with connect(sock, proc) as c:
                    c.send(hostile[(i // HOSTILE_EVERY) % len(hostile)])
                    closed += c.eof(10)
            method, target, status = MIX[i % len(MIX)]
            params = fcgi.get_params(target, method)
            if i % NEW_CONN_EVERY == NEW_CONN_EVERY - 1:
                with connect(sock, proc) as c:
                    r = c.request(params)
            else:
                r = kept.request(params, keep=True)
            if r.status != status or r.protocol_status != fcgi.REQUEST_COMPLETE:
                wrong.append("%d: %s %s: %r" % (i, method, target, r))
                if r.protocol_status is None:  # the connection is gone
                    kept.close()
                    kept = connect(sock, proc)
    finally:
        kept.close()
    n = REQUESTS // HOSTILE_EVERY
    tap.check(not wrong, "%d requests answered, each with its status" % REQUESTS,
              ["%d wrong" % len(wrong)] + wrong[:10])
    tap.check(closed == n, "%d hostile records, each connection closed" % n,
              "%d of %d closed" % (closed, n))


def sanitized(path):
    """Whether a binary was built with AddressSanitizer or
    UndefinedBehaviorSanitizer (make SANITIZE=...), as its symbols show."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data


def body(tap):
    valgrind = tap.tool("valgrind", "valgrind is installed")
    app = APP_BIN
    if sanitized(app):
        tap.note("%s is built with a sanitizer, which valgrind cannot run: "
                 "running %s" % (app, REPO / "build" / "tfb-fcgi"))
        app = REPO / "build" / "tfb-fcgi"
    tap.need([app, STACK])
    if not valgrind:
        return
    tmp = tempfile.TemporaryDirectory(prefix="tfb-test-valgrind-")
    proc = None
    try:
        db = Database(tap).__enter__()
    except Exception as e:
        tap.fail("PostgreSQL for the worker (deploy/stack pg start)", str(e))
        return
    try:
        env = dict(os.environ, **db.pg)
        sock = os.path.join(tmp.name, "fcgi.sock")
        log = os.path.join(tmp.name, "valgrind.log")
        t0 = time.monotonic()
        with open(os.path.join(tmp.name, "app.log"), "w") as applog:
            proc = subprocess.Popen(
                [valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite",
                 "--error-exitcode=%d" % VALGRIND_EXIT, "--log-file=" + log,
                 str(app), "--bind", sock], env=env, stdin=subprocess.DEVNULL,
                stdout=applog, stderr=applog)
        serve_mix(tap, sock, proc)
        took = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        rc = wait_exit(proc, 120)
        tap.note("valgrind: %d requests in %.1f s (%.1f ms each), stopped in %.1f s"
                 % (REQUESTS, took, took / REQUESTS * 1000, time.monotonic() - t0 - took))
        with open(log, errors="replace") as f:
            text = f.read()
        summary = [line.split("== ", 1)[-1] for line in text.splitlines()
                   if re.search(r"(total heap usage|in use at exit|definitely lost|"
                                r"still reachable|ERROR SUMMARY|All heap blocks)", line)]
        tap.note(*summary)
        tap.check(rc == 0, "SIGTERM: the worker exits 0 under valgrind (%s: errors or "
                  "a definite leak)" % VALGRIND_EXIT, ["exit %s" % rc] + tail(text, 40))
        errors = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        tap.check(errors is not None and errors.group(1) == "0",
                  "valgrind: no memory error", tail(text, 40))
        lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
        tap.check("All heap blocks were freed" in text or
                  (lost is not None and lost.group(1) == "0"),
                  "valgrind: nothing definitely lost", tail(text, 40))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        db.__exit__()
        tmp.cleanup()


if __name__ == "__main__":
    main(body, deadline=300)
