"""load: pgbench, and the bench's way of running wrk, with what they measured.

Both run as children whose pid the caller may watch (to stop them on
Ctrl-C, to sample their CPU); wrk is tests/kit/load.py's, run with its
stats.lua (its WRK_JSON line: the fields below).  Nothing here decides
what to run.
"""

import json
import os
import re
import signal
import tempfile
import time

from ...kit import proc
from ...kit.cmd import Job
from ...kit.load import Wrk, parse

# The child in flight, for the runner's signal handler to stop.
CURRENT = {"job": None}


class LoadError(Exception):
    pass


def stop_current():
    job = CURRENT["job"]
    if job is not None:
        job.signal(signal.SIGKILL)


def wrk(url, connections, duration, threads=1, warmup_paths=None):
    """One wrk run; returns its measurements (WRK_JSON's fields) plus
    "rps" and "cpu_ticks" (wrk's own CPU time).  With warmup_paths, wrk
    cycles through those paths and nothing is returned."""
    w = Wrk(url, duration, connections=connections, threads=threads, paths=warmup_paths)
    CURRENT["job"] = w.job
    try:
        r = w.result()
    finally:
        CURRENT["job"] = None
    if r["rc"] != 0:
        raise LoadError(f"wrk exited {r['rc']}: {r['out'].strip()[-300:]}")
    if warmup_paths:
        return None
    if not r["parsed"]:
        raise LoadError(f"no result line from wrk: {r['out'].strip()[-300:]}")
    return r


def _percentile(sorted_vals, p):
    """Nearest-rank percentile, as wrk's histogram reports it."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1,
                   int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def pgbench(script, clients, warmup, duration, env, pg_roots, mode="prepared",
            connect_each=False, max_tries=1, workdir=None):
    """One pgbench run: wait until its clients are connected (not with
    connect_each, where they never stay), warm up, then measure for
    `duration` seconds between two CPU samples, and end pgbench with
    SIGALRM, which is how its -T timer ends a run (the per-transaction log
    is flushed, the summary printed).

    The rate and the latencies come from the per-transaction log (-l),
    counting only the transactions that end inside the window, so neither
    the time pgbench spends connecting its clients (seconds, for 64 of
    them on 2 cores: a backend costs tens of ms to start here) nor the
    warm-up is in them.  pg_roots: the postmaster, whose children are the
    backends (counted to see the clients connected, and sampled for CPU)."""
    tmp = tempfile.mkdtemp(prefix="pgb-", dir=workdir)
    prefix = os.path.join(tmp, "log")
    argv = ["pgbench", "-n", "-M", mode, "-f", str(script),
            # -C connects in the thread's loop, blocking: one thread per
            # client, or the connections are made one at a time.
            "-c", str(clients), "-j", str(clients if connect_each else 1),
            "-T", "3600",
            "-l", f"--log-prefix={prefix}"]
    if connect_each:
        argv.append("-C")
    if max_tries > 1:
        argv += ["--max-tries", str(max_tries)]

    def measure(job):
        if not connect_each:
            # pgbench connects its clients one by one before it starts;
            # wait until it holds a socket per client.
            limit = time.monotonic() + 120
            while proc.sockets(job.pid) < clients:
                if not job.running() or time.monotonic() > limit:
                    job.kill()
                    raise LoadError("pgbench: clients did not connect")
                time.sleep(0.05)
        t = time.monotonic() + warmup
        while time.monotonic() < t and job.running():
            time.sleep(0.01)
        groups = {"pg": pg_roots, "load": [job.pid]}
        before = proc.sample(groups)
        t = time.monotonic() + duration
        while time.monotonic() < t and job.running():
            time.sleep(0.01)
        after = proc.sample(groups)
        job.signal(signal.SIGALRM)
        return before, after

    job = CURRENT["job"] = Job(argv, env=env)
    try:
        before, after = measure(job)
        status, text, _ = job.wait(600)
        if status != 0:
            raise LoadError(f"pgbench exited {status}: {text.strip()[-400:]}")
        t0, t1 = before["wall"], after["wall"]
        lats, failed = [], 0
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name)) as f:
                for line in f:
                    p = line.split()
                    if len(p) < 6:
                        continue
                    end = int(p[4]) + int(p[5]) / 1e6
                    if end < t0 or end > t1:
                        continue
                    if p[2].isdigit():
                        lats.append(int(p[2]))
                    else:  # "failed", "skipped"
                        failed += 1
    finally:
        job.kill()
        CURRENT["job"] = None
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    lats.sort()
    secs = t1 - t0
    conn_ms = None
    for line in text.splitlines():
        if line.startswith("initial connection time"):
            conn_ms = float(line.split("=")[1].split()[0])
    return {
        "requests": len(lats), "duration_us": int(secs * 1e6),
        "rps": len(lats) / secs if secs > 0 else 0.0,
        "err_connect": 0, "err_read": 0, "err_write": 0,
        "err_status": failed, "err_timeout": 0,
        "p50_us": _percentile(lats, 50), "p90_us": _percentile(lats, 90),
        "p99_us": _percentile(lats, 99), "max_us": lats[-1] if lats else None,
        "mean_us": sum(lats) / len(lats) if lats else None,
        "connect_ms": conn_ms, "before": before, "after": after,
    }


HIST_LUA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "wrk", "hist.lua")
STATS_LUA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "kit", "wrk", "stats.lua")


def wrk_hist(url, connections, duration, threads=1, timeout=10):
    """wrk -c connections for duration seconds with wrk/hist.lua: what
    wrk() returns, plus "hist", the latency histogram ("b:n,..." as
    spread.py reads it).  timeout: seconds after which wrk counts a
    request as timed out."""
    argv = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
            "--timeout", "%ds" % timeout, "-s", HIST_LUA, url]
    job = Job(argv, env=dict(os.environ, TFB_WRK_STATS=STATS_LUA))
    CURRENT["job"] = job
    try:
        rc, out, ticks = job.wait(duration + timeout + 30)
    finally:
        CURRENT["job"] = None
    r = parse(out, rc)
    r["cpu_ticks"] = ticks
    if rc != 0:
        raise LoadError(f"wrk exited {rc}: {out.strip()[-300:]}")
    if not r["parsed"]:
        raise LoadError(f"no result line from wrk: {out.strip()[-300:]}")
    m = re.search(r"^WRK_HIST (\S*)$", out, re.M)
    r["hist"] = m.group(1) if m else ""
    return r


def parse_openloop(out):
    """tests/bench/openloop's two lines as a dict: what wrk_hist() returns
    (requests: those answered, rps, err_status, socket_errors, hist,
    max_us), plus due, unfinished and queued_max.  Raises LoadError when
    they are not there."""
    m = re.search(r"^OPENLOOP (\{.*\})$", out, re.M)
    h = re.search(r"^OPENLOOP_HIST (\S*)$", out, re.M)
    if not m or not h:
        raise LoadError(f"no result line from openloop: {out.strip()[-300:]}")
    v = json.loads(m.group(1))
    secs = v["duration_us"] / 1e6
    return {"requests": v["completed"], "rps": v["completed"] / secs if secs else 0.0,
            "err_status": v["err_status"], "socket_errors": v["err_socket"],
            "err_timeout": 0, "unfinished": v["unfinished"], "due": v["due"],
            "queued_max": v["queued_max"], "max_us": v["max_us"], "hist": h.group(1)}
