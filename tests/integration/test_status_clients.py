#!/usr/bin/env python3
"""test_status_clients.py: the status process serves every client at once.

A real pool (tfb-spawn --status, two tfb-fcgi workers, no database: only
/plaintext is asked for), its status socket spoken to in raw FastCGI
(fcgi.py).  While one client
  * holds a connection open and says nothing,
  * sends half a request and stops,
  * asks in a loop on a kept connection, again the moment each answer
    comes,
  * or asks for 500 pages on one connection and never reads them,
a second client gets the whole page in under 100 ms, every time, and
`tfb-spawn status SOCKET` prints it.  Each wait, and its worst, is shown
on a "# " line.  Then:
  * a route with a newline in it (sent straight to the pool's socket)
    plants no line in the text page, and stays whole in ?json;
  * --status in a directory that does not exist is an error that names
    --status, not --bind.

About 3 s; every wait is bounded.  Needs no PostgreSQL, nginx or port.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from ..kit import APP_BIN, BUILD, fcgi
from ..kit.cmd import tail, wait_for
from ..kit.tap import main

SPAWN = BUILD / "tfb-spawn"
LIMIT_MS = 100   # the promise: a second client waits less than this
ROUNDS = 20      # second clients per scenario
CAP_S = 2.0      # past this a second client counts as unanswered
BUDGET_S = 10    # for the ROUNDS of one scenario: fewer when they are slow


class Pool:
    """tfb-spawn -w 2 with --status, in a temporary directory; killed, with
    its workers, on the way out."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tfb-status-clients-")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "fcgi.sock")
        self.status = os.path.join(self.dir, "status.sock")
        self.log = os.path.join(self.dir, "spawn.log")
        env = dict(os.environ)
        # No database: start-up needs none, and /plaintext asks none.
        env.update(PGHOST=os.path.join(self.dir, "nopg"), PGCONNECT_TIMEOUT="1")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [str(SPAWN), "-w", "2", "--bind", self.sock, "--status", self.status,
                 "--socket-mode", "0666"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)

    def ready(self, timeout=15):
        def answers():
            try:
                return page(self.status, timeout=1) is not None
            except OSError:
                return False
        return wait_for(answers, timeout, step=0.05)

    def log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return tail(f.read(), 15)
        except OSError:
            return []

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def page(path, query="", keep=False, conn=None, timeout=CAP_S):
    """The status page for query, as a fcgi.Response; None when it does
    not come whole within timeout.  On conn when given, else on a
    connection of its own."""
    own = conn is None
    c = conn or fcgi.connect(path, timeout=timeout)
    try:
        c.sock.settimeout(timeout)
        r = c.request({"REQUEST_METHOD": "GET", "REQUEST_URI": "/status",
                       "QUERY_STRING": query}, keep=keep)
        return r if r.app_status is not None and r.status == 200 else None
    except OSError:  # socket.timeout included
        return None
    finally:
        if own:
            c.close()


def second_client(path, query="json"):
    """A new client's wait for the whole page, in ms (None: not within
    CAP_S)."""
    t0 = time.monotonic()
    r = page(path, query)
    return (time.monotonic() - t0) * 1000 if r is not None else None


def command(status_sock):
    """`tfb-spawn status SOCK`: (exit status, output, seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([str(SPAWN), "status", status_sock], capture_output=True,
                           text=True, timeout=10)
        return p.returncode, p.stdout + p.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        return None, "no exit within 10 s", time.monotonic() - t0


def measure(tap, pool, what, busy=None):
    """ROUNDS second clients (and the command) while what happens; checks
    each answered in under LIMIT_MS."""
    waits = []
    end = time.monotonic() + BUDGET_S
    while len(waits) < ROUNDS and time.monotonic() < end:
        waits.append(second_client(pool.status))
        if busy is not None:
            busy()
        time.sleep(0.02)
    rc, out, secs = command(pool.status)
    got = [w for w in waits if w is not None]
    worst = max(got) if len(got) == len(waits) == ROUNDS else None
    tap.note("%s: second client waited %s ms (median %s, worst %s); "
             "tfb-spawn status took %.3f s"
             % (what, " ".join("%.1f" % w if w is not None else "none" for w in waits),
                "%.1f" % sorted(got)[len(got) // 2] if got else "-",
                "%.1f" % worst if worst is not None else "none within %.0f s" % CAP_S,
                secs))
    tap.check(worst is not None and worst < LIMIT_MS,
              "%s: a second client gets the page in under %d ms, %d times out of %d"
              % (what, LIMIT_MS, len(got), ROUNDS),
              ["waits (ms): %s" % waits])
    tap.check(rc == 0 and "pool:" in out,
              "%s: tfb-spawn status prints the page (%.2f s)" % (what, secs),
              ["exit %s" % rc] + tail(out, 5))


def holder_silent(tap, pool):
    c = fcgi.connect(pool.status, timeout=5)
    try:
        measure(tap, pool, "one client holds a connection, silent")
    finally:
        c.close()


def holder_half(tap, pool):
    c = fcgi.connect(pool.status, timeout=5)
    try:
        req = fcgi.begin() + fcgi.params({"REQUEST_METHOD": "GET",
                                          "QUERY_STRING": "json"})
        c.send(req[:-5])
        measure(tap, pool, "one client sends half a request")
    finally:
        c.close()


def asker_loop(tap, pool):
    """A kept connection asking again the moment each answer comes, in a
    thread of its own, for as long as the second clients are measured."""
    stop = threading.Event()
    count = [0, 0]  # answered, failed

    def loop():
        conn = None
        while not stop.is_set():
            try:
                conn = conn or fcgi.connect(pool.status, timeout=5)
                ok = page(pool.status, "full", keep=True, conn=conn) is not None
            except OSError:
                ok = False
            count[0 if ok else 1] += 1
            if not ok and conn is not None:
                # The status process ends a kept connection at its
                # lifetime: a new one, as nginx would.
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        measure(tap, pool, "one client asks in a loop on a kept connection")
    finally:
        stop.set()
        t.join(10)
    tap.check(count[0] > ROUNDS, "  and that client was answered too (%d answers, "
              "%d connections ended)" % tuple(count))


def never_reads(tap, pool):
    c = fcgi.connect(pool.status, timeout=5)
    try:
        one = (fcgi.begin(flags=fcgi.KEEP_CONN) +
               fcgi.params({"REQUEST_METHOD": "GET", "QUERY_STRING": "json&full"}) +
               fcgi.stdin())
        c.sock.setblocking(False)
        try:
            c.sock.send(one * 500)  # as much as the socket takes
        except BlockingIOError:
            pass
        time.sleep(0.1)
        measure(tap, pool, "one client asks for 500 pages and never reads")
    finally:
        c.close()


def planted_route(tap, pool):
    """A route with a newline, sent straight to the pool's socket, as any
    peer of it can."""
    route = "/plaintext\nidle processes:       999"
    with fcgi.connect(pool.sock, timeout=5) as c:
        r = c.request({"REQUEST_METHOD": "GET", "REQUEST_URI": route,
                       "QUERY_STRING": ""})
    tap.check(r.app_status is not None, "a request whose route holds a newline is "
              "answered (%s)" % r.status)
    text = page(pool.status, "full")
    body = text.body.decode(errors="replace") if text else ""
    lines = [ln for ln in body.splitlines() if ln.startswith("idle processes:")]
    tap.check(text is not None and lines and all("999" not in ln for ln in lines),
              "text page: the route's newline plants no line", lines + tail(body, 8))
    tap.check("route:                /plaintext\\nidle processes:       999" in body,
              "text page: the route shown with its newline escaped",
              [ln for ln in body.splitlines() if ln.startswith("route:")])
    js = page(pool.status, "json&full")
    try:
        routes = [p["route"] for p in json.loads(js.body)["processes"]] if js else []
    except (ValueError, KeyError) as e:
        routes = ["not JSON: %s" % e]
    tap.check(route in routes, "json page: the route whole in its string", routes)


def status_in_missing_dir(tap, pool):
    bad = "/nonexistent/dir/status.sock"
    try:
        p = subprocess.run([str(SPAWN), "-w", "1", "--bind",
                            os.path.join(pool.dir, "other.sock"), "--status", bad,
                            "--", "/bin/true"], capture_output=True, text=True,
                           timeout=10)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, "no exit within 10 s"
    tap.check(rc == 2 and ("--status %s" % bad) in err and "--bind" not in err,
              "--status in a missing directory: exit 2, naming --status", [err])


def body(tap):
    tap.need([SPAWN, APP_BIN])
    pool = Pool()
    try:
        if not tap.check(pool.ready(), "the pool's status socket answers",
                         pool.log_tail()):
            return
        measure(tap, pool, "nobody else")
        holder_silent(tap, pool)
        holder_half(tap, pool)
        asker_loop(tap, pool)
        never_reads(tap, pool)
        planted_route(tap, pool)
        status_in_missing_dir(tap, pool)
        tap.check(pool.proc.poll() is None, "the pool is still up", pool.log_tail())
    finally:
        pool.stop()


if __name__ == "__main__":
    main(body, deadline=180)
