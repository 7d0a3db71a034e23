"""test_retry_policy.py: a worker killed in the middle of a request, behind
nginx: a read is sent again to another worker, /updates is not.

nginx sends a request whose FastCGI connection failed before any answer
to the next server, and with kept connections that is the same pool again
(fastcgi_next_upstream error timeout, its default).  For a read that is
what a client wants; for /updates the first try may have written, so the
shipped configuration turns it off there (deploy/nginx/nginx.conf.in).

With the World table locked, a request waits in the database; the status
page says which worker holds it; that worker is SIGKILLed.  Then:
  * /db: answered 200 (sent again, served once the lock is gone);
  * /updates?queries=1: answered 502 at once, not sent again;
  * and the pool replaced the worker.
"""

import concurrent.futures
import json
import os
import signal
import time

from ..kit import APP_BIN, STACK, stack, web
from ..kit.pg import WorldLock
from ..kit.tap import main

WORKERS = 2
LOCK_SECONDS = 3


def holder(st, path):
    """The pid of the worker in its database phase on path, within 3 s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        r = web.try_get(st.url("/status?json&full"), timeout=5)
        if r.status == 200:
            for p in json.loads(r.body)["processes"]:
                if p["state"] == "Database" and p["route"] == path.split("?")[0]:
                    return p["pid"]
        time.sleep(0.05)
    return None


def killed_during(tap, st, path):
    """The response to path when its worker is killed in the database."""
    with WorldLock([STACK, "psql"], st.env(), st.psql, LOCK_SECONDS) as lock, \
            concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(web.try_get, st.url(path), timeout=15)
        pid = holder(st, path)
        if not lock.held or pid is None:
            tap.fail("GET %s: a worker waits in the database (lock held: %s)"
                     % (path, lock.held))
            return None, None
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        r = fut.result()
        took = time.monotonic() - t0
        lock.wait()
        return r, took


def body(tap):
    tap.need([APP_BIN, STACK])
    with stack.started(tap, server="nginx", workers=WORKERS, name="retry") as st:
        if st:
            retries(tap, st)


def retries(tap, st):
    # Kept connections in both nginx workers' caches: a retry is then
    # what nginx does after a failure on one of them.
    for _ in range(8):
        web.batch(st.url("/json"), 8)
    r, took = killed_during(tap, st, "/db")
    if r is not None:
        tap.check(r.status == 200, "/db, its worker killed in the database: sent "
                  "again, 200 once the lock is gone (%.1f s)" % took, r.summary(200))
    before = st.psql("SELECT sum(randomnumber) FROM world")
    r, took = killed_during(tap, st, "/updates?queries=1")
    if r is not None:
        tap.check(r.status == 502 and took < LOCK_SECONDS - 1,
                  "/updates, its worker killed in the database: 502 at once, not "
                  "sent again (%.1f s)" % took, r.summary(200))
    time.sleep(0.5)
    after = st.psql("SELECT sum(randomnumber) FROM world")
    tap.check(before == after, "nothing was written", "%s then %s" % (before, after))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5 and len(st.worker_pids()) != WORKERS:
        time.sleep(0.1)
    tap.check(len(st.worker_pids()) == WORKERS, "both killed workers replaced",
              str(st.worker_pids()))


if __name__ == "__main__":
    main(body, deadline=120)
