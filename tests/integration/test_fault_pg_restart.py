"""test_fault_pg_restart.py: PostgreSQL restarted under load.

The stack behind nginx (3 workers) under wrk load on every database route
(/db, /queries?queries=20, /updates?queries=20, /fortunes, in turn, 16
connections).  One second in, `deploy/stack pg stop` (pg_ctl -m fast: the
backends are terminated, statements in flight fail); two seconds of
outage; `deploy/stack pg start`.

  during: every answer is a 200 or the app's 503 with a short text/plain
  body, and some are 503; no connection dropped, none hung;
  after: a round of requests on every route answers 200 within 5 s of
  PostgreSQL accepting connections again: a worker tries again at most
  DB_BACKOFF_MAX_MS (2 s) after its last try, plus slack for a loaded
  machine; then 1 s of wrk load answers 200 only; the same worker
  processes serve, one PostgreSQL connection each.

test_pg_restart.py restarts PostgreSQL with a few requests at a time and
checks the answers one by one; this file does it under load, and counts.
"""

import time

from ..kit import stack
from ..kit.scene import DB_PATHS, Scene
from ..kit.tap import main

OUTAGE = 2.0


def body(tap):
    stack.own_pg(tap, "PostgreSQL restarted under load")
    label = "PostgreSQL restarted under load"
    with Scene(tap, "pg-restart", stack={}) as sc:
        load = sc.load(DB_PATHS, seconds=6)
        time.sleep(1)
        stack.step(tap, sc.st, "pg", "stop", timeout=60, after=" under load")
        time.sleep(OUTAGE)
        stack.step(tap, sc.st, "pg", "start", timeout=60, after=" under load")
        sc.check_outage(label, load, time.monotonic())


if __name__ == "__main__":
    main(body, deadline=120)
