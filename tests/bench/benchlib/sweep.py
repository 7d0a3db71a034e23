"""sweep: the article's experiment, point by point.

The plan (experiment.py) says what to measure; the Sweep does it: the
database host once (dbhost.py), then per repetition every block (one
start of a subject's pool, subjects.py) and in it every cell, each
measured between two CPU samples (tests/kit/proc.py), with the delay
line's lateness over the same window and the round trip probed from the
workers' side meanwhile; then the open-loop part, planned from what the
closed loop found.  It prints progress as it goes (points done, points
left, time left) and keeps every point, failed ones included, for
findings.py and writeup.py.

Signals are the caller's: tests/bench/run turns them into
KeyboardInterrupt outside servers.CRITICAL, then calls stop_all().
"""

import datetime
import os
import statistics
import threading
import time

from ...kit import BUILD, proc, stack, web
from ...kit.cmd import Job
from ...kit.load import Wrk
from . import dbhost, load, sched as schedlib, servers, spread, subjects
from .experiment import AUTO, wlabel

OPENLOOP = BUILD / "tests" / "bench" / "openloop"
OPEN_WARMUP = 1
# An auto pool (experiment.AUTO): loaded before each cell until its size
# (the status page's target) has held AUTO_HOLD s, AUTO_SETTLE_MAX s at
# most; after its block's last cell in the first repetition, left idle
# until it is down to its minimum, AUTO_IDLE_MAX s at most, then asked
# once.  The bounds, which the targets read: settled within 30 s
# turning at most twice, idle down within 60 s, the first request after
# in under 50 ms.  The hold outlasts the pool's own pauses: a kept probe
# is judged in about 5 s and the next one may come a few measurements
# later (32 -> 40 at 1 ms came 11 s after 16 -> 32; with a hold of 6 s
# the points measured it under way).
AUTO_HOLD = 10.0
AUTO_SETTLE_MAX = 45.0
AUTO_IDLE_MAX = 75.0
AUTO_MIN = 1            # tfb-spawn's --workers-min, which the stack leaves


class Probe:
    """Round trips to the database host, measured every 0.1 s from this
    namespace while a point runs: what the workers see under load (the
    delay line late, the bridges queueing)."""

    def __init__(self, db):
        self.db, self.times = db, []
        self.stop = threading.Event()
        self.thread = None

    def __enter__(self):
        if self.db.net is not None and self.db.current and self.db.current.rtt_us is not None:
            self.thread = threading.Thread(target=self.run, daemon=True)
            self.thread.start()
        return self

    def run(self):
        while not self.stop.wait(0.1):
            t = self.db.net.rtt_us(self.db.net.addr("db"), count=1, timeout=1.0)
            if t is not None:
                self.times.append(t)

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(3)
        return False

    def median(self):
        return statistics.median(self.times) if self.times else None


class Sweep:
    """One run: a (the command line's settings: port, var), p (the plan),
    out (the output directory, which exists), say (prints and logs a
    line).  run() measures and leaves the points in .points; stop_all()
    stops what it started, whatever happened."""

    def __init__(self, a, p, out, say):
        self.a, self.p, self.out, self.say = a, p, out, say
        self.points = []
        self.failures = 0
        self.t0 = time.monotonic()
        self.db = dbhost.DbHost(p.distances, say)
        self.stack = stack.Stack(var=a.var, port=a.port, app_args="", guard=servers.CRITICAL,
                                 env={k: None for k in os.environ
                                      if k.startswith(("TFB_", "PG"))})
        self.runner = None      # made once deploy/stack has placed its VAR
        self.sched = None
        self.checks = {}       # subject -> [(check, problems)]
        self.best = {}         # (subject, distance key) -> (workers, rps), for the open loop
        self.scheduler_used = {}
        self.costs = p.costs()
        self.done, self.est_done = 0, 0.0
        self.total = p.points()
        self.estimate = p.estimate_seconds()

    # -- progress

    def progress(self, msg):
        el = time.monotonic() - self.t0
        left = max(0.0, self.estimate - self.p.setup_seconds() - self.est_done) * \
            (el / (self.est_done + self.p.setup_seconds()) if self.est_done else 1.0)
        self.say(f"[{self.done} done, {max(0, self.total - self.done)} left, "
                 f"{el // 60:.0f}:{el % 60:02.0f} in, ~{left // 60:.0f}:{left % 60:02.0f} "
                 f"left] {msg}")

    def record(self, pt, label):
        self.points.append(pt)
        self.est_done += self.costs[self.done] if self.done < len(self.costs) else 0.0
        self.done += 1
        if pt.get("error"):
            self.failures += 1
        self.progress(f"{label}: {summary_line(pt)}")

    # -- the run

    def run(self):
        p = self.p
        self.say(f"bench: {len(p.cells)} cells x {p.reps} repetitions"
                 + (f" + open loop {len(p.open_plan())} x {len(p.open_shares)} x {p.reps}"
                    if p.open_plan() else "")
                 + f", {self.total} points, about {self.estimate / 60:.1f} min; "
                   f"output {self.out}")
        self.db.start(self.stack.var)
        # deploy/stack has made VAR by now, relocated where root needs
        # it (/var/tmp/tfb-fcgi-*: nginx's www-data must reach the
        # subjects' socket): their files go where it went.
        self.runner = subjects.Runner(self.stack, os.path.join(
            os.path.realpath(self.stack.var), "subjects"), self.a.port, servers.CRITICAL)
        self.sched = schedlib.Scheduler(self.db.net)
        for rep in range(1, p.reps + 1):
            for b in p.blocks():
                self.run_block(rep, b)
        open_cells = p.open_cells(self.best_for_open())
        self.total = self.done + p.reps * len(open_cells)
        for rep in range(1, p.reps + 1):
            for b in p.blocks(open_cells):
                self.run_block(rep, b)

    def best_for_open(self):
        """The best process count of each open-loop pair, and its rate, from
        the closed loop's main points."""
        out = {}
        main = self.p.main_load.key
        for s, d in self.p.open_plan():
            line = {}
            for pt in self.points:
                if (pt["subject"], pt["distance"], pt["route"], pt["load"], pt["sched"],
                        pt["placement"]) == (s, d.key, self.p.routes[0].key, main,
                                             self.p.scheds[0], self.p.placements[0]) \
                        and not pt.get("error") and pt.get("rps"):
                    line.setdefault(pt["workers"], {})[pt["rep"]] = pt["rps"]
            w = spread.best_count(line)
            if w is not None:
                out[(s, d.key)] = (w, spread.median(line[w].values()))
        return out

    def tiers(self):
        if self.runner is None:
            return {"pg": [self.db.postmaster_pid()], "delay": self.db.delay_pids()}
        return {"app": self.runner.app_pids(), "front": self.runner.front_pids(),
                "pg": [self.db.postmaster_pid()], "delay": self.db.delay_pids()}

    def run_block(self, rep, b):
        subject = subjects.SUBJECTS[b.subject]
        cells = b.ordered(rep)
        head = f"rep {rep} {b.subject} w={wlabel(b.workers)}" + \
            ("" if b.sched == self.p.scheds[0] else f" sched={b.sched}") + \
            ("" if b.placement == self.p.placements[0] else f" {b.placement}")
        try:
            self.db.use(cells[0].distance)
            self.runner.start(subject, b.workers, self.db.env_for(cells[0].distance))
            if b.subject not in self.checks:
                self.checks[b.subject] = self.runner.check(
                    list(dict.fromkeys(c.route for c in self.p.cells if c.subject == b.subject)))
                for name, problems in self.checks[b.subject]:
                    self.say(f"    {b.subject} fails the check {name}: {'; '.join(problems)[:300]}")
            self.sched.apply(b.sched, b.placement, self.tiers())
            self.scheduler_used[(b.sched, b.placement)] = self.sched.describe(b.sched,
                                                                              b.placement)
            if subject.db_mode == "persistent" and self.p.warmup:
                load.wrk(self.runner.url("/"), self.p.main_load.connections, self.p.warmup,
                         warmup_paths=list(dict.fromkeys(c.route.path for c in cells)))
                self.drain(subject)
        except (stack.StackError, load.LoadError) as e:
            for c in cells:
                pt = self.point(rep, c)
                pt["error"] = str(e)
                self.record(pt, f"{head} {c.distance.short} {c.route.path} {c.load.key}")
            self.sched.restore(self.tiers())
            self.runner.stop()
            return
        try:
            self.measure_block(rep, b, cells, subject, head)
        finally:
            self.sched.restore(self.tiers())

    def measure_block(self, rep, b, cells, subject, head):
        """Every cell of a started block, in order."""
        current = None
        for c in cells:
            pt = self.point(rep, c)
            label = f"{head} {c.distance.short} {c.route.path} {c.load.key}"
            try:
                if c.distance != current:
                    self.db.use(c.distance)
                    current = c.distance
                    time.sleep(0.1)
                    pt["rtt_idle_us"] = self.db.measure()
                if b.workers == AUTO:
                    pt.update(self.settle(c))
                self.measure(pt, c, subject)
                if b.workers == AUTO and rep == 1 and c is cells[-1]:
                    pt.update(self.idle_probe(c))
            except load.LoadError as e:
                pt["error"] = str(e)
            alive = self.runner.alive()
            pt["workers_alive"] = alive
            if alive < b.workers and not pt["error"]:
                pt["error"] = f"{b.workers - alive} worker(s) died"
            self.record(pt, label)

    # -- a pool that sizes itself

    def target(self):
        """The auto pool's target and its workers, from its status page;
        (None, None) when it does not answer."""
        st = self.stack.status(timeout=5) or {}
        return st.get("target processes"), st.get("total processes")

    def settle(self, c):
        """The cell's load on the auto pool until its size holds: how long
        it took (the last change's time), its changes of direction, the
        sizes it went through ("second:size ...") and where it settled."""
        w = Wrk(self.runner.url(c.route.path), int(AUTO_SETTLE_MAX) + 5,
                connections=c.load.connections)
        load.CURRENT["job"] = w.job
        t0, sizes, last, steady = time.monotonic(), [], 0.0, None
        try:
            while True:
                time.sleep(0.5)
                now = time.monotonic() - t0
                n, total = self.target()
                if n is not None and (not sizes or sizes[-1][1] != n):
                    if sizes:
                        last = now
                    sizes.append((now, n))
                # Held: the same target, and the pool at it (a pool that
                # grew replaces its workers first), for AUTO_HOLD s.
                if n is None or total != n:
                    steady = None
                elif steady is None:
                    steady = now
                if (steady is not None and now - max(last, steady) >= AUTO_HOLD) or \
                        now >= AUTO_SETTLE_MAX:
                    break
        finally:
            w.kill()
            load.CURRENT["job"] = None
        if not sizes:
            raise load.LoadError("auto: the status page gave no target")
        steps = [b - a for (_, a), (_, b) in zip(sizes, sizes[1:])]
        turns = sum(1 for x, y in zip(steps, steps[1:]) if (x > 0) != (y > 0))
        return {"auto_settle_s": round(last, 1), "auto_turns": turns,
                "auto_size": sizes[-1][1],
                "auto_sizes": " ".join(f"{t:.0f}:{n}" for t, n in sizes)}

    def idle_probe(self, c):
        """The auto pool left idle: how long until it is down to AUTO_MIN
        worker, and how long the first request after that takes (ms)."""
        t0, down = time.monotonic(), None
        while time.monotonic() - t0 < AUTO_IDLE_MAX:
            n, total = self.target()
            if n is not None and n <= AUTO_MIN and total is not None and total <= AUTO_MIN:
                down = time.monotonic() - t0
                break
            time.sleep(0.5)
        out = {"auto_idle_s": None if down is None else round(down, 1), "auto_first_ms": None}
        if down is not None:
            t1 = time.monotonic()
            r = web.try_get(self.runner.url(c.route.path), timeout=10)
            if r.status == 200:
                out["auto_first_ms"] = round((time.monotonic() - t1) * 1000, 1)
        return out

    def point(self, rep, c):
        pt = {"rep": rep, "part": c.part, "subject": c.subject, "workers": c.workers,
              "per_core": None if c.workers == AUTO else c.workers / self.p.cores,
              "distance": c.distance.key,
              "rtt_asked_us": c.distance.rtt_us, "route": c.route.key, "path": c.route.path,
              "load": c.load.key, "mode": c.load.kind, "connections": c.load.connections,
              "rate_offered": c.rate or None, "sched": c.sched, "placement": c.placement,
              "duration_s": self.p.duration,
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "checked": not self.checks.get(c.subject), "error": None}
        cal = self.db.calibration.get(c.distance.key)
        if cal:
            pt["delay_one_way_us"] = cal["one_way_us"]
        return pt

    # -- one measurement

    def measure(self, pt, c, subject):
        pt["checked"] = not self.checks.get(c.subject)
        wire = self.db.wire()
        if wire is not None:
            wire.window()
        groups = self.tiers()
        url = self.runner.url(c.route.path)
        with Probe(self.db) as probe:
            if c.load.kind == "closed":
                before = proc.sample(groups)
                r = load.wrk_hist(url, c.load.connections, self.p.duration)
                after = proc.sample(groups)
                cpu = proc.cpu_percent(before, after, {"load": r["cpu_ticks"]})
            else:
                r, cpu = self.open_loop(pt, c, groups)
        pt["rtt_loaded_us"] = probe.median()
        if wire is not None:
            win = wire.window() or {}
            pt.update({"delay_frames": win.get("frames"), "late_p50_us": win.get("late_p50_us"),
                       "late_p99_us": win.get("late_p99_us"),
                       "delay_dropped": win.get("dropped")})
        self.drain(subject)
        fill(pt, r, cpu)
        pt["autogroups_app"] = schedlib.autogroups(self.runner.worker_pids())

    def open_loop(self, pt, c, groups):
        """openloop at the cell's rate; (its measurements, CPU shares)."""
        if not OPENLOOP.exists():
            raise load.LoadError(f"{OPENLOOP} not found: make bench builds it")
        argv = [OPENLOOP, "127.0.0.1", self.a.port, c.route.path, "%.1f" % c.rate,
                c.load.connections, self.p.duration, OPEN_WARMUP]
        job = load.CURRENT["job"] = Job(argv)
        try:
            start = time.monotonic()
            time.sleep(max(0.0, start + 0.05 + OPEN_WARMUP - time.monotonic()))
            groups = dict(groups, load=[job.pid])
            before = proc.sample(groups)
            time.sleep(max(0.0, start + 0.05 + OPEN_WARMUP + self.p.duration - time.monotonic()))
            after = proc.sample(groups)
            rc, out, _ = job.wait(self.p.duration + OPEN_WARMUP + 30)
        finally:
            load.CURRENT["job"] = None
        if rc != 0:
            raise load.LoadError(f"openloop exited {rc}: {out.strip()[-300:]}")
        return load.parse_openloop(out), proc.cpu_percent(before, after)

    def drain(self, subject, window=0.1, busy_ns=3_000_000, limit=15.0):
        """Wait until the requests the load left behind are served: the
        workers (and, a connection per request, PostgreSQL) quiet for a
        moment, at most limit seconds."""
        roots = [self.db.postmaster_pid()] if subject.db_mode == "per-request" else []
        deadline = time.monotonic() + limit
        prev = None
        while time.monotonic() < deadline:
            pids = self.runner.worker_pids() + schedlib.tree(roots)
            now = {p: ns for p, (ns, _) in proc.task_stats(pids).items()}
            if prev is not None and sum(ns - prev.get(p, 0) for p, ns in now.items()) < busy_ns:
                return
            prev = now
            time.sleep(window)

    def stop_all(self):
        """Stop everything the sweep started, the database host included;
        what is left (a list of strings)."""
        left = []
        if self.sched is not None:
            self.sched.restore(self.tiers() if self.db.pg else None)
        try:
            if self.runner is not None:
                self.runner.stop()
        except Exception as e:  # noqa: BLE001 - stop what else we can
            left.append(f"stopping the subject: {e}")
        self.stack.stop()
        left += self.db.stop()
        return left


def fill(pt, r, cpu):
    """A point's measurements from the load's result r and the CPU shares."""
    pt["requests"] = r["requests"]
    pt["rps"] = r["rps"]
    h = spread.hist_parse(r.get("hist"))
    pt["hist"] = spread.hist_text(h)
    for q in (50, 90, 99):
        v = spread.hist_percentile(h, q)
        pt[f"p{q}_ms"] = None if v is None else v / 1000.0
    pt["max_ms"] = None if r.get("max_us") is None else r["max_us"] / 1000.0
    pt["non2xx"] = r.get("err_status", 0)
    pt["socket_errors"] = r.get("socket_errors", 0)
    pt["err_timeout"] = r.get("err_timeout", 0)
    for k in ("unfinished", "queued_max", "due"):
        if k in r:
            pt[k] = r[k]
    groups = ("app", "front", "pg", "delay", "load")
    for g in groups:
        pt[f"cpu_{g}"] = cpu.get(g)
    total = cpu.get("total")
    pt["cpu_total"] = total
    other = cpu.get("other")
    # The groups' times (ticks of 10 ms, each process's own) may add up to
    # more than the machine's busy time over the same window (counted
    # apart, per CPU): the excess is not "other" work but what the
    # accounting could not close.
    pt["cpu_other"] = None if other is None else max(0.0, other)
    pt["cpu_unaccounted"] = None if other is None else max(0.0, -other)


def summary_line(pt):
    if pt.get("error"):
        return f"FAILED: {pt['error']}"
    s = f"{pt['rps']:,.0f} req/s"
    if pt.get("rate_offered"):
        s = f"offered {pt['rate_offered']:,.0f}, done {s}"
    if pt.get("p99_ms") is not None:
        s += f" p50 {pt['p50_ms']:.2f} p99 {pt['p99_ms']:.2f} ms"
    bad = (pt.get("non2xx") or 0) + (pt.get("socket_errors") or 0)
    if bad:
        s += f" ERRORS non-2xx {pt['non2xx']} socket {pt['socket_errors']}"
    if pt.get("unfinished"):
        s += f" unfinished {pt['unfinished']}"
    cpu = " ".join(f"{g} {pt[f'cpu_{g}']:.0f}" for g in ("app", "front", "pg", "delay", "load",
                                                          "other")
                   if pt.get(f"cpu_{g}") is not None)
    s += f"; cpu% {cpu}"
    if pt.get("rtt_loaded_us") is not None:
        s += f"; rtt {pt['rtt_loaded_us'] / 1000:.2f} ms"
    if pt.get("late_p99_us") is not None:
        s += f" (delay line late p99 {pt['late_p99_us'] / 1000:.2f} ms)"
    return s
