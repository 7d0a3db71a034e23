"""runner: one sweep of the scaling experiments, point by point.

The plan (plan.py) says what to measure; the Runner does it in order:
PostgreSQL once, then per repetition the anchors (servers.py, and
pgbench through load.py) and every configuration (the pool and the front
server through deploy/stack), each point measured by load.py between two
CPU samples (tests/kit/proc.py) and, where a pool serves, two reads of its
status page (phases.py); then the rounds of what the timing costs and
of what slow FastCGI peers cost.  It
prints and logs progress as it goes and keeps every point, failed ones
included, for report.py.

Signals are the caller's: tests/bench/run turns them into
KeyboardInterrupt outside servers.CRITICAL, then calls stop_all().
"""

import datetime
import os
import re
import time
from pathlib import Path

from ...kit import proc, stack, web
from . import load, phases, plan as planlib, servers, slowpeers


# The supervisor's line for a worker it stopped (or lost): "tfb-spawn[SPID]
# info: worker PID (slot N) exited with status 0, stopped after R
# requests", or "... recycled after R requests", or "... after 1.2 s and R
# requests; replacing it".
WORKER_GONE = re.compile(r"\[(\d+)\] \w+: worker (\d+) \(slot (\d+)\) "
                         r".*?(\d+) requests")


class Runner:
    """One sweep: a (the command line's settings: port, fcgi_port, var),
    p (the plan), out (the output directory, which exists).
    run() measures and leaves the points in .points; stop_all() stops
    what it started, whatever happened."""

    def __init__(self, a, p, out):
        self.a, self.p, self.out = a, p, Path(out)
        self.points = []
        self.failures = 0
        self.t0 = time.monotonic()
        self.logf = open(self.out / "bench.log", "w")
        # PostgreSQL is started once for the sweep; the pool and the front
        # server per configuration.  APP_ARGS is always set, and the
        # caller's own TFB_* variables (tfb-spawn's TFB_SPAWN_*, the
        # responder's TFB_TIMING, TFB_SERVER_TIMING...) are taken out of
        # the stack's environment, so that they do not change what is
        # measured; each configuration sets TFB_SPAWN_CPU_AFFINITY.
        self.stack = stack.Stack(var=a.var, port=a.port, fcgi_port=a.fcgi_port,
                                 app_args="", guard=servers.CRITICAL,
                                 env={k: None for k in os.environ
                                      if k.startswith("TFB_")})
        self.front_kind = None  # plan.front_kind() of the running front server
        self.log_from = 0       # app.log's size when the running pool started
        self.config = None      # the configuration being measured
        self.anchor = None      # the running anchor (a kit.front.Front)
        self.pgenv = {}
        self.postmaster = None
        self.pg_version = None
        self.done = 0
        self.total = p.reps * (p.points_per_rep() + p.anchor_points()) + \
            p.timing_points() + p.slow_points()
        self.estimate = p.estimate_seconds()
        self.est_done = 0.0  # estimated seconds of the points done
        self.costs = p.all_costs()

    def say(self, msg):
        print(msg, flush=True)
        self.logf.write(msg + "\n")
        self.logf.flush()

    def progress(self, msg):
        el = time.monotonic() - self.t0
        # The plan's estimate of what is left, scaled by how far off the
        # estimate of what is done turned out to be.
        left = max(0.0, self.estimate - self.est_done) * \
            (el / self.est_done if self.est_done else 1.0)
        self.say(f"[{self.done:3d}/{self.total} {el // 60:.0f}:{el % 60:02.0f} "
                 f"~{left // 60:.0f}:{left % 60:02.0f} left] {msg}")

    # --- one measurement -------------------------------------------------

    def groups(self):
        # The supervisor counts with its responders (its own time is small,
        # and a responder it replaced moves into its cutime).
        running = self.anchor.pids() if self.anchor else []
        return {"app": self.stack.pool_pids() if self.front_kind else [],
                "front": running or self.stack.front_pids(),
                "pg": [self.postmaster] if self.postmaster else []}

    def point(self, rep, kind, config, route_key, path, conc, extra):
        pt = {"rep": rep, "kind": kind, "config": config, "route": route_key,
              "path": path, "concurrency": conc, "duration_s": self.p.duration,
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "error": None}
        pt.update(extra)
        return pt

    def fill(self, pt, r, cpu):
        pt["requests"] = r["requests"]
        pt["rps"] = r["rps"]
        for q in ("p50", "p90", "p99", "max", "mean"):
            v = r.get(f"{q}_us")
            pt[f"{q}_ms"] = None if v is None else v / 1000.0
        pt["non2xx"] = r["err_status"]
        for e in ("connect", "read", "write", "timeout"):
            pt[f"err_{e}"] = r[f"err_{e}"]
        pt["socket_errors"] = sum(r[f"err_{e}"] for e in
                                  ("connect", "read", "write", "timeout"))
        for g in ("app", "front", "pg", "load", "other", "total"):
            pt[f"cpu_{g}"] = cpu.get(g)
        # The groups' ticks may add up to more than the machine's busy time
        # over the window: that excess is what the accounting cannot close,
        # not a negative share of the rest of the machine.
        if pt["cpu_other"] is not None:
            pt["cpu_unaccounted"] = max(0.0, -pt["cpu_other"])
            pt["cpu_other"] = max(0.0, pt["cpu_other"])
        if r.get("warning"):
            pt["warning"] = r["warning"]

    def status_page(self):
        """The pool's status page (phases.window), None without a pool."""
        return self.stack.status() if self.front_kind else None

    def measure_wrk(self, pt, path, conc, duration=None):
        """wrk on path for duration seconds (the plan's by default),
        between two CPU samples and, inside them, two status pages."""
        url = f"http://127.0.0.1:{self.a.port}{path}"
        groups = self.groups()
        workers = self.stack.worker_pids() if self.front_kind else []
        page0 = self.status_page()
        tasks0 = proc.task_stats(workers)
        before = proc.sample(groups)
        r = load.wrk(url, conc, duration or self.p.duration, self.p.threads)
        after = proc.sample(groups)
        tasks1 = proc.task_stats(workers)
        page1 = self.status_page()
        self.drain(pt)
        cpu = proc.cpu_percent(before, after, {"load": r["cpu_ticks"]})
        self.fill(pt, r, cpu)
        self.fill_workers(pt, tasks0, tasks1, r["requests"])
        pt.update(phases.window(page0, page1))
        rss = [proc.rss_kb(pid) for pid in self.stack.worker_pids()]
        rss = [x for x in rss if x]
        if rss:
            pt["rss_worker_kb_mean"] = sum(rss) / len(rss)
            pt["rss_worker_kb_max"] = max(rss)

    @staticmethod
    def fill_workers(pt, tasks0, tasks1, requests):
        """How this point's work spread over the workers: each one's CPU
        time in the window, so per point and per route, where the
        supervisor's request counts (fill_requests) cover the whole
        configuration; and the workers' context switches per request."""
        both = [p for p in tasks0 if p in tasks1]
        if not both:
            return
        ns = [max(0, tasks1[p][0] - tasks0[p][0]) for p in both]
        cs = sum(max(0, tasks1[p][1] - tasks0[p][1]) for p in both)
        pt["cpu_workers_1pct"], pt["cpu_top_share"] = proc.spread(ns)
        if requests:
            pt["cswitch_per_req"] = cs / requests

    def warm_up(self, paths):
        """The plan's warm-up on the running pool, wrk cycling through
        paths, then the drain."""
        if not self.p.warmup:
            return
        load.wrk(f"http://127.0.0.1:{self.a.port}/", max(self.p.concurrency),
                 self.p.warmup, self.p.threads, warmup_paths=paths)
        self.drain()

    def drain(self, pt=None):
        """Wait until the requests wrk left behind are served.  wrk closes
        its connections at the end, but the requests the front server had
        already passed on are served anyway, for seconds when a request is
        slow (per-request mode): they must not eat into the next
        measurement.  First one more request through the stack: it comes
        back after the listen queue's (a FIFO) when it travels on a new
        FastCGI connection.  On a connection nginx kept it can overtake
        them, so then wait until the workers and PostgreSQL have been
        quiet for a moment."""
        t = time.monotonic()
        got = web.try_get(f"http://127.0.0.1:{self.a.port}/plaintext", timeout=120)
        if got.status is None:
            self.say("    warning: the stack did not answer after the run")
        self.wait_quiet()
        if pt is not None:
            pt["drain_s"] = time.monotonic() - t

    def wait_quiet(self, window=0.1, busy_ns=3_000_000, limit=15.0):
        """Return once the pool's workers used less than busy_ns of CPU (3%
        of a core) in a window, or after limit seconds.  In per-request
        mode PostgreSQL counts too: there a request's time is mostly its
        new backend's (tens of ms), the worker's a fraction of it.  A
        process that appears in a window counts with all its time; one
        that exits is gone from the sum (the next backend takes over)."""
        if not self.front_kind:
            return
        per_request = self.config is not None and self.config.db_mode != "persistent"
        roots = [self.postmaster] if self.postmaster and per_request else []
        deadline = time.monotonic() + limit
        prev = None
        while time.monotonic() < deadline:
            pids = self.stack.worker_pids() + roots + \
                proc.descendants(roots, proc.children_map() if roots else {})
            now = {p: ns for p, (ns, _) in proc.task_stats(pids).items()}
            if prev is not None and \
                    sum(ns - prev.get(p, 0) for p, ns in now.items()) < busy_ns:
                return
            prev = now
            time.sleep(window)

    def summary_line(self, pt):
        if pt.get("error"):
            return f"FAILED: {pt['error']}"
        s = (f"{pt['rps']:,.0f} req/s p50 {pt['p50_ms']:.2f} p99 {pt['p99_ms']:.2f} ms"
             if pt.get("p99_ms") is not None else f"{pt['rps']:,.0f} req/s")
        bad = (pt.get("non2xx") or 0) + (pt.get("socket_errors") or 0)
        if bad:
            s += f" ERRORS non-2xx {pt['non2xx']} socket {pt['socket_errors']}"
        cpu = " ".join(f"{g} {pt[f'cpu_{g}']:.0f}" for g in
                       ("app", "front", "pg", "load", "other")
                       if pt.get(f"cpu_{g}") is not None)
        s = f"{s}; cpu% {cpu}"
        if phases.total_us(pt) is not None:
            s += "; µs/req " + " ".join(f"{p[:4]} {pt[f'phase_us_{p}']:.0f}"
                                        for p in phases.PHASES)
        return s

    # --- anchors -------------------------------------------------------------

    def run_front_anchor(self, rep, name):
        paths = ["/plaintext"]
        self.anchor = servers.anchor(self.var, self.a.port, name, paths)
        try:
            self.anchor.start(guard=servers.CRITICAL)
            if self.p.warmup:
                load.wrk(f"http://127.0.0.1:{self.a.port}/plaintext",
                         max(self.p.concurrency), self.p.warmup, self.p.threads,
                         warmup_paths=paths)
        except (stack.StackError, load.LoadError) as e:
            for conc in self.p.concurrency:
                pt = self.point(rep, "anchor", name, "*", "/plaintext", conc,
                                {"front": name.split("-")[0], "clients": conc})
                pt["error"] = str(e)
                self.record(pt, f"rep {rep} anchor {name} c={conc}")
            self.stop_anchor()
            return
        try:
            for conc in self.p.concurrency:
                pt = self.point(rep, "anchor", name, "*", "/plaintext", conc,
                                {"front": name.split("-")[0], "clients": conc})
                try:
                    self.measure_wrk(pt, "/plaintext", conc)
                except load.LoadError as e:
                    pt["error"] = str(e)
                self.record(pt, f"rep {rep} anchor {name} c={conc}")
        finally:
            self.stop_anchor()

    def stop_anchor(self):
        if self.anchor is not None:
            self.anchor.stop()
            self.anchor = None

    def run_pg_anchor(self, rep, anchor):
        """Every client count of the anchor.  Its points carry the client
        count as their concurrency: an app row finds the anchor run with
        as many clients as it has wrk connections, or workers."""
        script = self.out / "pgbench" / f"{anchor.name}-{anchor.route.key}.sql"
        env = dict(os.environ)
        env.update(self.pgenv)
        env["PGAPPNAME"] = "tfb-bench"
        for clients in self.p.anchor_clients(anchor):
            pt = self.point(rep, "anchor", anchor.name, anchor.route.key,
                            str(script.relative_to(self.out)), clients,
                            {"clients": clients})

            try:
                r = load.pgbench(script, clients, self.p.pg_warmup(clients, anchor),
                                 self.p.duration,
                                 env, [self.postmaster] if self.postmaster else [],
                                 mode=anchor.mode, connect_each=anchor.connect_each,
                                 max_tries=anchor.max_tries, workdir=str(self.out))
                cpu = proc.cpu_percent(r["before"], r["after"])
                self.fill(pt, r, cpu)
            except load.LoadError as e:
                pt["error"] = str(e)
            self.record(pt, f"rep {rep} anchor {anchor.name} {anchor.route.path} "
                            f"-c {clients}")

    # --- configurations ------------------------------------------------------

    def app_log(self):
        return os.path.join(self.stack.var, "log", "app.log")

    def start_config(self, cfg):
        """Run this configuration: restart the pool, and the front server
        too unless the running one already has this front, socket and
        keepalive (it finds the new pool at the same socket path or
        port).  Notes where app.log ends, so that the supervisor's lines
        for this pool can be told from earlier ones."""
        st = self.stack
        kind = self.p.front_kind(cfg)
        if self.front_kind != kind:
            st.run("front", "stop", timeout=st.STOP_TIMEOUT)
            self.front_kind = None
        st.run("pool", "stop", timeout=st.STOP_TIMEOUT)
        st.server, st.fcgi, st.workers = cfg.front, cfg.socket, cfg.workers
        st.keepalive = cfg.keepalive
        st.extra_env["TFB_SPAWN_CPU_AFFINITY"] = cfg.affinity
        st.app_args = cfg.app_args
        self.start_pool()
        if self.front_kind is None:
            try:
                st.call("front", "start", timeout=st.START_TIMEOUT)
            except stack.StackError:
                st.run("pool", "stop", timeout=st.STOP_TIMEOUT)
                raise
            self.front_kind = kind

    def start_pool(self):
        """Start the pool with the stack's knobs as they are, noting where
        app.log ends first."""
        try:
            self.log_from = os.path.getsize(self.app_log())
        except OSError:
            self.log_from = 0
        self.stack.call("pool", "start", timeout=self.stack.START_TIMEOUT)

    def run_probe(self, rep, cfg, extra, label):
        """The light-load probe: /plaintext with fewer wrk connections than
        workers on the pool just started, which then stops for its request
        counts and starts afresh for the routes.  A pool of its own, so
        that neither's counts blur the other's."""
        conc = self.p.probe
        pt = self.point(rep, "probe", cfg.label, "plaintext", "/plaintext", conc,
                        extra)
        try:
            self.measure_wrk(pt, "/plaintext", conc)
        except load.LoadError as e:
            pt["error"] = str(e)
        counts = self.pool_requests()
        self.fill_requests([pt], counts, cfg.workers)
        self.record(pt, f"{label} probe /plaintext c={conc}")
        self.say_spread(counts, cfg.workers)
        self.start_pool()

    def say_spread(self, counts, workers):
        n1, top = proc.spread(list(counts.values()))
        if top is not None:
            self.say(f"    {sum(counts.values()):,} requests over {workers} "
                     f"worker(s): {n1} served at least 1%, the busiest "
                     f"{100 * top:.0f}%")
        if len(counts) < workers:
            self.say(f"    warning: app.log gives the request counts of "
                     f"{len(counts)} of {workers} slots")

    def placement(self, cfg):
        """The CPUs each worker may run on, as the kernel says; raises
        StackError when a pinned configuration's workers are not pinned
        (the variable reached a tfb-spawn that ignores it)."""
        allowed = [proc.cpus_allowed(p) for p in self.stack.worker_pids()]
        allowed = [x for x in allowed if x]
        if cfg.affinity == "slot" and any(not x.isdigit() for x in allowed):
            raise stack.StackError(
                f"TFB_SPAWN_CPU_AFFINITY=slot left workers on CPUs "
                f"{', '.join(sorted(set(allowed)))}: not pinned")
        cpus = sorted(set(allowed), key=lambda x: (len(x), x))
        if cfg.affinity == "slot":
            return f"{', '.join(cpus)} (one each)"
        return " ".join(cpus)

    def pool_requests(self):
        """Stop the pool and read from app.log, among the lines written
        since it started, how many requests each of its workers served:
        {slot: requests}, summed over the workers a slot had.  The
        supervisor logs each count as it buries the worker."""
        pids = self.stack.pool_pids()
        self.stack.run("pool", "stop", timeout=self.stack.STOP_TIMEOUT)
        counts = {}
        try:
            with open(self.app_log(), errors="replace") as f:
                f.seek(self.log_from)
                text = f.read()
        except OSError:
            return counts
        for line in text.splitlines():
            m = WORKER_GONE.search(line)
            if m and (not pids or int(m.group(1)) in pids):
                slot = int(m.group(3))
                counts[slot] = counts.get(slot, 0) + int(m.group(4))
        return counts

    @staticmethod
    def fill_requests(pts, counts, workers):
        """The configuration's request spread, on each of its points."""
        n1, top = proc.spread(list(counts.values()))
        for pt in pts:
            pt["pool_requests"] = sum(counts.values())
            pt["req_workers_1pct"] = n1
            pt["req_top_share"] = top
            pt["req_per_slot"] = [counts.get(i, 0) for i in range(workers)]

    def stop_config(self):
        """Stop the pool and the front server."""
        self.stack.run("front", "stop", timeout=self.stack.STOP_TIMEOUT)
        self.stack.run("pool", "stop", timeout=self.stack.STOP_TIMEOUT)
        self.front_kind = None

    def stop_all(self):
        """Stop everything the sweep started, PostgreSQL included."""
        self.stop_anchor()
        self.stack.stop()

    def run_config(self, rep, cfg):
        routes = cfg.routes(self.p.routes)
        extra = self.config_fields(cfg)
        label = f"rep {rep} {cfg.label} w={cfg.workers}"
        self.config = cfg
        probed = False
        try:
            self.start_config(cfg)
            extra["cpus_allowed"] = self.placement(cfg)
            bad = {}
            for r in routes:
                got = web.try_get(f"http://127.0.0.1:{self.a.port}{r.path}").status
                if got != 200:
                    bad[r.key] = f"{r.path} answered {got or 'nothing'} before the run"
            if self.p.probes(cfg):
                probed = True
                self.run_probe(rep, cfg, extra, label)
            # Per-request mode keeps nothing warm between requests.
            if cfg.db_mode == "persistent":
                self.warm_up([r.path for r in routes])
        except (stack.StackError, load.LoadError) as e:
            if self.p.probes(cfg) and not probed:
                pt = self.point(rep, "probe", cfg.label, "plaintext", "/plaintext",
                                self.p.probe, extra)
                pt["error"] = str(e)
                self.record(pt, f"{label} probe /plaintext c={self.p.probe}")
            for r in routes:
                for conc in self.p.concurrency:
                    pt = self.point(rep, "app", cfg.label, r.key, r.path, conc, extra)
                    pt["error"] = str(e)
                    self.record(pt, f"{label} {r.path} c={conc}")
            self.stop_config()
            self.config = None
            return
        # The front server stays up: the next configuration restarts it if
        # it needs another, the next repetition's anchors stop it.  The
        # pool is stopped at the end, for its request counts.
        pts = []
        for r in routes:
            for conc in self.p.concurrency:
                pt = self.point(rep, "app", cfg.label, r.key, r.path, conc, extra)
                if r.key in bad:
                    pt["error"] = bad[r.key]
                else:
                    try:
                        self.measure_wrk(pt, r.path, conc)
                    except load.LoadError as e:
                        pt["error"] = str(e)
                alive = sum(proc.alive(x) for x in self.stack.worker_pids())
                if alive < cfg.workers and not pt["error"]:
                    pt["error"] = f"{cfg.workers - alive} worker(s) died"
                pts.append(pt)
                self.record(pt, f"{label} {r.path} c={conc}")
        # The points are recorded already: they get the counts in place.
        self.config = None
        counts = self.pool_requests()
        self.fill_requests(pts, counts, cfg.workers)
        self.say_spread(counts, cfg.workers)

    # --- what the timing costs ----------------------------------------------

    def run_timing_cost(self):
        """Rounds of /db on the same configuration with the responder's
        --timing off and on, the pool restarted for each point, the order
        swapped every round (plan.timing_order)."""
        for rnd in range(1, self.p.timing_rounds + 1):
            for timing in self.p.timing_order(rnd):
                self.run_timing_point(rnd, timing)
        self.stop_config()

    def run_timing_point(self, rnd, timing):
        """One point of a round: the pool with --timing timing, on /db."""
        cfg = self.p.timing_config(timing)
        self.run_round_point(rnd, "timing", cfg, cfg.label, "db", {},
                             f"timing round {rnd} --timing {timing}")

    def run_round_point(self, rnd, kind, cfg, label, route_name, extra, desc,
                        around=None):
        """One point of a round of paired measurements (what the timing
        costs, what slow peers cost): the pool restarted with cfg, warmed
        up on the route, measured for the plan's timing_duration at wrk's
        largest concurrency.  around(pt, measure), when given, runs the
        measurement inside whatever the point adds."""
        p = self.p
        route = planlib.parse_route(route_name)
        conc = max(p.concurrency)
        pt = self.point(rnd, kind, label, route.key, route.path, conc,
                        dict(self.config_fields(cfg), duration_s=p.timing_duration,
                             **extra))

        def measure():
            self.measure_wrk(pt, route.path, conc, p.timing_duration)
        self.config = cfg
        try:
            self.start_config(cfg)
            self.warm_up([route.path])
            if around is None:
                measure()
            else:
                around(pt, measure)
        except (stack.StackError, load.LoadError) as e:
            pt["error"] = str(e)
        self.config = None
        self.record(pt, f"{desc} {cfg.workers} workers {route.path} c={conc}")

    # --- what slow FastCGI peers cost --------------------------------------

    def run_slow_cost(self):
        """Rounds of /plaintext on the shipped configuration, a worker per
        core, without and with the plan's slow peers held open on the
        pool's socket, the pool restarted for each point, the order
        swapped every round (plan.slow_order)."""
        for rnd in range(1, self.p.slow_rounds + 1):
            for how in self.p.slow_order(rnd):
                self.run_slow_point(rnd, how)
        self.stop_config()

    def run_slow_point(self, rnd, how):
        """One point of a round: /plaintext, with the plan's slow peers or
        none."""
        cfg = self.p.timing_config("on")
        n = self.p.slow_peers if how == "with" else 0
        label = cfg.label + (f"/slow-peers{n}" if n else "")
        self.run_round_point(rnd, "slow", cfg, label, "plaintext", {"slow_peers": n},
                             f"slow peers round {rnd} {how} ({n})",
                             lambda pt, measure: self.slow_peers_held(pt, n, measure))

    def slow_peers_held(self, pt, n, measure):
        """measure() with n slow peers held open on the pool's socket."""
        sock = self.stack.run_path("fcgi.sock")
        if sock is None:
            raise stack.StackError("the pool's socket is not in run/")
        try:
            with slowpeers.SlowPeers(sock, n) as peers:
                measure()
        except OSError as e:
            pt["error"] = f"slow peers: {e}"
            return
        pt["slow_closed"] = peers.closed
        if peers.error:
            pt["error"] = peers.error

    @staticmethod
    def config_fields(cfg):
        """What a point records of its configuration."""
        return {"front": cfg.front, "socket": cfg.socket, "db_mode": cfg.db_mode,
                "keepalive": cfg.keepalive, "cpu_affinity": cfg.affinity,
                "workers": cfg.workers, "timing": cfg.timing}

    def record(self, pt, label):
        self.points.append(pt)
        self.est_done += self.costs[self.done] if self.done < len(self.costs) \
            else 0.0
        self.done += 1
        if pt.get("error"):
            self.failures += 1
        self.progress(f"{label}: {self.summary_line(pt)}")
        if pt.get("warning"):
            self.say(f"    warning: {pt['warning']}")

    # --- the sweep -------------------------------------------------------------

    def run(self):
        p = self.p
        self.say(f"bench: {len(p.configs)} configurations x {len(p.routes)} "
                 f"route(s), {p.reps} repetition(s), {self.total} points, "
                 f"about {self.estimate / 60:.1f} min; output {self.out}")
        st = self.stack
        st.call("pg", "start", timeout=st.START_TIMEOUT)
        self.pgenv = st.pg_env()
        self.var = os.path.realpath(st.var)
        self.postmaster = st.postmaster_pid()
        try:
            self.pg_version = st.psql("SHOW server_version")
        except stack.StackError:
            pass
        if self.postmaster is None:
            self.say("bench: warning: PostgreSQL's pid not found, its CPU "
                     "will read 0")
        (self.out / "pgbench").mkdir(exist_ok=True)
        anchors = p.anchors()
        for an in anchors:
            if an.route is not None:
                (self.out / "pgbench" / f"{an.name}-{an.route.key}.sql").write_text(
                    an.script)
        for rep in range(1, p.reps + 1):
            self.stop_config()  # the anchors use the same port
            for an in anchors:
                if an.route is None:
                    self.run_front_anchor(rep, an.name)
                else:
                    self.run_pg_anchor(rep, an)
            for cfg in p.configs:
                self.run_config(rep, cfg)
        self.run_timing_cost()
        if p.slow_points():
            self.run_slow_cost()
