"""faultkit.py: what the test_fault_*.py files share, on top of lib.py.

    with faultkit.Scene(tap, "pgrestart") as sc:        # a stack of its own
        load = sc.load(["/db", "/updates?queries=20"], seconds=6)
        ...                                             # the fault
        sc.check_answers("PostgreSQL restarted", load.result(), must=(503,))
        sc.wait_recovery("PostgreSQL restarted", since, bound=5.0)
        sc.check_steady("PostgreSQL restarted")          # wrk: every answer 200
        sc.check_same_workers("PostgreSQL restarted")
        sc.check_connections("PostgreSQL restarted")
    # on leaving: deploy/stack stop, then nothing of the stack may be left

Every fault test makes the same three promises, and checks them the same
way:

  during the fault, every answer is a 200, or a clear 503 or 504 with a
  short body, or a clean connection drop; each kind is counted, and a
  request that outlives wrk's --timeout is a hang, a failure;

  after it, the service recovers by itself: the test restarts nothing, and
  within a bound each test states a round of concurrent requests on every
  route under test answers 200, then a second of wrk load answers 200
  only, without a socket error;

  the same worker processes serve where the fault gives no reason to
  replace one, with one PostgreSQL connection each, and once deploy/stack
  stop returns, no process of the stack (supervisor, workers, front
  server, PostgreSQL) nor of the test (wrk, helpers) runs, and the port is
  free.

The load is wrk with fault_load.lua, which sees every answer's status,
content type and body length (wrk alone counts only "non-2xx").  Python
standard library only.
"""

import concurrent.futures
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import tfb_stack_tests as ts  # noqa: E402
from stack import read_pids  # noqa: E402  (lib put tests/ on the path)

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_load.lua")
SHORT_BODY = 1024   # a "short body": an error page at most this long
CLEAR = (503, 504)  # the statuses a fault may answer with
DB_PATHS = ["/db", "/queries?queries=20", "/updates?queries=20", "/fortunes"]


wait_for = lib.wait_for


class Load:
    """wrk in the background on paths (rotated by fault_load.lua);
    result() waits for it and reads what the script printed."""

    TIMEOUT = 10  # seconds: a request that takes longer is a hang

    def __init__(self, st, paths, seconds, connections=16, timeout=TIMEOUT, close=False):
        self.seconds = seconds
        self.timeout = timeout
        self.connections = connections
        argv = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
                "--timeout", "%ds" % timeout, "-s", LUA]
        # One request per connection: what a client without keep-alive
        # (or siege's default) does.
        if close:
            argv += ["-H", "Connection: close"]
        argv += [st.url(paths[0]), "--"] + list(paths)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace")
        self.started = time.monotonic()
        self._result = None

    def result(self):
        if self._result is None:
            try:
                out, _ = self.proc.communicate(timeout=self.seconds + self.timeout + 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
            self._result = parse(out, self.proc.returncode)
        return self._result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def parse(out, rc):
    """What fault_load.lua printed: answers {(status, type): [count,
    longest]}, the socket errors, the worst latency."""
    r = {"out": out, "rc": rc, "answers": {}, "connect": 0, "read": 0, "write": 0,
         "timeout": 0, "max_ms": None, "requests": 0, "parsed": False}
    for m in re.finditer(r"^answer (\d+) (\S+) (\d+) (\d+)$", out, re.M):
        r["answers"][(int(m.group(1)), m.group(2))] = [int(m.group(3)), int(m.group(4))]
    m = re.search(r"^errors connect (\d+) read (\d+) write (\d+) timeout (\d+)$", out, re.M)
    if m:
        r.update(connect=int(m.group(1)), read=int(m.group(2)), write=int(m.group(3)),
                 timeout=int(m.group(4)), parsed=True)
    m = re.search(r"^latency max_us (\d+) requests (\d+)$", out, re.M)
    if m:
        r["max_ms"] = int(m.group(1)) / 1000.0
        r["requests"] = int(m.group(2))
    r["drops"] = r["connect"] + r["read"] + r["write"]
    return r


def count(res, status):
    return sum(n for (s, _), (n, _) in res["answers"].items() if s == status)


def summary(res):
    """"200: 1234, 503: 56 (text/plain, <= 21 B); drops 0; timeouts 0; max 1.8 s"."""
    parts = []
    for (s, t), (n, longest) in sorted(res["answers"].items()):
        parts.append("%d %s: %d" % (s, t, n) + ("" if s == 200 else " (<= %d B)" % longest))
    lat = "max %.0f ms" % res["max_ms"] if res["max_ms"] is not None else "no latency"
    return "%s; drops %d (connect %d, read %d, write %d); timeouts %d; %s" % (
        ", ".join(parts) or "no answer", res["drops"], res["connect"], res["read"],
        res["write"], res["timeout"], lat)


class Scene:
    """A stack of its own (lib.Stack: PostgreSQL, tfb-spawn and its
    workers, a front server) for one fault, the loads and helper
    processes started through it, and the checks above.

    start=False leaves the starting to the test (PostgreSQL down when the
    pool starts); it then calls started() once the stack serves."""

    def __init__(self, tap, name, server="nginx", workers=None, env=None, start=True):
        self.tap = tap
        self.name = name
        self.workers = workers or int(os.environ.get("TFB_TEST_WORKERS", "3"))
        self.st = lib.Stack(server=server, workers=self.workers, tap=tap,
                            name="fault-" + name, env=env)
        self.auto_start = start
        self.loads, self.procs, self.pids0 = [], [], []
        self.timeout = Load.TIMEOUT
        self.failed_before = tap.failed

    # -- lifecycle

    def __enter__(self):
        if self.auto_start:
            try:
                self.st.start()
            except BaseException:
                self.st.cleanup()
                raise
            self.tap.ok("deploy/stack start (%s)" % self.st.describe())
            self.started()
        else:
            self.st.started = True
        return self

    def started(self):
        """The stack serves: touch every worker (each connects to
        PostgreSQL on its first request at the latest) and remember who
        they are."""
        ts.touch_all_workers(self.st, self.workers, rounds=1)
        self.pids0 = self.st.worker_pids()
        self.tap.check(len(self.pids0) == self.workers,
                       "%s: %d worker processes" % (self.name, self.workers),
                       "found %s" % self.pids0)

    def __exit__(self, exc_type, exc, tb):
        for load in self.loads:
            load.kill()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                lib.wait_exit(p, 5)
        ours = self.stack_pids()
        failed = exc_type is not None or self.tap.failed > self.failed_before
        if failed:
            self.st.dump_logs()
        self.st.cleanup()
        if exc_type is None:
            self.check_nothing_left(ours)
        return False

    def stack_pids(self):
        """Every process of the stack and of the test: the supervisor and
        its workers, the front server and its workers, the postmaster and
        its children, wrk and the helpers."""
        roots = self.st.pool_pids() + self.st.front_pids()
        for d in self.st.var_dirs():
            # Its first line is the postmaster's pid.
            roots += read_pids(os.path.join(d, "pg", "data", "postmaster.pid"))[:1]
        pids = set()
        for root in roots:
            pids.update([root] + lib.descendants(root))
        pids.update(p.proc.pid for p in self.loads)
        pids.update(p.pid for p in self.procs)
        return sorted(p for p in pids if lib.alive(p))

    def check_nothing_left(self, pids):
        gone = wait_for(lambda: not any(lib.alive(p) for p in pids), 5)
        free = wait_for(lambda: lib.port_is_free(self.st.port), 5)
        self.tap.check(gone and free and pids,
                       "%s: after deploy/stack stop nothing is left: %d processes "
                       "(stack, wrk, helpers) gone, port %d free"
                       % (self.name, len(pids), self.st.port),
                       ["still alive: %s" % [p for p in pids if lib.alive(p)],
                        "port free: %s" % free])

    # -- load and helpers

    def load(self, paths, seconds, **kw):
        load = Load(self.st, paths, seconds, **kw)
        self.loads.append(load)
        return load

    def popen(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in argv], **kw)
        self.procs.append(p)
        return p

    # -- checks

    def check_answers(self, label, res, must=(), drops=0, allow=CLEAR):
        """During the fault: every answer a 200 or one of allow (503 or
        504 by default) with a short body, at most drops clean connection
        drops, no hang.  must: the statuses that have to appear, so that
        a fault that did not happen cannot pass for one that was handled."""
        tap = self.tap
        tap.note("%s: %s" % (label, summary(res)))
        if not tap.check(res["parsed"] and res["rc"] == 0,
                         "%s: wrk ran and reported" % label, lib.tail(res["out"], 15)):
            return False
        bad = ["%d %s: %d answers, the longest %d bytes" % (s, t, n, longest)
               for (s, t), (n, longest) in sorted(res["answers"].items())
               if not (s == 200 or (s in allow and longest <= SHORT_BODY))]
        what = " or ".join(["200"] + ["%d" % s for s in allow])
        ok = tap.check(not bad and res["requests"] > 0,
                       "%s: every answer is %s%s (%s)"
                       % (label, what, " with a short body" if allow else "",
                          ", ".join("%d x %d" % (count(res, s), s) for s in (200,) + allow)),
                       bad or [summary(res)])
        ok &= tap.check(res["timeout"] == 0,
                        "%s: no request hung (%d past wrk's --timeout of %d s)"
                        % (label, res["timeout"], self.timeout))
        ok &= tap.check(res["drops"] <= drops,
                        "%s: %d clean connection drops, at most %d"
                        % (label, res["drops"], drops), summary(res))
        for s in must:
            ok &= tap.check(count(res, s) > 0,
                            "%s: the fault was felt: some answers are %d" % (label, s),
                            summary(res))
        return ok

    def batch(self, path, n, timeout=5):
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            return list(ex.map(lambda _: lib.try_get(self.st.url(path), timeout=timeout),
                               range(n)))

    def wait_recovery(self, label, since, bound, paths=DB_PATHS):
        """Rounds of concurrent requests (two per worker on each path)
        until a whole round answers 200; the time from since (the end of
        the fault, time.monotonic()) must be within bound seconds."""
        n = 2 * self.workers
        last = []
        while True:
            last = [r for p in paths for r in self.batch(p, n)]
            took = time.monotonic() - since
            if all(r.status == 200 for r in last) or took > bound:
                break
            time.sleep(0.05)
        ok = all(r.status == 200 for r in last)
        self.tap.check(ok and took <= bound,
                       "%s: recovered by itself within %.0f s (%.2f s; a round of %d "
                       "requests on %s all 200)" % (label, bound, took, len(last),
                                                    ", ".join(paths)),
                       ["statuses of the last round: %s"
                        % sorted({r.status for r in last}, key=str)]
                       + [r.summary(120) for r in last if r.status != 200][:4])
        return took

    def check_steady(self, label, paths=DB_PATHS, seconds=1):
        """After recovery: a window of wrk load, every answer 200."""
        res = self.load(paths, seconds).result()
        self.tap.note("%s, after: %s" % (label, summary(res)))
        self.tap.check(res["parsed"] and res["requests"] > 0 and
                       list(res["answers"]) and
                       all(s == 200 for s, _ in res["answers"]) and
                       res["drops"] == 0 and res["timeout"] == 0,
                       "%s: then %d s of wrk load on %s: every answer 200, no "
                       "socket error (%d requests)"
                       % (label, seconds, ", ".join(paths), res["requests"]),
                       [summary(res)] + lib.tail(res["out"], 6))
        return res

    def app_log(self):
        """The pool's log (the supervisor's lines and the workers')."""
        for d in self.st.var_dirs():
            try:
                with open(os.path.join(d, "log", "app.log"), errors="replace") as f:
                    return f.read()
            except OSError:
                continue
        return ""

    def started_pids(self):
        """Every worker the supervisor started, from its log."""
        return sorted(int(p) for p in re.findall(r"worker (\d+) started", self.app_log()))

    def check_same_workers(self, label):
        """The workers of the start serve, and the supervisor started no
        other (a worker replaced and gone again would leave the same pids
        but not the same log)."""
        pids = self.st.worker_pids()
        started = self.started_pids()
        self.tap.check(pids == self.pids0 and pids and started == self.pids0,
                       "%s: the same %d worker processes serve (none restarted)"
                       % (label, self.workers),
                       ["before %s" % self.pids0, "after  %s" % pids,
                        "started by the supervisor: %s" % started])
        return pids

    def check_connections(self, label, timeout=10):
        """One PostgreSQL connection per worker, named tfb-fcgi (polled:
        a worker notices a dead connection on its next request, and an
        abandoned backend takes a moment to go)."""
        got = ts.poll_connections(self.st, self.workers, self.st.app_connections,
                                  self.workers, timeout)
        return self.tap.check(got == self.workers,
                              "%s: one PostgreSQL connection per worker again (%s)"
                              % (label, got))
