"""test_fault_worker_kill.py: workers SIGKILLed under load.

The stack behind nginx (3 workers, nginx keeping FastCGI connections, as
deploy/stack does by default), under wrk load on every database route
and /json.  Three times, a second apart, one worker (another each time)
gets SIGKILL, in the middle of whatever it was doing: a statement, an
answer, a wait.

  the supervisor replaces each within 1 s;
  every answer is a 200 or a 503/504 with a short body; no drop, no hang.
  What happens to the request the killed worker held: nginx sent it on a
  kept connection, and when a kept connection fails nginx tries the
  request once more on another (ngx_http_upstream_next gives a cached
  connection an extra try), so the client of a read gets a 200 from
  another worker.  Not for /updates, whose first try may have written:
  the shipped configuration turns the retry off there, and its client
  gets a short 502 (test_retry_policy.py shows both on one request each).
  Only what was in flight on the killed worker fails: nginx may have
  sent it a request on each of several kept connections (the worker
  holds them all and answers one at a time), and each /updates client
  has at most one request in flight, so a kill costs at most one 502 per
  /updates client.
  after: a round of requests on every route answers 200 within 2 s of the
  last kill, then 1 s of wrk load answers 200 only; the worker never
  killed is the one of the start; one PostgreSQL connection per worker:
  a killed worker's backend does not linger.
"""

import os
import signal
import time

from ..kit.cmd import wait_for
from ..kit.load import count
from ..kit.scene import CLEAR, DB_PATHS, Scene
from ..kit.tap import main

KILLS = 3
WRITERS = 4  # wrk connections on /updates
REPLACED = 1.0  # seconds for the supervisor to have a new worker accepting
RECOVERY = 2.0


def body(tap):
    label = "workers SIGKILLed under load"
    with Scene(tap, "worker-kill", stack={}) as sc:
        st = sc.st
        reads = [p for p in DB_PATHS if not p.startswith("/updates")]
        load = sc.load(reads + ["/json"], seconds=KILLS + 2, connections=12)
        writes = sc.load([p for p in DB_PATHS if p not in reads],
                         seconds=KILLS + 2, connections=WRITERS)
        time.sleep(1)
        victims, took, new = [], [], []
        for k in range(KILLS):
            # Two workers of the start, then the first one's replacement,
            # 2 s old: a replacement is replaced too (one killed within 1 s
            # of its start would count as a crash loop, started again
            # after a delay).  The third worker of the start is spared.
            victim = sc.pids0[k] if k < KILLS - 1 else new[0]
            before = st.worker_pids()
            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            victims.append(victim)
            # Replaced: the victim gone, the pool back to its size.
            back = wait_for(
                lambda: len(st.worker_pids()) == sc.workers
                and victim not in st.worker_pids(), 5, 0.01)
            took.append(time.monotonic() - t0)
            new += sorted(set(st.worker_pids()) - set(before))
            tap.check(back and took[-1] <= REPLACED,
                      "kill %d: worker %d replaced within %.0f s (%.3f s)"
                      % (k + 1, victim, REPLACED, took[-1]), str(st.worker_pids()))
            time.sleep(max(0, 1 - took[-1]))
        since = time.monotonic()
        sc.wait_recovery(label, since, RECOVERY, DB_PATHS + ["/json"])
        sc.check_answers(label + ", reads", load.result())
        res = writes.result()
        sc.check_answers(label + ", /updates", res, allow=(502,) + CLEAR)
        tap.check(count(res, 502) <= KILLS * WRITERS,
                  "%s, /updates: only requests in flight on a killed worker fail: "
                  "%d x 502, at most %d kills x %d clients"
                  % (label, count(res, 502), KILLS, WRITERS))
        sc.check_steady(label)
        pids = st.worker_pids()
        kept = [p for p in sc.pids0 if p not in victims]
        tap.check(len(pids) == sc.workers and all(p in pids for p in kept)
                  and not set(victims) & set(pids),
                  "%s: %d workers; the ones never killed still serve, the killed "
                  "ones are gone" % (label, sc.workers),
                  ["at start %s, killed %s, now %s" % (sc.pids0, victims, pids)])
        sc.check_connections(label)


if __name__ == "__main__":
    main(body, deadline=120)
