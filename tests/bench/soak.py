"""tests/bench/soak: the workers' memory over a long mixed load.

    tests/bench/soak                   # 1,000,000 requests, every route in turn
    SOAK_REQUESTS=200000 WORKERS=2 tests/bench/soak

It starts a stack of its own (deploy/stack, in a VAR under /tmp, on a free
port) and loads it with wrk cycling through every route (64 connections),
in rounds of a few seconds, until the pool has served SOAK_REQUESTS.  The
status page (/status?json&full) gives each worker's requests and resident
memory: once the pool has served 10,000 requests (the caches are filled,
the statements prepared, the buffers grown) and after each round.  It
prints the table and a verdict: every worker under 8 MiB, and no worker
grown by more than 64 KiB (16 pages) since the 10,000th request.  Exit
status 1 when the verdict fails.
"""

import json
import os
import sys
import time
import urllib.request

from ..kit import stack
from ..kit.load import Wrk

PATHS = ["/plaintext", "/json", "/db", "/queries?queries=20", "/fortunes",
         "/updates?queries=5", "/cached-queries?count=20"]
FIRST = 10000
LIMIT_KB = 8 * 1024
GROWTH_KB = 64


def page(st):
    with urllib.request.urlopen(st.url("/status?json&full"), timeout=10) as r:
        return json.loads(r.read())


def rss(p):
    return {w["pid"]: w["rss kb"] for w in p["processes"]}


def load(st, seconds):
    """seconds of wrk cycling through every route; the non-2xx answers."""
    return Wrk(st.url("/"), seconds, connections=64, threads=2, paths=PATHS).result()["non2xx"]


def main():
    target = int(os.environ.get("SOAK_REQUESTS", "1000000"))
    workers = int(os.environ.get("WORKERS") or os.cpu_count() or 1)
    st = stack.Stack(server="nginx", workers=workers, name="soak")
    with st:
        start = page(st)["requests"]
        first, bad, rows = None, 0, []
        t0 = time.monotonic()
        while True:
            p = page(st)
            served = p["requests"] - start
            if first is None and served >= FIRST:
                first = rss(p)
            if first is not None:
                rows.append((served, rss(p)))
            if served >= target:
                break
            bad += load(st, 2 if first is None else 10)
        last = rows[-1][1]
        took = time.monotonic() - t0
    print("%d workers, %d requests over every route in %.0f s (%d non-2xx)"
          % (workers, served, took, bad))
    print()
    pids = sorted(last)
    print("| requests served | " + " | ".join("worker %d RSS KiB" % i
                                             for i in range(len(pids))) + " |")
    print("|---:|" + "---:|" * len(pids))
    for n, r in rows:
        print("| %d | %s |" % (n, " | ".join(str(r.get(pid, "-")) for pid in pids)))
    worst = max(last.values())
    growth = max(last[pid] - first.get(pid, last[pid]) for pid in pids)
    ok = worst < LIMIT_KB and growth <= GROWTH_KB and bad == 0
    print()
    print("verdict: %s: the largest worker %d KiB (limit %d), the largest growth "
          "since request %d: %d KiB (limit %d)"
          % ("pass" if ok else "FAIL", worst, LIMIT_KB, FIRST, growth, GROWTH_KB))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
