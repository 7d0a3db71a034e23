"""pool_real.py: tfb-spawn with the real worker, build/tfb-fcgi, on
PostgreSQL (deploy/stack's embedded cluster, or the one PGHOST names).

The scenarios under load of poolcases.py on /db (SIGKILL, SIGHUP,
SIGTTIN/SIGTTOU, max-requests, SIGTERM leaving no connection in
pg_stat_activity), and the request time limit's other half: PostgreSQL's
statement_timeout, which each worker sets below the limit it reads in the
pool's scoreboard, makes a blocked query give up before the supervisor
would kill the worker.
"""

import os
import time

from ..kit import APP_BIN, SPAWN_BIN, STACK, web
from ..kit.pg import Database, WorldLock
from ..kit.pool import Worker
from ..kit.scene import Scene
from ..kit.tap import main
from . import poolcases


def statement_timeout(tap, w, db):
    with Scene(tap, "stmt") as sc:
        sp, ng = poolcases.start(sc, w, ["--request-timeout", "2s"])
        # Each worker says so itself: the supervisor sets no PGOPTIONS.
        tap.check(len(sp.lines(r" tfb-fcgi\[\d+\] info: .*statement_timeout 1800 ms"))
                  >= 2 and not sp.lines(r"PGOPTIONS"),
                  "--request-timeout 2s: each worker sets statement_timeout 1800 ms")
        before = sp.workers()
        locker = sc.own(WorldLock(["psql"], dict(os.environ, **db.pg), db.psql, 6))
        locked = locker.held
        t0 = time.monotonic()
        r = web.try_get(ng.url("/db"), timeout=10)
        took = time.monotonic() - t0
        # 1.8 s plus the way back; the kill would come after 2 s, and the
        # check below is what tells the two apart.
        tap.check(locked and r.status is not None and r.status >= 500
                  and 1.5 < took < 2.5,
                  "a query blocked on a lock gives up at statement_timeout, "
                  "before the limit (HTTP %s after %.2f s)" % (r.status, took))
        tap.check(not sp.lines(r"busy on one request") and sp.workers() == before,
                  "so the supervisor kills no worker")
        locker.wait()
        r = web.try_get(ng.url("/db"))
        tap.check(r.status == 200, "and /db answers again once the lock is gone")


def body(tap):
    tap.need([SPAWN_BIN, APP_BIN, STACK])
    with Database(tap) as db:
        w = Worker([APP_BIN], "/db", env=db.pg)
        poolcases.run_all(tap, w, db)
        statement_timeout(tap, w, db)


if __name__ == "__main__":
    main(body, deadline=500)
