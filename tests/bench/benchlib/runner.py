"""runner: one sweep of the scaling experiments, point by point.

The plan (plan.py) says what to measure; the Runner does it in order:
PostgreSQL once, then per repetition the anchors (servers.py, and
pgbench through load.py) and every configuration (the pool and the front
server through deploy/stack), each point measured by load.py between two
CPU samples (procstat.py).  It prints and logs progress as it goes and
keeps every point, failed ones included, for report.py.

Signals are the caller's: tests/bench/run turns them into
KeyboardInterrupt outside servers.CRITICAL, then calls stop_all().
"""

import datetime
import os
import time
from pathlib import Path

import stack

from . import load, procstat, servers


class Runner:
    """One sweep: a (the command line's settings: port, fcgi_port, var,
    keepalive), p (the plan), out (the output directory, which exists).
    run() measures and leaves the points in .points; stop_all() stops
    what it started, whatever happened."""

    def __init__(self, a, p, out):
        self.a, self.p, self.out = a, p, Path(out)
        self.points = []
        self.failures = 0
        self.t0 = time.monotonic()
        self.logf = open(self.out / "bench.log", "w")
        # PostgreSQL is started once for the sweep; the pool and the front
        # server per configuration.  APP_ARGS is always set, so that the
        # caller's own does not change what is measured.
        self.stack = stack.Stack(var=a.var, port=a.port, fcgi_port=a.fcgi_port,
                                 keepalive=a.keepalive, app_args="",
                                 guard=servers.CRITICAL)
        self.front_kind = None  # (front, socket) of the running front server
        self.anchor = None      # servers.Anchor, once the stack's VAR exists
        self.pgenv = {}
        self.postmaster = None
        self.pg_version = None
        self.done = 0
        self.total = p.reps * (p.points_per_rep() + self.anchor_points())
        self.estimate = p.estimate_seconds()
        self.est_done = 0.0  # estimated seconds of the points done
        self.costs = p.point_costs()

    def anchor_points(self):
        return len(self.p.anchors()) * len(self.p.concurrency)

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
        if r.get("warning"):
            pt["warning"] = r["warning"]

    def measure_wrk(self, pt, path, conc):
        url = f"http://127.0.0.1:{self.a.port}{path}"
        groups = self.groups()
        before = procstat.sample(groups)
        r = load.wrk(url, conc, self.p.duration, self.p.threads)
        after = procstat.sample(groups)
        self.drain(pt)
        cpu = procstat.cpu_percent(before, after, {"load": r["cpu_ticks"]})
        self.fill(pt, r, cpu)
        rss = [procstat.rss_kb(pid) for pid in self.stack.worker_pids()]
        rss = [x for x in rss if x]
        if rss:
            pt["rss_worker_kb_mean"] = sum(rss) / len(rss)
            pt["rss_worker_kb_max"] = max(rss)

    def drain(self, pt=None):
        """Wait until the requests wrk left behind are served.  wrk closes
        its connections at the end, but the requests the front server had
        already passed on wait in the pool's listen queue and are served
        anyway, for seconds when a request is slow (per-request mode):
        they must not eat into the next measurement.  The queue is FIFO,
        so one more request through it comes back when they are done."""
        t = time.monotonic()
        got = servers.http_get(self.a.port, "/plaintext", timeout=120)
        waited = time.monotonic() - t
        if pt is not None:
            pt["drain_s"] = waited
        if got is None:
            self.say("    warning: the stack did not answer after the run")

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
        return f"{s}; cpu% {cpu}"

    # --- anchors -------------------------------------------------------------

    def run_front_anchor(self, rep, name):
        paths = ["/plaintext"]
        try:
            self.anchor.start(name, paths)
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
            self.anchor.stop()
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
            self.anchor.stop()

    def run_pg_anchor(self, rep, anchor):
        script = self.out / "pgbench" / f"{anchor.name}-{anchor.route.key}.sql"
        env = dict(os.environ)
        env.update(self.pgenv)
        env["PGAPPNAME"] = "tfb-bench"
        for conc in self.p.concurrency:
            clients = self.p.pg_clients(conc, anchor)
            pt = self.point(rep, "anchor", anchor.name, anchor.route.key,
                            str(script.relative_to(self.out)), conc,
                            {"clients": clients})

            try:
                r = load.pgbench(script, clients, self.p.pg_warmup(clients, anchor),
                                 self.p.duration,
                                 env, [self.postmaster] if self.postmaster else [],
                                 mode=anchor.mode, connect_each=anchor.connect_each,
                                 max_tries=anchor.max_tries, workdir=str(self.out))
                cpu = procstat.cpu_percent(r["before"], r["after"])
                self.fill(pt, r, cpu)
            except load.LoadError as e:
                pt["error"] = str(e)
            self.record(pt, f"rep {rep} anchor {anchor.name} {anchor.route.path} "
                            f"-c {clients}")

    # --- configurations ------------------------------------------------------

    def start_config(self, cfg):
        """Run this configuration: restart the pool, and the front server
        too unless the running one already has this front and socket (it
        finds the new pool at the same socket path or port)."""
        st = self.stack
        if self.front_kind != (cfg.front, cfg.socket):
            st.run("front", "stop", timeout=st.STOP_TIMEOUT)
            self.front_kind = None
        st.run("pool", "stop", timeout=st.STOP_TIMEOUT)
        st.server, st.fcgi, st.workers = cfg.front, cfg.socket, cfg.workers
        st.app_args = "" if cfg.db_mode == "persistent" else f"--db-mode {cfg.db_mode}"
        st.call("pool", "start", timeout=st.START_TIMEOUT)
        if self.front_kind is None:
            try:
                st.call("front", "start", timeout=st.START_TIMEOUT)
            except stack.StackError:
                st.run("pool", "stop", timeout=st.STOP_TIMEOUT)
                raise
            self.front_kind = (cfg.front, cfg.socket)

    def stop_config(self):
        """Stop the pool and the front server."""
        self.stack.run("front", "stop", timeout=self.stack.STOP_TIMEOUT)
        self.stack.run("pool", "stop", timeout=self.stack.STOP_TIMEOUT)
        self.front_kind = None

    def stop_all(self):
        """Stop everything the sweep started, PostgreSQL included."""
        if self.anchor:
            self.anchor.stop()
        self.stack.stop()

    def run_config(self, rep, cfg):
        routes = cfg.routes(self.p.routes)
        extra = {"front": cfg.front, "socket": cfg.socket, "db_mode": cfg.db_mode,
                 "workers": cfg.workers}
        label = f"rep {rep} {cfg.label} w={cfg.workers}"
        try:
            self.start_config(cfg)
            bad = {}
            for r in routes:
                got = servers.http_get(self.a.port, r.path)
                if got is None or got[0] != 200:
                    bad[r.key] = (f"{r.path} answered "
                                  f"{got[0] if got else 'nothing'} before the run")
            # Per-request mode keeps nothing warm between requests.
            if self.p.warmup and cfg.db_mode == "persistent":
                load.wrk(f"http://127.0.0.1:{self.a.port}/", max(self.p.concurrency),
                         self.p.warmup, self.p.threads,
                         warmup_paths=[r.path for r in routes])
                self.drain()
        except (stack.StackError, load.LoadError) as e:
            for r in routes:
                for conc in self.p.concurrency:
                    pt = self.point(rep, "app", cfg.label, r.key, r.path, conc, extra)
                    pt["error"] = str(e)
                    self.record(pt, f"{label} {r.path} c={conc}")
            self.stop_config()
            return
        # The pool and front server stay up: the next configuration
        # restarts what it needs, the next repetition's anchors stop them.
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
                alive = sum(stack.alive(x) for x in self.stack.worker_pids())
                if alive < cfg.workers and not pt["error"]:
                    pt["error"] = f"{cfg.workers - alive} worker(s) died"
                self.record(pt, f"{label} {r.path} c={conc}")

    def record(self, pt, label):
        self.points.append(pt)
        self.est_done += self.costs[self.done % len(self.costs)] \
            if self.costs else 0.0
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
        self.anchor = servers.Anchor(os.path.realpath(st.var), self.a.port)
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
