"""test_fault_pg_down_at_start.py: the pool starts while PostgreSQL is down.

`deploy/stack pg start` (the cluster made and loaded), `pg stop`, then the
pool (tfb-spawn, 3 workers) and nginx are started with no database to
reach.  A worker connects at start and, failing, backs off (50 ms doubling
to 2 s) and serves on: it never exits for it, so the supervisor sees no
crash loop.  Under wrk load on every database route and /json:

  3 s with PostgreSQL down, then `pg start` and 2 s more: every answer
  a 200 or the app's 503 with a short body (some 503); no drop, no hang;
  the workers are the ones started first, 3 s in and at the end;
  within 5 s of `pg start` (the backoff's 2 s ceiling plus slack) a
  round of requests on every database route answers 200; then 1 s of wrk
  load answers 200 only;
  the workers that started without a database are the ones serving (none
  exited or was replaced), with one PostgreSQL connection each.

Then the same start with no request at all: within 5 s of `pg start`
every worker holds its connection, each having tried again by itself (with
kept connections nginx may send every request to the other workers, and
one that no request reaches must not stay without).

"""

import time

from ..kit import stack
from ..kit.cmd import wait_for
from ..kit.scene import DB_PATHS, DB_RECOVERY, Scene
from ..kit.tap import main

DOWN = 3.0


def body(tap):
    stack.own_pg(tap, "the pool started with PostgreSQL down")
    label = "pool started with PostgreSQL down"
    with Scene(tap, "pg-down", stack={}, start=False) as sc:
        st = sc.st
        # The cluster is made and loaded by its first start; then it goes.
        if not (stack.step(tap, st, "pg", "start") and stack.step(tap, st, "pg", "stop")
                and stack.step(tap, st, "pool", "start")
                and stack.step(tap, st, "front", "start")):
            return
        sc.started()
        load = sc.load(DB_PATHS + ["/json"], seconds=int(DOWN) + 2)
        time.sleep(DOWN)
        sc.check_same_workers("%s, %.0f s later" % (label, DOWN))
        if not stack.step(tap, st, "pg", "start"):
            return
        sc.check_outage(label, load, time.monotonic())
    idle(tap)


def idle(tap):
    label = "pool started with PostgreSQL down, no request"
    with Scene(tap, "pg-down-idle", stack={}, start=False) as sc:
        st = sc.st
        if not (stack.step(tap, st, "pg", "start") and stack.step(tap, st, "pg", "stop")
                and stack.step(tap, st, "pool", "start")):
            return
        time.sleep(0.5)  # each worker's first try, at its start, has failed
        if not stack.step(tap, st, "pg", "start"):
            return
        t0 = time.monotonic()
        got = wait_for(lambda: st.app_connections() == sc.workers, DB_RECOVERY, 0.1)
        tap.check(got, "%s: every worker connects by itself once PostgreSQL is back "
                  "(%d connections, %.1f s)" % (label, st.app_connections(),
                                                time.monotonic() - t0))


if __name__ == "__main__":
    main(body, deadline=120)
