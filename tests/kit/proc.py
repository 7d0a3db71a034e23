"""proc: processes as /proc shows them, and what they cost.

Facts about one process: stat() (the careful parse: the command name may
hold blanks and parentheses, so the fields are split after the LAST
")"), alive(), state(), ppid(), comm(), exe(), environ(), cmdline(),
uid(), wchan(), rss_kb(), sockets(), cpus_allowed().  Trees: children(), descendants(),
kill_tree(); pid files: read_pids().

CPU time of groups of processes, for the bench.  A *group* is a list of
root pids; its CPU time is the utime+stime of the roots and of all their
live descendants, plus the time of the children the roots have already
reaped (cutime+cstime).  That last part is what makes PostgreSQL
countable when backends come and go (the app's per-request mode): a
backend that exits during a measurement is reaped by the postmaster, and
its time moves into the postmaster's cutime.

    before = sample({"app": [pids], "pg": [postmaster]})
    ... load ...
    pct = cpu_percent(before, sample(...))   # {"app": 37.5, ..., "total": 190.0}

Percentages are of one core: 200 means both cores of a 2-core machine
were busy for the whole window.  "total" is every process on the machine
(from /proc/stat), so total minus our groups is what the rest of the
machine took: other people's work on a shared box.  task_stats() reads
each worker's CPU time in nanoseconds and its context switches, spread()
says how a quantity spread over the workers.
"""

import os
import signal
import time

from .cmd import CLK_TCK

# Fields of /proc/PID/stat after the command name, numbered from 0 here
# (proc(5) numbers them from 1 with pid and comm first: state is its 3).
STATE, PPID, UTIME, STIME, CUTIME, CSTIME = 0, 1, 11, 12, 13, 14


def stat(pid):
    """The fields of /proc/PID/stat after the command name (state, ppid,
    ...), or None.  The name may hold blanks and parentheses: split
    after the last ')'."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid):
    """True while pid runs; a zombie counts as gone."""
    fields = stat(pid)
    return bool(fields) and fields[STATE] != "Z"


def state(pid):
    """The state letter of /proc/PID/stat (R, S, T...), "" when gone."""
    fields = stat(pid)
    return fields[STATE] if fields else ""


def ppid(pid):
    fields = stat(pid)
    try:
        return int(fields[PPID])
    except (TypeError, IndexError, ValueError):
        return None


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def comm(pid):
    """Its command name, "" when gone."""
    return (_read("/proc/%d/comm" % pid) or "").strip()


def exe(pid):
    """The program pid runs ("" when unknown), without " (deleted)"."""
    try:
        return os.readlink("/proc/%d/exe" % pid).replace(" (deleted)", "")
    except OSError:
        return ""


def environ(pid):
    """Its environment as a list of b"NAME=VALUE"."""
    return (_read("/proc/%d/environ" % pid, "rb") or b"").split(b"\0")


def cmdline(pid):
    return [a.decode(errors="replace")
            for a in (_read("/proc/%d/cmdline" % pid, "rb") or b"").split(b"\0") if a]


def _status(pid, key):
    """The value of a line of /proc/PID/status, or None."""
    for line in (_read("/proc/%d/status" % pid) or "").splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


def uid(pid):
    """Its effective uid, or None."""
    v = _status(pid, "Uid")
    return int(v.split()[1]) if v else None


def rss_kb(pid):
    """VmRSS of pid in kB, or None."""
    v = _status(pid, "VmRSS")
    return int(v.split()[0]) if v else None


def cpus_allowed(pid):
    """The CPUs pid may run on, as the kernel lists them ("0-1", "1")."""
    return _status(pid, "Cpus_allowed_list")


def wchan(pid):
    """Where in the kernel it sleeps ("do_epoll_wait"), or ""."""
    return (_read("/proc/%d/wchan" % pid) or "").strip()


def sockets(pid):
    """How many sockets pid has open."""
    n = 0
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return 0
    for fd in fds:
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_map():
    """{ppid: [pid, ...]} over every process on the machine, zombies
    included (their CPU time is not yet their parent's)."""
    kids = {}
    for pid in all_pids():
        fields = stat(pid)
        if fields:
            kids.setdefault(int(fields[PPID]), []).append(pid)
    return kids


def children(pid):
    """Its live (not zombie) children."""
    return sorted(p for p in children_map().get(pid, []) if alive(p))


def descendants(roots, kids=None):
    """Every descendant of roots (a pid or a list of them), zombies
    included."""
    kids = children_map() if kids is None else kids
    out, todo = [], [roots] if isinstance(roots, int) else list(roots)
    while todo:
        for k in kids.get(todo.pop(), ()):
            out.append(k)
            todo.append(k)
    return out


def kill_tree(pid, sig=signal.SIGKILL):
    for p in [pid] + descendants(pid):
        try:
            os.kill(p, sig)
        except OSError:
            pass


def read_pids(path):
    """The pids a pid file names (one, or one per line); [] without it."""
    return [int(x) for x in (_read(path) or "").split() if x.isdigit()]


# --------------------------------------------------------------------------
# CPU time, for the bench

def _ticks(pid, reaped=True):
    fields = stat(pid)
    if not fields:
        return 0
    own = int(fields[UTIME]) + int(fields[STIME])
    return own + (int(fields[CUTIME]) + int(fields[CSTIME]) if reaped else 0)


def busy_ticks():
    """Ticks the whole machine spent not idle, summed over all cores."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already inside user.
    return sum(fields[:8]) - fields[3] - fields[4]


def sample(groups):
    """A snapshot: monotonic time, machine busy ticks, ticks per group.
    A descendant that reaps its own children (a PostgreSQL parallel
    worker's parent) counts them too."""
    kids = children_map()
    snap = {"t": time.monotonic(), "wall": time.time(), "busy": busy_ticks(), "groups": {}}
    for name, roots in groups.items():
        roots = [p for p in roots if p]
        snap["groups"][name] = sum(_ticks(p) for p in roots + descendants(roots, kids))
    return snap


def cpu_percent(before, after, extra_ticks=None):
    """Per-group CPU between two snapshots, in % of one core.

    extra_ticks: {name: ticks} measured another way (a load generator's
    rusage), reported as groups too.  "other" is what the rest of the
    machine used; it is negative only by measurement jitter."""
    dt = after["t"] - before["t"]
    if dt <= 0:
        return {}
    scale = 100.0 / (CLK_TCK * dt)
    ticks = {name: max(0, t1 - before["groups"].get(name, 0))
             for name, t1 in after["groups"].items()}
    ticks.update(extra_ticks or {})
    out = {name: d * scale for name, d in ticks.items()}
    busy = after["busy"] - before["busy"]
    out["total"] = busy * scale
    out["other"] = (busy - sum(ticks.values())) * scale
    out["seconds"] = dt
    return out


def task_stat(pid):
    """(ns on a CPU, context switches) of pid's main thread, or None.

    /proc/PID/schedstat counts CPU time in nanoseconds, where stat's
    ticks (10 ms) are too coarse to split a 1 s point between 32 workers.
    The context switches, voluntary (it slept: waiting for work or for
    PostgreSQL) and not (preempted), are what each wake-up costs.  A
    worker is one thread, so its main thread is all of it."""
    try:
        ns = int(_read("/proc/%d/schedstat" % pid).split()[0])
        cs = int(_status(pid, "voluntary_ctxt_switches")) + \
            int(_status(pid, "nonvoluntary_ctxt_switches"))
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    return ns, cs


def task_stats(pids):
    """{pid: (ns, context switches)} of the pids still there."""
    return {pid: st for pid, st in ((p, task_stat(p)) for p in pids) if st is not None}


def spread(counts, floor=0.01):
    """How work spread over workers: (how many did at least floor of it,
    the largest share), or (None, None) when there was none."""
    total = sum(counts)
    if total <= 0:
        return None, None
    return sum(1 for c in counts if c >= floor * total), max(counts) / total
