"""test_pg_restart.py: the pool outlives a PostgreSQL restart.

With the stack up behind nginx:
  1. every worker holds its connection (pg_stat_activity);
  2. `deploy/stack pg stop`: the DB routes answer 503 quickly with a short
     text/plain body, /json and /plaintext still 200;
  3. `deploy/stack pg start`: the DB routes answer 200 again within 15 s,
     the same worker processes serve (no restart), and pg_stat_activity
     shows exactly WORKERS connections named tfb-fcgi again;
  4. the same once more with no request at all during the outage: a
     worker notices its dead connection only on its next read, and then
     reconnects and reads again at once, so even the first requests after
     the restart answer 200; the same 2 s after an outage that answered
     one request 503.
Skipped when PGHOST is set (the stack then uses a PostgreSQL it does not
own, and must not stop it).
"""

import os
import re
import time

from ..kit import APP_BIN, STACK, stack, verify as tv, web
from ..kit.tap import main

DB_ROUTES = ["/db", "/queries?queries=2", "/fortunes", "/updates?queries=2"]
RECOVERY = 15.0      # seconds allowed for the DB routes to answer 200 again
FAST = 3.0           # a 503 during the outage must not take longer
SHORT_BODY = 1024


def check_outage(tap, st, workers):
    n = 2 * workers
    for path in DB_ROUTES:
        rs = web.batch(st.url(path), n) + web.batch(st.url(path), n)
        bad = []
        for r in rs:
            ctype = r.headers.get("Content-Type") or ""
            if (r.status != 503 or not re.match(r"^text/plain", ctype)
                    or len(r.body) > SHORT_BODY or r.elapsed > FAST):
                bad.append("%s in %.2f s" % (r.summary(120), r.elapsed))
        tap.check(not bad, "PostgreSQL down: %d x GET %s -> 503, short text/plain body, "
                  "within %.0f s" % (len(rs), path, FAST), bad[:6])
    for path in ("/json", "/plaintext"):
        rs = web.batch(st.url(path), n)
        bad = [r.summary(120) for r in rs if r.status != 200]
        tap.check(not bad, "PostgreSQL down: %d x GET %s -> 200" % (len(rs), path), bad[:6])
    rs = web.batch(st.url("/cached-queries?count=2"), n)
    bad = [r.summary(120) for r in rs if r.status not in (200, 503)]
    tap.check(not bad, "PostgreSQL down: GET /cached-queries -> 200 (from the cache) or 503",
              bad[:6])
    tap.note("cached-queries during the outage: %s"
             % sorted({r.status for r in rs}, key=str))


def wait_recovery(tap, st, workers, label):
    """Poll with concurrent /db batches until a whole batch is 200."""
    n = 2 * workers
    t0 = time.monotonic()
    last = []
    while time.monotonic() - t0 < RECOVERY:
        last = web.batch(st.url("/db"), n, timeout=5)
        if all(r.status == 200 for r in last):
            break
        time.sleep(0.3)
    took = time.monotonic() - t0
    ok = bool(last) and all(r.status == 200 for r in last)
    tap.check(ok, "%s: /db answers 200 again within %.0f s" % (label, RECOVERY),
              ["statuses of the last batch: %s" % [r.status for r in last]]
              + [r.summary(120) for r in last if r.status != 200][:4])
    if ok:
        tap.note("%s: recovered after %.1f s" % (label, took))
    return ok


def check_after(tap, st, workers, pids_before, label):
    v = tv.Verifier(st.url(""), psql=None)
    results = v.verify_db() + v.verify_fortune() + v.verify_query_cases(
        "query", "/queries?queries=") + v.verify_query_cases("update", "/updates?queries=")
    for name, problems in results:
        tap.problems("%s: TFB %s" % (label, name), problems)
    stack.touch_all_workers(st, workers)
    stack.check_connections(tap, st, workers, timeout=10)
    pids = st.worker_pids()
    tap.check(pids == pids_before and pids,
              "%s: the same %d worker processes serve (none restarted)" % (label, workers),
              ["before %s" % pids_before, "after  %s" % pids])


def check_first_after(tap, st, workers, label):
    """The first requests once PostgreSQL is back are all answered: a
    worker whose connection died while it was idle learns it from its next
    read, reconnects at once and reads again, instead of answering 503."""
    rs = web.batch(st.url("/db"), 2 * workers) + \
        web.batch(st.url("/queries?queries=3"), 2 * workers)
    bad = [r.summary(120) for r in rs if r.status != 200]
    tap.check(not bad, "%s: the first %d requests after PostgreSQL is back -> 200"
              % (label, len(rs)), bad[:6])


def body(tap):
    tap.need([APP_BIN, STACK])
    stack.own_pg(tap, "PostgreSQL restart")
    workers = int(os.environ.get("TFB_TEST_WORKERS", "3"))
    with stack.started(tap, server="nginx", workers=workers, name="pgrestart") as st:
        if st:
            restarts(tap, st, workers)


def restarts(tap, st, workers):
    stack.touch_all_workers(st, workers)
    stack.check_connections(tap, st, workers)
    pids = st.worker_pids()
    tap.check(len(pids) == workers, "%d tfb-fcgi worker processes" % workers,
              "found %s" % pids)
    tap.note("worker pids: %s" % pids)

    # 1. Restart with requests during the outage.
    stopped = stack.step(tap, st, "pg", "stop", timeout=90)
    try:
        if stopped:
            check_outage(tap, st, workers)
    finally:
        started = stack.step(tap, st, "pg", "start", timeout=90)
    if started and wait_recovery(tap, st, workers, "restart under requests"):
        check_after(tap, st, workers, pids, "restart under requests")

    # 2. Restart with no request in between: the first requests after
    # it must not fail, though every worker's connection died idle.
    if stack.step(tap, st, "pg", "stop", timeout=90):
        time.sleep(0.5)
    if stack.step(tap, st, "pg", "start", timeout=90):
        check_first_after(tap, st, workers, "idle restart")
        if wait_recovery(tap, st, workers, "idle restart"):
            check_after(tap, st, workers, pids, "idle restart")

    # 3. One request during the outage (a 503), then none: 2 s after
    # PostgreSQL is back, every request is answered.
    if stack.step(tap, st, "pg", "stop", timeout=90):
        r = web.try_get(st.url("/db"))
        tap.check(r.status == 503, "one /db while PostgreSQL is down: 503",
                  r.summary())
    if stack.step(tap, st, "pg", "start", timeout=90):
        time.sleep(2)
        check_first_after(tap, st, workers, "one request in the outage")


if __name__ == "__main__":
    main(body, deadline=300)
