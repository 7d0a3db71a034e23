"""sched: how the kernel shares the CPUs among the tiers, recorded for
every report and changed for the blocks that compare settings.

The tiers: app (the subject's processes), front (nginx), pg (the
postmaster and its backends), delay (the delay lines), load (the load
generator: this process and the wrk or openloop it starts).

Scheduler settings (the plan's sched axis):
  autogroup   as the machine is, with kernel.sched_autogroup_enabled=1:
              the scheduler shares the CPUs between sessions first, so the
              pool (one session: tfb-spawn is started with setsid, gunicorn
              by us in a session of its own) is one group, and each
              PostgreSQL backend, which calls setsid, is a group of its
              own.  At saturation a pool of 64 workers gets the share of
              one backend.
  flat        kernel.sched_autogroup_enabled=0 for the block: every
              process is scheduled by itself, as each worker in a session
              of its own would be (what a pool could do with setsid per
              worker, or what systemd's services get without autogroups).
  tiers       a cgroup per tier (the cpu controller, equal weights), as
              systemd gives each service a cgroup of its own; the
              processes of a tier share its weight.
The sysctl is put back after each block (and by the namespace keeper
should we die).

CPU placement (the plan's placement axis):
  shared      no tier pinned: every process may run on every CPU.
  split       the app and front tiers on the first half of the CPUs, the
              database, the delay lines and the load generator on the
              other half: the article's hosts were separate machines,
              and on one machine this is the closest.
"""

import os
import re
import subprocess

from ...kit import proc
from ...kit.stack import StackError

AUTOGROUP = "/proc/sys/kernel/sched_autogroup_enabled"
TIERS = ("app", "front", "pg", "delay", "load")


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def virtual():
    """Whether the CPUs are a virtual machine's ("virtual machine (kvm)",
    or from the CPU's hypervisor flag) and whether we run in a container,
    as well as can be told."""
    def detect(flag):
        try:
            r = subprocess.run(["systemd-detect-virt", flag], capture_output=True,
                               text=True, timeout=5)
            return r.stdout.strip() if r.stdout.strip() not in ("", "none") else None
        except (OSError, subprocess.TimeoutExpired):
            return None
    vm = detect("--vm")
    if vm is None and " hypervisor" in (_read("/proc/cpuinfo") or ""):
        vm = "the CPU's hypervisor flag"
    ct = detect("--container")
    out = "virtual machine (%s)" % vm if vm else "not virtual, as far as it can be told"
    return out + (", in a container (%s)" % ct if ct else "")


def cpu_cgroup():
    """(version, directory) of the cpu controller's root, or None."""
    for line in (_read("/proc/mounts") or "").splitlines():
        dev, mnt, fstype, opts = line.split()[:4]
        if fstype == "cgroup" and "cpu" in opts.split(","):
            return 1, mnt
    for line in (_read("/proc/mounts") or "").splitlines():
        dev, mnt, fstype = line.split()[:3]
        if fstype == "cgroup2" and "cpu" in (_read(os.path.join(mnt, "cgroup.controllers"))
                                              or "").split():
            return 2, mnt
    return None


def settings():
    """What the report records of the scheduler: {name: value}."""
    init = (_read("/proc/1/comm") or "?")
    cg = cpu_cgroup()
    out = {
        "kernel.sched_autogroup_enabled": _read(AUTOGROUP) or "absent",
        "init (pid 1)": init + ("" if init == "systemd" else ": no systemd, so no "
                                "cgroup per service"),
        "cgroup cpu controller": "v%d at %s" % cg if cg else "none",
        "this process's cgroups": ", ".join(
            l.split(":", 2)[2] for l in (_read("/proc/self/cgroup") or "").splitlines()
            if re.match(r"\d+:(cpu[,:]|:)", l)) or "?",
        "CPUs online": _read("/sys/devices/system/cpu/online") or "?",
        "machine": virtual(),
    }
    gov = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    out["cpufreq governor"] = gov or "none (no cpufreq: a VM's CPUs)"
    for k in ("sched_child_runs_first", "sched_rt_runtime_us"):
        v = _read("/proc/sys/kernel/" + k)
        if v is not None:
            out["kernel." + k] = v
    return out


def autogroups(pids):
    """How many autogroups pids are in (from /proc/PID/autogroup)."""
    groups = set()
    for p in pids:
        g = _read("/proc/%d/autogroup" % p)
        if g:
            groups.add(g.split()[0])
    return len(groups)


def tids(pid):
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


def tree(roots):
    roots = [p for p in roots if p]
    return roots + proc.descendants(roots) if roots else []


class Scheduler:
    """Puts the tiers in a scheduler setting and a placement for a block,
    and everything back with restore().  net: a tests/kit/netns.Net whose
    keeper should restore the sysctl if we die (None: not root)."""

    def __init__(self, net=None):
        self.net = net
        self.cpus = sorted(os.sched_getaffinity(0))
        self.autogroup0 = _read(AUTOGROUP)
        self.cgroups = {}      # tier -> directory
        self.cg = cpu_cgroup()
        self.registered = False

    def available(self, sched, placement):
        """What keeps sched or placement from being applied here, or None."""
        if sched != "autogroup" and os.geteuid() != 0:
            return "scheduler setting %s needs root" % sched
        if sched == "flat" and self.autogroup0 is None:
            return "no %s in this kernel" % AUTOGROUP
        if sched == "tiers" and self.cg is None:
            return "no cgroup cpu controller mounted"
        if placement == "split" and len(self.cpus) < 2:
            return "split placement needs 2 CPUs"
        return None

    def halves(self):
        n = len(self.cpus)
        return set(self.cpus[:n // 2]), set(self.cpus[n // 2:])

    def apply(self, sched, placement, tiers):
        """tiers: {tier: root pids}, their descendants included.  This
        process counts as the load tier (what it starts inherits)."""
        self.set_autogroup("0" if sched == "flat" else self.autogroup0)
        if sched == "tiers":
            for tier in TIERS:
                pids = tree(tiers.get(tier, [])) + ([os.getpid()] if tier == "load" else [])
                self.move(tier, pids)
        else:
            self.leave_cgroups()
        first, second = self.halves()
        every = set(self.cpus)
        for tier in TIERS:
            cpus = every
            if placement == "split":
                cpus = first if tier in ("app", "front") else second
            pids = tree(tiers.get(tier, [])) + ([os.getpid()] if tier == "load" else [])
            for p in pids:
                for t in tids(p):
                    try:
                        os.sched_setaffinity(t, cpus)
                    except OSError:
                        pass  # gone meanwhile

    def describe(self, sched, placement):
        first, second = self.halves()
        out = {"autogroup": "kernel.sched_autogroup_enabled=%s" % self.autogroup0,
               "flat": "kernel.sched_autogroup_enabled=0",
               "tiers": "a cgroup per tier (cpu controller, equal weights)"}[sched]
        if placement == "split":
            out += "; app and front on CPU %s, pg, delay and load on CPU %s" % (
                ",".join(map(str, sorted(first))), ",".join(map(str, sorted(second))))
        else:
            out += "; every tier on every CPU"
        return out

    def set_autogroup(self, value):
        if value is None or _read(AUTOGROUP) == value:
            return
        if self.net is not None and not self.registered and self.autogroup0 is not None:
            self.net.at_teardown(["sh", "-c", "echo %s > %s" % (self.autogroup0, AUTOGROUP)])
            self.registered = True
        try:
            with open(AUTOGROUP, "w") as f:
                f.write(value)
        except OSError as e:
            raise StackError("%s: %s" % (AUTOGROUP, e))

    def group_dir(self, tier):
        d = self.cgroups.get(tier)
        if d is None:
            d = os.path.join(self.cg[1], "tfb-bench-%d-%s" % (os.getpid(), tier))
            os.makedirs(d, exist_ok=True)
            self.cgroups[tier] = d
        return d

    def move(self, tier, pids):
        d = self.group_dir(tier)
        target = "tasks" if self.cg[0] == 1 else "cgroup.procs"
        for p in pids:
            for t in (tids(p) if self.cg[0] == 1 else [p]):
                try:
                    with open(os.path.join(d, target), "w") as f:
                        f.write(str(t))
                except OSError:
                    pass

    def leave_cgroups(self):
        """Every task of our cgroups back in the root one, the groups gone."""
        if not self.cgroups:
            return
        root = self.cg[1]
        for d in self.cgroups.values():
            for t in (_read(os.path.join(d, "tasks" if self.cg[0] == 1 else "cgroup.procs"))
                      or "").split():
                try:
                    with open(os.path.join(root, "tasks" if self.cg[0] == 1
                                           else "cgroup.procs"), "w") as f:
                        f.write(t)
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.cgroups = {}

    def restore(self, tiers=None):
        """The sysctl as found, no cgroup of ours, and the long-lived tiers
        (this process, the database, the delay lines) on every CPU."""
        self.leave_cgroups()
        self.set_autogroup(self.autogroup0)
        every = set(self.cpus)
        for pid in tree((tiers or {}).get("pg", []) + (tiers or {}).get("delay", [])) + \
                [os.getpid()]:
            for t in tids(pid):
                try:
                    os.sched_setaffinity(t, every)
                except OSError:
                    pass
