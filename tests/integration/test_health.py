"""test_health.py: health and the database's state, seen from outside.

With the stack up (nginx, WORKERS=2, its own PostgreSQL):
  * `deploy/stack status` counts the pool's workers ("2 workers"), not
    the status process beside them;
  * GET /ping (php-fpm's ping.path, routed to the status process) answers
    200 "ok: 2 of 2 workers can serve; database up ...", and keeps
    answering 200 at once while every worker is held in the database (a
    busy worker can serve: it is not stuck);
  * every worker's session ended by the server while idle
    (pg_terminate_backend): each sees it on the idle socket, logs the
    server's reason and connects again, with no request sent;
  * PostgreSQL stopped (`deploy/stack pg stop`) for 9 s, while every
    worker waits in it on a lock (granted before the requests are sent;
    an idle worker learns of the stop on its idle socket too, but a lock
    makes it certain that each was in the middle of a request):
    /ping answers 503
    "fail: ...; database down: <libpq's message>", each worker's record
    on the status page says down, since when, its attempts (more of them
    as the worker retries by itself) and its last error on one line (no
    tab: libpq's messages hold one); the log says "cannot connect (next
    try in 2000 ms)" once per worker, then that it was repeated N times,
    not once every 2 s;
  * PostgreSQL started again: /ping back to 200 within 5 s, each worker
    up again, its reconnection counted.

Against a PostgreSQL of the test's own (TCP on 127.0.0.1, scram-sha-256,
loaded with deploy/sql), `deploy/stack start` (what `make start` runs):
  * with PGDATABASE=nosuchdb, with a wrong password, and on a port where
    nothing listens: it fails, saying PostgreSQL's own words (database
    "nosuchdb" does not exist; password authentication failed; Connection
    refused), prints no URL, and leaves nothing running;
  * with the right settings it starts; `deploy/stack status` and `env`
    from a shell without any PG* variable still find the external server
    (the stack recorded its settings, not the password), and the record
    goes with `deploy/stack stop`.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import tempfile
import time

from ..kit import APP_BIN, APP_NAME, REPO, SPAWN_BIN, STACK, proc, stack, web
from ..kit.cmd import tail, wait_for
from ..kit.pg import APP_DB, APP_PASSWORD, APP_USER, Cluster, WorldLock
from ..kit.stack import Stack, StackError
from ..kit.tap import main

WORKERS = 2
DOWN_S = 9


def ping(st, timeout=5):
    r = web.try_get(st.url("/ping"), timeout=timeout)
    r.body = r.body.decode(errors="replace")
    return r


def _status(st):
    """The status page, json&full, from the status socket (no request to
    a worker); None when it does not answer."""
    sock = st.run_path("status.sock")
    if sock is None:
        return None
    r = subprocess.run([str(SPAWN_BIN), "status", sock, "json&full"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def check_up(tap, st):
    r = st.run("status", timeout=30)
    tap.check(r.returncode == 0 and "pool:  running, %d workers" % WORKERS in r.stdout,
              "deploy/stack status: the pool's %d workers, not its status process"
              % WORKERS, tail(r.stdout, 5))
    r = ping(st)
    tap.check(r.status == 200 and r.body == "ok: %d of %d workers can serve; database up "
              "(%d of %d connected)\n" % (WORKERS, WORKERS, WORKERS, WORKERS) and
              r.headers.get("Content-Type", "").startswith("text/plain"),
              "GET /ping -> 200, one line: the workers can serve, the database is up",
              r.summary(300))


def check_busy(tap, st):
    """Every worker in the database, held by a lock: /ping still at once."""
    with WorldLock([STACK, "psql"], st.env(), st.psql, 3) as lock, \
            concurrent.futures.ThreadPoolExecutor(2 * WORKERS) as ex:
        futs = [ex.submit(web.try_get, st.url("/db"), timeout=20) for _ in range(2 * WORKERS)]
        wait_for(lambda: (_status(st) or {}).get("active processes") == WORKERS, 2)
        t0 = time.monotonic()
        r = ping(st)
        took = time.monotonic() - t0
        j = _status(st) or {}
        tap.check(lock.held and r.status == 200 and
                  r.body.startswith("ok: %d of %d" % (WORKERS, WORKERS)) and took < 1 and
                  j.get("active processes") == WORKERS and not any(f.done() for f in futs),
                  "every worker busy in the database: /ping answers 200 in %.3f s "
                  "(busy is not stuck)" % took,
                  ["lock held: %s" % lock.held, r.summary(200), str(j)[:200]])
        [f.result() for f in futs]


def check_idle_end(tap, st):
    """The server ends every worker's session while no request is on it
    (pg_terminate_backend): each worker sees it on the idle socket and
    connects again by itself, before any request needs it."""
    before = {p["pid"]: p.get("db reconnects", 0) for p in down_records(st)[1]}
    n = st.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = '%s'" % APP_NAME)
    ok = wait_for(lambda: (lambda procs: len(procs) == WORKERS and all(
        p.get("db state") == "up" and p.get("db reconnects", 0) > before.get(p["pid"], 0)
        for p in procs))(down_records(st)[1]), 5, step=0.1)
    log = st.app_log()
    tap.check(n == str(WORKERS) and ok and
              log.count("the connection ended while idle: FATAL:  terminating connection "
                        "due to administrator command") >= WORKERS,
              "sessions ended while idle (%s terminated): each worker sees it at once, "
              "logs the server's reason and connects again, no request sent" % n,
              [str(down_records(st)[1])[:400]] + tail(log, 6))


def down_records(st):
    j = _status(st) or {}
    return j, j.get("processes", [])


def check_down(tap, st):
    """PostgreSQL stopped while every worker waits in it (a lock held), so
    that each learns of it at once: a worker idle meanwhile would learn it
    only at its next query."""
    with WorldLock([STACK, "psql"], st.env(), st.psql, 20) as lock, \
            concurrent.futures.ThreadPoolExecutor(2 * WORKERS) as ex:
        futs = [ex.submit(web.try_get, st.url("/db"), timeout=20) for _ in range(2 * WORKERS)]
        held = lock.held and wait_for(
            lambda: (_status(st) or {}).get("active processes") == WORKERS, 5)
        held = held and not any(f.done() for f in futs)
        t_stop = int(time.time())
        if not (tap.check(held, "every worker held in the database by a lock (%s)"
                          % ("held" if lock.held else "the lock not granted")) and
                stack.step(tap, st, "pg", "stop")):
            return False
        codes = sorted({f.result().status for f in futs})
    r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(ping(st)), 5)
    r = r or ping(st)
    tap.check(r.status == 503 and r.body.startswith("fail: %d of %d workers can serve; "
                                                    "database down: " % (WORKERS, WORKERS))
              and "\t" not in r.body and r.body.count("\n") == 1,
              "PostgreSQL stopped under the held requests (answered %s): /ping -> 503, one "
              "line with the database's own words" % codes, r.summary(400))
    j, procs = down_records(st)
    first = {p["pid"]: p.get("db attempts", 0) for p in procs}
    tap.check(len(procs) == WORKERS and all(
        p.get("db state") == "down" and p.get("db since", 0) >= t_stop - 1 and
        p.get("db last error") and "\t" not in p["db last error"] and
        "\n" not in p["db last error"] for p in procs) and
        j.get("database") == {"up": 0, "down": WORKERS, "none": 0},
        "each worker's record: down since the stop, its last error on one line",
        str(procs)[:600])
    time.sleep(DOWN_S)
    j, procs = down_records(st)
    more = {p["pid"]: p.get("db attempts", 0) for p in procs}
    tap.check(procs and all(more.get(pid, 0) >= n + 2 for pid, n in first.items()),
              "after %d s down each worker has tried again by itself (attempts %s -> %s)"
              % (DOWN_S, first, more))
    return True


def check_log(tap, st, pids):
    """The same warning every 2 s: written once, then counted.  Another
    line of the same worker in between (an info line) writes the count
    and the warning starts anew: twice at most in these 9 s."""
    log = ""
    for d in st.var_dirs():
        p = os.path.join(d, "log", "app.log")
        if os.path.exists(p):
            log = open(p, errors="replace").read()
            break
    bad, counted = [], []
    for pid in pids:
        mine = [ln for ln in log.splitlines() if "[%d] " % pid in ln]
        lines = [ln for ln in mine if "warn: db: cannot connect (next try in 2000 ms)" in ln]
        plain = [ln for ln in lines if "(repeated " not in ln]
        n = sum(int(m.group(1)) for m in
                (re.search(r"\(repeated (\d+) times in the last \d+ s\)$", ln) for ln in lines)
                if m)
        counted.append(n)
        if not plain or len(plain) > 2 or n < 2 or "\t" in "".join(lines):
            bad.append("pid %d: written %d times, %d more counted:" % (pid, len(plain), n))
            bad += [ln[:160] for ln in mine[-12:]]
    tap.check(pids and not bad,
              "app.log: each worker's \"cannot connect (next try in 2000 ms)\" written once "
              "(twice at most), the other attempts counted: \"(repeated N times in the last "
              "M s)\" (N = %s), no tab" % counted, bad)


def check_back(tap, st):
    before = {p["pid"]: p.get("db reconnects", 0) for p in down_records(st)[1]}
    if not stack.step(tap, st, "pg", "start"):
        return
    t0 = time.monotonic()
    r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(ping(st)), 5, step=0.1)
    took = time.monotonic() - t0
    tap.check(r is not None and r.body.startswith("ok: "),
              "PostgreSQL started: /ping -> 200 again in %.1f s (within 5 s)" % took,
              ping(st).summary(300) if r is None else "")
    wait_for(lambda: all(p.get("db state") == "up" for p in down_records(st)[1]), 5)
    procs = down_records(st)[1]
    tap.check(len(procs) == WORKERS and all(
        p.get("db state") == "up" and p.get("db reconnects", 0) > before.get(p["pid"], 0)
        for p in procs),
        "each worker up again, its reconnection counted", str(procs)[:500])


def on_stack(tap):
    with stack.started(tap, server="nginx", workers=WORKERS, name="health") as st:
        if not st:
            return
        check_up(tap, st)
        check_idle_end(tap, st)
        check_busy(tap, st)
        pids = st.worker_pids()
        if check_down(tap, st):
            check_back(tap, st)
            check_log(tap, st, pids)


# --------------------------------------------------------------------------
# make start against a database that cannot work

def start_fails(tap, pg, what, env, want):
    """deploy/stack start with env fails saying want, no URL, nothing left."""
    st = Stack(server="nginx", workers=WORKERS, name="health-bad", env=env, tap=tap)
    try:
        t0 = time.monotonic()
        r = st.run("start", timeout=60)
        took = time.monotonic() - t0
        out = r.stdout or ""
        tap.check(r.returncode not in (0, None) and want in out and "http://" not in out,
                  "%s: deploy/stack start fails in %.1f s, saying %r, with no URL"
                  % (what, took, want), ["exit %s" % r.returncode] + tail(out, 6))
        left = st.worker_pids() + st.pool_pids() + st.front_pids()
        left = [p for p in left if proc.alive(p)]
        tap.check(not left and not st.run_path("spawn.pid") and not st.run_path("pg.env"),
                  "%s: nothing of the stack left running" % what, "pids %s" % left)
    finally:
        st.cleanup()


def on_external(tap, pg):
    good = {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": APP_USER,
            "PGPASSWORD": APP_PASSWORD, "PGDATABASE": APP_DB}
    start_fails(tap, pg, "PGDATABASE=nosuchdb", dict(good, PGDATABASE="nosuchdb"),
                'database "nosuchdb" does not exist')
    start_fails(tap, pg, "a wrong password", dict(good, PGPASSWORD="wrong"),
                'password authentication failed for user "%s"' % APP_USER)
    start_fails(tap, pg, "a port nothing listens on", dict(good, PGPORT=str(web.free_port())),
                "Connection refused")
    with stack.started(tap, server="nginx", workers=WORKERS, name="health-ext",
                       env=good) as st:
        if not st:
            return
        # A shell without any of them: the stack's record says where.
        st.extra_env = {k: None for k in list(os.environ) + list(good) if k.startswith("PG")}
        r = st.run("status", timeout=30)
        tap.check(r.returncode == 0 and "pg:    external, answering at PGHOST=127.0.0.1 "
                  "PGPORT=%d" % pg.port in r.stdout,
                  "deploy/stack status without PG* variables: the external server the "
                  "stack started with, answering", ["exit %s" % r.returncode] + tail(r.stdout))
        env = st.pg_env()
        tap.check(env.get("PGPORT") == str(pg.port) and env.get("PGHOST") == "127.0.0.1" and
                  "PGPASSWORD" not in env,
                  "deploy/stack env without PG* variables: that server too (no password "
                  "recorded)", str(env))
        rec = st.run_path("pg.env")
        st.extra_env = {}
    tap.check(rec is not None and not os.path.exists(rec),
              "the record (run/pg.env) goes with the stop", str(rec))


def body(tap):
    tap.need([APP_BIN, SPAWN_BIN, STACK])
    for k in [k for k in os.environ if k.startswith("PG") and k != "PG_BINDIR"]:
        del os.environ[k]
    on_stack(tap)
    pg = Cluster(tempfile.mkdtemp(prefix="tfb-test-health-pg-", dir="/tmp"), web.free_port(),
                 hba="local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
                 settings={"password_encryption": "scram-sha-256"})
    try:
        try:
            pg.initdb()
            pg.start()
            pg.load(str(REPO / "deploy" / "sql"))
            err = ""
        except StackError as e:
            err = str(e)
        if tap.check(not err, "a PostgreSQL of the test's own on 127.0.0.1:%d, "
                     "scram-sha-256, loaded" % pg.port, err):
            on_external(tap, pg)
    finally:
        pg.remove()


if __name__ == "__main__":
    main(body, deadline=240)
