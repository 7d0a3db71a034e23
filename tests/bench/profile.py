"""tests/bench/profile: where a route's time goes, from a system-wide perf
sample taken while wrk loads it.

    tests/bench/profile [ROUTE...]          # as root; default: every route
    PROFILE_SECONDS=6 WORKERS=2 SERVER=nginx tests/bench/profile /db

It starts a stack of its own (deploy/stack, in a VAR under /tmp, on a free
port), and for each route runs wrk (64 connections) while `perf record -a`
samples every CPU at 999 Hz.  Each sample is charged to a part by its
process and the object it was in: the worker's own code, libfcgi, libpq,
json-c, libc, the kernel on the worker's behalf; nginx or lighttpd, and
PostgreSQL, each in user space and in the kernel; wrk.  The table gives
each part in microseconds of CPU per request (samples / 999 Hz / requests
served in the window) and the whole machine's idle time the same way.
Samples of other processes (anything the machine runs besides the stack)
are counted apart, so a busy machine shows as such.

TFB_STACK and APP select another stack script and binary (to profile an
older build the same way).  Needs perf (linux-perf) and wrk; perf needs
root or kernel.perf_event_paranoid <= 0.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile
import time

from ..kit import stack
from ..kit.load import Wrk

ROUTES = ["/plaintext", "/json", "/db", "/queries?queries=20", "/fortunes",
          "/updates?queries=20", "/cached-queries?count=20"]
HZ = 999
PARTS = ["app", "libfcgi", "libpq", "json-c", "libc", "app kernel", "front",
         "front kernel", "postgres", "postgres kernel", "wrk", "others", "idle"]
APP_LIBS = (("libfcgi", "libfcgi"), ("libpq", "libpq"), ("libjson-c", "json-c"),
            ("libc.so", "libc"), ("libc-", "libc"))


def part(comm, dso):
    kernel = dso == "[kernel.kallsyms]"
    if comm in ("swapper",):
        return "idle"
    if comm == "tfb-fcgi":
        if kernel:
            return "app kernel"
        for key, name in APP_LIBS:
            if key in dso:
                return name
        return "app"
    if comm in ("nginx", "lighttpd"):
        return "front kernel" if kernel else "front"
    if comm == "postgres" or comm.startswith("postgres"):
        return "postgres kernel" if kernel else "postgres"
    if comm == "wrk" or comm.startswith("wrk"):
        return "wrk"
    return "others"


def sample(seconds, out):
    return subprocess.Popen(["perf", "record", "-a", "-F", str(HZ), "-q", "-o", out,
                             "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def count(data):
    counts = collections.Counter()
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         errors="replace").stdout
    for line in out.splitlines():
        m = re.match(r"\s*(.+?)\s+[0-9a-f]+ \((.*)\)\s*$", line)
        if m:
            counts[part(m.group(1), m.group(2))] += 1
    return counts


def profile(st, route, seconds, tmp):
    data = os.path.join(tmp, "perf.data")
    # perf samples the middle of the load, away from its ramp: the
    # connections made, the caches filled.
    load = Wrk(st.url(route), seconds + 2, connections=64, threads=2)
    time.sleep(1)
    p = sample(seconds, data)
    p.wait()
    r = load.result()
    if not r["parsed"]:
        raise SystemExit("wrk: %s" % r["out"][-400:])
    return r["rps"], r["non2xx"], count(data)


def row(route, rps, bad, counts, seconds):
    requests = rps * seconds
    us = {k: counts.get(k, 0) / HZ / requests * 1e6 for k in PARTS}
    cells = ["%.1f" % us[k] for k in PARTS]
    return "| %s | %.0f%s | %s |" % (route, rps, " (%d non-2xx)" % bad if bad else "",
                                     " | ".join(cells))


def main():
    routes = sys.argv[1:] or ROUTES
    seconds = int(os.environ.get("PROFILE_SECONDS", "5"))
    workers = int(os.environ.get("WORKERS") or os.cpu_count() or 1)
    server = os.environ.get("SERVER", "nginx")
    for tool in ("perf", "wrk"):
        if subprocess.run(["sh", "-c", "command -v " + tool],
                          stdout=subprocess.DEVNULL).returncode != 0:
            raise SystemExit("profile: %s not found (Debian: linux-perf, wrk)" % tool)
    st = stack.Stack(server=server, workers=workers, name="profile")
    with tempfile.TemporaryDirectory(prefix="tfb-profile-") as tmp, st:
        print("%s, %d workers, wrk -c 64, perf -a at %d Hz for %d s per route; "
              "CPU microseconds per request" % (server, workers, HZ, seconds))
        print()
        print("| route | req/s | " + " | ".join(PARTS) + " |")
        print("|---|---:|" + "---:|" * len(PARTS))
        for route in routes:
            rps, bad, counts = profile(st, route, seconds, tmp)
            print(row(route, rps, bad, counts, seconds), flush=True)


if __name__ == "__main__":
    main()
