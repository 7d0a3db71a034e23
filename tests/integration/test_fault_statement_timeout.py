"""test_fault_statement_timeout.py: queries blocked past statement_timeout.

The stack behind nginx (3 workers) with tfb-spawn's request time limit at
2 s (TFB_SPAWN_REQUEST_TIMEOUT=2s), which each worker reads in the pool's
scoreboard and sets PostgreSQL's statement_timeout 1800 ms below it
itself.  Under wrk load on every
database route, another client takes an ACCESS EXCLUSIVE lock on world
and holds it for 3 s: every statement that reads or writes world waits,
and PostgreSQL cancels it after 1.8 s.

  during: every answer is a 200 or the app's 503 with a short body, some
  are 503; no drop, no hang (wrk's --timeout is 10 s);
  no worker is killed for the request time limit: statement_timeout is
  there so that a blocked query ends first, and the request answers 503;
  this holds for /queries and /updates too, whose reads are one pipeline
  of 20 statements: the first one cancelled ends it, where each would
  otherwise wait its own 1.8 s;
  within 5 s of the lock's release (the backoff's 2 s ceiling plus slack)
  a round of requests on every database route answers 200, then 1 s of
  wrk load answers 200 only; the same worker processes, one PostgreSQL
  connection each.

Skipped when PGHOST is set: the lock would be taken on a database the
stack does not own.
"""

import re
import time

from ..kit import STACK, stack
from ..kit.cmd import tail
from ..kit.pg import WorldLock
from ..kit.scene import DB_PATHS, Scene
from ..kit.tap import main

LOCK = 3


def body(tap):
    stack.own_pg(tap, "statement_timeout under load")
    label = "queries blocked past statement_timeout"
    with Scene(tap, "stmt-timeout", stack=dict(env={"TFB_SPAWN_REQUEST_TIMEOUT": "2s"})) as sc:
        st = sc.st
        tap.check(re.search(r" tfb-fcgi\[\d+\] info: .*statement_timeout 1800 ms",
                            sc.st.app_log(), re.M),
                  "request time limit 2 s: the workers set statement_timeout 1800 ms",
                  tail(sc.st.app_log(), 5))
        load = sc.load(DB_PATHS, seconds=LOCK + 3)
        time.sleep(1)
        locker = sc.own(WorldLock([STACK, "psql"], st.env(), st.psql, LOCK))
        locked = locker.held
        tap.check(locked, "another client holds an ACCESS EXCLUSIVE lock on world")
        rc = locker.wait()
        since = time.monotonic()
        tap.check(rc == 0, "and releases it %d s later (psql exited %s)" % (LOCK, rc))
        sc.check_outage(label, load, since)
        log = sc.st.app_log()
        tap.check("busy on one request" not in log,
                  "%s: no worker killed for the request time limit" % label,
                  [ln for ln in log.splitlines() if "busy on one request" in ln][:5])


if __name__ == "__main__":
    main(body, deadline=120)
