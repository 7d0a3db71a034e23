"""procstat: CPU time and memory of groups of processes, from /proc.

A *group* is a list of root pids; its CPU time is the utime+stime of the
roots and of all their live descendants, plus the time of the children
the roots have already reaped (cutime+cstime).  That last part is what
makes PostgreSQL countable when backends come and go (the app's
per-request mode): a backend that exits during a measurement is reaped by
the postmaster, and its time moves into the postmaster's cutime.

    before = sample({"app": [pids], "pg": [postmaster]})
    ... load ...
    after = sample(...)
    pct = cpu_percent(before, after)   # {"app": 37.5, ..., "total": 190.0}

Percentages are of one core: 200 means both cores of a 2-core machine
were busy for the whole window.  "total" is every process on the
machine (from /proc/stat), so total minus our groups is what the rest of
the machine took: other people's work on a shared box.

Per process, finer: task_stats() reads each worker's CPU time in
nanoseconds and its context switches, cpus_allowed() where the kernel
lets it run, and spread() says how a quantity (requests, CPU time) spread
over the workers.
"""

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_stat(pid):
    """(ppid, own ticks, reaped children's ticks) of pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold blanks and parentheses: split after the
    # last ')'.  Fields from there: state ppid ... utime(14) stime(15)
    # cutime(16) cstime(17), numbered as in proc(5).
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12]), \
        int(rest[13]) + int(rest[14])


def children_map():
    """{ppid: [pid, ...]} over every process on the machine."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(name)
        if st is not None:
            kids.setdefault(st[0], []).append(int(name))
    return kids


def descendants(roots, kids):
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        for k in kids.get(pid, ()):
            out.append(k)
            todo.append(k)
    return out


def busy_ticks():
    """Ticks the whole machine spent not idle, summed over all cores."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already inside user.
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle


def group_ticks(roots, kids):
    total = 0
    for pid in roots:
        st = read_stat(pid)
        if st is not None:
            total += st[1] + st[2]
    for pid in descendants(roots, kids):
        st = read_stat(pid)
        if st is not None:
            # A descendant that reaps its own children (a PostgreSQL
            # parallel worker's parent) counts them too.
            total += st[1] + st[2]
    return total


def sample(groups):
    """A snapshot: monotonic time, machine busy ticks, ticks per group."""
    kids = children_map()
    snap = {"t": time.monotonic(), "wall": time.time(),
            "busy": busy_ticks(), "groups": {}}
    for name, roots in groups.items():
        snap["groups"][name] = group_ticks([p for p in roots if p], kids)
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
    out = {}
    ours = 0
    for name, t1 in after["groups"].items():
        d = max(0, t1 - before["groups"].get(name, 0))
        out[name] = d * scale
        ours += d
    for name, d in (extra_ticks or {}).items():
        out[name] = d * scale
        ours += d
    busy = after["busy"] - before["busy"]
    out["total"] = busy * scale
    out["other"] = (busy - ours) * scale
    out["seconds"] = dt
    return out


def rss_kb(pid):
    """VmRSS of pid in kB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def sockets(pid):
    """How many sockets pid has open."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def task_stat(pid):
    """(ns on a CPU, context switches) of pid's main thread, or None.

    /proc/PID/schedstat counts CPU time in nanoseconds, where stat's
    ticks (10 ms) are too coarse to split a 1 s point between 32 workers.
    The context switches, voluntary (it slept: waiting for work or for
    PostgreSQL) and not (preempted), are what each wake-up costs.  A
    worker is one thread, so its main thread is all of it."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            ns = int(f.read().split()[0])
        cs = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches:",
                                    "nonvoluntary_ctxt_switches:")):
                    cs += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return ns, cs


def task_stats(pids):
    """{pid: (ns, context switches)} of the pids still there."""
    out = {}
    for pid in pids:
        st = task_stat(pid)
        if st is not None:
            out[pid] = st
    return out


def cpus_allowed(pid):
    """The CPUs pid may run on, as the kernel lists them ("0-1", "1"),
    or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def spread(counts, floor=0.01):
    """How work spread over workers: (how many did at least floor of it,
    the largest share), or (None, None) when there was none."""
    total = sum(counts)
    if total <= 0:
        return None, None
    return sum(1 for c in counts if c >= floor * total), max(counts) / total
