"""host: what both bench commands (tests/bench/run, tests/bench/scaling)
do around their sweep: settings from a file, the machine described, one
run at a time per state directory, Ctrl-C turned into a clean stop that
keeps what was measured, and the points written as results.csv.
"""

import csv
import datetime
import fcntl
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from ...kit import REPO, stack
from . import load, servers


def read_file_settings(path):
    """BENCH_X=VALUE lines (# comments, optional quotes) into os.environ,
    without overriding variables already set."""
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        k = k.strip().removeprefix("export ").strip()
        v = " ".join(shlex.split(v)) if v.strip() else ""
        if re.fullmatch(r"(BENCH_[A-Z_]+|FULL)", k) and k not in os.environ:
            os.environ[k] = v


def first_line(argv):
    """The first line argv prints (stdout, else stderr); None if it cannot run."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if text else None


def on_path(tool):
    return any(os.access(os.path.join(d, tool), os.X_OK)
               for d in os.environ.get("PATH", "").split(":"))


def machine_info(tools):
    """The machine, the checkout's commit, and the first line of each
    tools[name] (a command printing its version)."""
    info = {"cores": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    info["kernel"] = f"{platform.system()} {platform.release()}"
    try:
        osr = dict(l.rstrip().split("=", 1) for l in open("/etc/os-release") if "=" in l)
        info["os"] = osr.get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    rev = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True)
    if rev:
        info["commit"] = rev + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    for name, argv in tools.items():
        info[name] = first_line(argv)
    return info


def start(prog, problems, var, out):
    """Before a sweep: the preflight's problems said (prog: each), the
    state directory var locked, the output directory made.  (lock, out),
    or None when the sweep must not start."""
    for m in problems:
        print(f"{prog}: {m}", file=sys.stderr)
    if problems:
        return None
    f = lock(var)
    if f is None:
        print(f"{prog}: another bench runs from {var}", file=sys.stderr)
        return None
    return f, out_dir(out)


def lock(var):
    """An open file holding the lock of the state directory var, or None
    when another bench holds it."""
    var = Path(var)
    var.parent.mkdir(parents=True, exist_ok=True)
    f = open(str(var).rstrip("/") + ".lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def out_dir(out):
    """out, or var/bench/<date-time>, made."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    d = Path(out) if out else REPO / "var" / "bench" / stamp
    d.mkdir(parents=True, exist_ok=True)
    return d


def guarded(sweep, stop, say, meta):
    """sweep() with SIGINT, SIGTERM and SIGHUP as a clean stop (a child in
    a critical section finishes it first), then stop() whatever happened,
    a second signal ignored meanwhile.  The status: 0, 130 interrupted
    or 1 when the stack failed, noted in meta."""
    def on_signal(signum, frame):
        load.stop_current()
        if servers.CRITICAL.depth:
            servers.CRITICAL.pending = signum
            return
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    status = 0
    try:
        sweep()
    except KeyboardInterrupt:
        say("bench: interrupted; stopping everything, writing what was measured")
        meta["interrupted"] = True
        status = 130
    except stack.StackError as e:
        say(f"bench: {e}")
        meta["failed"] = str(e)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        load.stop_current()
        stop()
    meta["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    return status


def finish(say, failures, out, elapsed_s, status):
    """After the report is written: the last line, and the exit status
    (1 when a point failed and nothing worse happened)."""
    say(f"bench: {failures} failed point(s); report: {out}/report.md; "
        f"took {elapsed_s:.0f} s")
    return 1 if failures and status == 0 else status


def write_csv(path, columns, points):
    """points as CSV, the given columns only: None empty, booleans 0/1,
    floats to 3 decimals."""
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, float):
            return f"{v:.3f}"
        return v
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for p in points:
            w.writerow({k: cell(p.get(k)) for k in columns})
