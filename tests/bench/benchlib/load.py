"""load: run wrk and pgbench, and read what they measured.

Both run as child processes whose pid the caller may watch (to stop them
on Ctrl-C, to sample their CPU).  Nothing here decides what to run.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import procstat

HERE = Path(__file__).resolve().parent.parent
STATS_LUA = HERE / "wrk" / "stats.lua"
ROTATE_LUA = HERE / "wrk" / "rotate.lua"

# The child in flight, for the runner's signal handler to stop.
CURRENT = {"proc": None}


class LoadError(Exception):
    pass


def _run_child(argv, env=None, timeout=None, on_started=None):
    """Run argv; stdout+stderr to a temp file.  Returns (status, output,
    cpu ticks from rusage, result of on_started(pid))."""
    with tempfile.TemporaryFile(mode="w+") as out:
        # Its own session: a Ctrl-C on the terminal reaches only the
        # runner, which kills this child itself.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        CURRENT["proc"] = proc
        extra = None
        try:
            if on_started is not None:
                extra = on_started(proc)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    proc.kill()
                    pid, status, ru = os.wait4(proc.pid, 0)
                    raise LoadError(f"{argv[0]} ran past {timeout:.0f} s, killed")
                time.sleep(0.02)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if proc.returncode is None:
                proc.kill()
                try:
                    os.wait4(proc.pid, 0)
                except ChildProcessError:
                    pass
                proc.returncode = -9
            CURRENT["proc"] = None
        out.seek(0)
        text = out.read()
    ticks = (ru.ru_utime + ru.ru_stime) * procstat.CLK_TCK
    return proc.returncode, text, ticks, extra


def stop_current():
    proc = CURRENT["proc"]
    if proc is not None and proc.returncode is None:
        try:
            proc.send_signal(signal.SIGKILL)
        except OSError:
            pass


def wrk(url, connections, duration, threads=1, timeout_s=5, warmup_paths=None):
    """One wrk run; returns its measurements (see wrk/stats.lua) plus
    "rps" and "cpu_ticks" (wrk's own CPU time).  With warmup_paths, wrk
    cycles through those paths and nothing is parsed."""
    env = dict(os.environ)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            f"--timeout", f"{timeout_s}s"]
    if warmup_paths:
        env["BENCH_PATHS"] = " ".join(warmup_paths)
        argv += ["-s", str(ROTATE_LUA)]
    else:
        argv += ["-s", str(STATS_LUA)]
    argv.append(url)
    status, text, ticks, _ = _run_child(argv, env=env,
                                        timeout=duration + timeout_s + 20)
    if status != 0:
        raise LoadError(f"wrk exited {status}: {text.strip()[-300:]}")
    if warmup_paths:
        return None
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            r = json.loads(line[len("BENCH_JSON "):])
            break
    else:
        raise LoadError(f"no result line from wrk: {text.strip()[-300:]}")
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs if secs > 0 else 0.0
    r["cpu_ticks"] = ticks
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

    def on_started(proc):
        if not connect_each:
            # pgbench connects its clients one by one before it starts;
            # wait until it holds a socket per client.
            limit = time.monotonic() + 120
            while procstat.sockets(proc.pid) < clients:
                if proc.poll() is not None or time.monotonic() > limit:
                    proc.kill()
                    raise LoadError("pgbench: clients did not connect")
                time.sleep(0.05)
        t = time.monotonic() + warmup
        while time.monotonic() < t and proc.poll() is None:
            time.sleep(0.01)
        groups = {"pg": pg_roots, "load": [proc.pid]}
        before = procstat.sample(groups)
        t = time.monotonic() + duration
        while time.monotonic() < t and proc.poll() is None:
            time.sleep(0.01)
        after = procstat.sample(groups)
        proc.send_signal(signal.SIGALRM)
        return before, after

    try:
        status, text, _, (before, after) = _run_child(
            argv, env=env, timeout=600, on_started=on_started)
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
