"""scene: one scenario of a test, and everything it started.

    with scene.Scene(tap, "kill") as sc:           # a temporary directory
        sp = sc.spawn(["-w", 2, "--bind", sc.sock, "--", *w.argv])  # tfb-spawn
        st = sc.front()                            # nginx in front of sc.sock
        load = sc.wrk(st.url("/plaintext"), 5)     # wrk in the background
    # on leaving: everything killed, the directory removed unless a
    # check failed (or TFB_TEST_KEEP is set)

    with scene.Scene(tap, "pg-restart", stack=dict(workers=3)) as sc:
        load = sc.load(scene.DB_PATHS, seconds=6)  # the stack of its own, loaded
        ...                                        # the fault, over at since
        sc.check_outage("PostgreSQL restarted", load, since, bound=5.0)
        # recovered within 5 s, the load's answers 200 or 503 (some 503),
        # then wrk: every answer 200, the same workers, a connection each
    # on leaving: deploy/stack stop, then nothing of the stack may be left

A scene with a stack makes the three promises of every fault test, and
checks them the same way:

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
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

from . import APP_BIN, FAKE_WORKER, STACK, proc, web
from .cmd import tail, wait_exit
from .load import Wrk, answers_summary, count
from .pool import Spawn
from .stack import Stack, StackError, check_connections, check_gone, touch_all_workers

SHORT_BODY = 1024   # a "short body": an error page at most this long
CLEAR = (503, 504)  # the statuses a fault may answer with
DB_PATHS = ["/db", "/queries?queries=20", "/updates?queries=20", "/fortunes"]
HANG = 10           # seconds: a request of the fault tests' loads that takes longer hangs
# Seconds from a database outage's end to a round all 200: a worker tries
# again at most DB_BACKOFF_MAX_MS (2 s) after its last try, plus slack for
# a loaded machine.
DB_RECOVERY = 5.0


class Scene:
    """A temporary directory (sc.dir, reachable by the users the servers
    drop to) and the processes of one scenario.  stack: the knobs of a
    stack of its own (stack.Stack's: server, workers, env), started on
    entry unless start is False (the test then starts its parts, and
    calls started() once the stack serves)."""

    def __init__(self, tap, name, stack=None, start=True):
        self.tap, self.name = tap, name
        self.dir = tempfile.mkdtemp(prefix="tfb-test-%s-" % name, dir="/tmp")
        os.chmod(self.dir, 0o755)
        os.makedirs(self.path("run"))
        # Where a pool of the test's own listens: what front() serves.
        self.sock = self.path("run", "fcgi.sock")
        self.owned, self.fronts, self.spawns = [], [], []
        self.failed_before = tap.failed
        self.st, self.auto_start, self.pids0 = None, start, []
        if stack is not None:
            tap.need([APP_BIN, STACK])
            knobs = dict(stack)
            self.workers = knobs.setdefault(
                "workers", int(os.environ.get("TFB_TEST_WORKERS", "3")))
            self.st = Stack(tap=tap, name=name, **knobs)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # -- lifecycle

    def __enter__(self):
        if self.st is None:
            return self
        if not self.auto_start:
            self.st.started = True  # stop() must run whatever the test starts
            return self
        try:
            self.st.start()
            err = ""
        except StackError as e:
            err = str(e)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        if not self.tap.check(not err, "%s: deploy/stack start (%s)"
                              % (self.name, self.st.describe()), err):
            self.__exit__(StackError, None, None)
            raise StackError("deploy/stack start failed")
        self.started()
        return self

    def started(self):
        """The stack serves: touch every worker (each connects to
        PostgreSQL on its first request at the latest) and remember who
        they are."""
        touch_all_workers(self.st, self.workers, rounds=1)
        self.pids0 = self.st.worker_pids()
        self.tap.check(len(self.pids0) == self.workers,
                       "%s: %d worker processes serve (%s)" % (self.name, self.workers,
                                                               self.st.describe()),
                       "found %s" % self.pids0)

    def failed(self):
        return self.tap.failed > self.failed_before

    def __exit__(self, exc_type, exc, tb):
        # A sanitizer build (make SANITIZE=...) reports into the log.
        for s in self.spawns:
            m = re.search(r"ERROR: \w+Sanitizer.*|runtime error:.*", s.text())
            if m:
                self.tap.fail("%s: no sanitizer report" % self.name, m.group(0))
        failed = exc_type is not None or self.failed()
        if failed:
            self.note_logs()
        ours = self.stack_pids() if self.st is not None else []
        for p in reversed(self.owned):
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    proc.kill_tree(p.pid)
                    wait_exit(p, 5)
            else:
                p.kill()
        for f in self.fronts:
            f.cleanup()
        if self.st is not None:
            self.st.cleanup()
            if exc_type is None:
                check_gone(self.tap, ours, self.st.port, "%s: after deploy/stack stop, "
                           "the stack, wrk and the helpers" % self.name)
        if failed or os.environ.get("TFB_TEST_KEEP"):
            self.tap.note("kept %s for inspection" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def note_logs(self):
        for s in self.spawns:
            self.tap.note("--- %s (end)" % s.log, *tail(s.text(), 25))
        for st in self.fronts + ([self.st] if self.st else []):
            st.dump_logs()

    def stack_pids(self):
        """Every process of the stack and of the test: the supervisor and
        its workers, the front server and its workers, the postmaster and
        its children, wrk and the helpers."""
        roots = self.st.pool_pids() + self.st.front_pids()
        for d in self.st.var_dirs():
            # Its first line is the postmaster's pid.
            roots += proc.read_pids(os.path.join(d, "pg", "data", "postmaster.pid"))[:1]
        pids = set(roots + proc.descendants(roots))
        pids.update(p.pid for p in self.owned if getattr(p, "pid", None))
        return sorted(p for p in pids if proc.alive(p))

    # -- what it runs

    def own(self, thing):
        """thing (a Popen, whose whole tree goes, or anything with kill())
        is killed when the scene ends."""
        self.owned.append(thing)
        return thing

    def popen(self, argv, **kw):
        """A helper process, killed (its whole tree) at the end."""
        for k in ("stdin", "stdout", "stderr"):
            kw.setdefault(k, subprocess.DEVNULL)
        return self.own(subprocess.Popen([str(a) for a in argv], **kw))

    def spawn(self, args, env=None, log=None):
        """tfb-spawn ARGS, logging to log (spawn.log)."""
        s = Spawn(args, log or self.path("spawn.log"), env)
        self.spawns.append(s)
        return self.own(s)

    def fake_worker(self):
        """The scripted worker, built by make test beside the build under
        test (a sanitizer build's with its sanitizers), copied into the
        scene's directory: --user drops the workers to an account that may
        not reach the build (a clone in a home directory of mode 0700, as
        CI's and make test-fresh's are)."""
        self.tap.need([FAKE_WORKER])
        dst = self.path("fake_worker")
        shutil.copyfile(FAKE_WORKER, dst)
        os.chmod(dst, 0o755)
        return dst

    def front(self, fcgi_port=None, server="nginx", keepalive=0):
        """deploy/stack's front server with the scene's directory as its
        VAR, in front of sc.sock (or 127.0.0.1:fcgi_port): by default a new
        FastCGI connection per request, so that no kept one pins a worker
        of a plain libfcgi responder."""
        st = Stack(server=server, var=self.dir, keepalive=keepalive, tap=self.tap,
                                fcgi="tcp" if fcgi_port else "unix", fcgi_port=fcgi_port)
        self.fronts.append(st)
        st.call("front", "start", timeout=60)
        return st

    def wrk(self, url, seconds, **kw):
        return self.own(Wrk(url, seconds, **kw))

    def load(self, paths, seconds, connections=16, close=False):
        """The fault tests' load on the scene's stack: wrk rotating over
        paths, every answer counted, a request past HANG seconds a hang."""
        return self.wrk(self.st.url(paths[0]), seconds, connections=connections,
                        timeout=HANG, paths=paths, close=close)

    # -- the fault checks

    def check_answers(self, label, res, must=(), drops=0, allow=CLEAR):
        """During the fault: every answer a 200 or one of allow (503 or
        504 by default) with a short body, at most drops clean connection
        drops, no hang.  must: the statuses that have to appear, so that
        a fault that did not happen cannot pass for one that was handled."""
        tap = self.tap
        tap.note("%s: %s" % (label, answers_summary(res)))
        if not tap.check(res["parsed"] and res["rc"] == 0,
                         "%s: wrk ran and reported" % label, tail(res["out"], 15)):
            return False
        bad = ["%d %s: %d answers, the longest %d bytes" % (s, t, n, longest)
               for (s, t), (n, longest) in sorted(res["answers"].items())
               if not (s == 200 or (s in allow and longest <= SHORT_BODY))]
        what = " or ".join(["200"] + ["%d" % s for s in allow])
        ok = tap.check(not bad and res["requests"] > 0,
                       "%s: every answer is %s%s (%s)"
                       % (label, what, " with a short body" if allow else "",
                          ", ".join("%d x %d" % (count(res, s), s) for s in (200,) + allow)),
                       bad or [answers_summary(res)])
        ok &= tap.check(res["err_timeout"] == 0,
                        "%s: no request hung (%d past wrk's --timeout of %d s)"
                        % (label, res["err_timeout"], HANG))
        ok &= tap.check(res["drops"] <= drops, "%s: %d clean connection drops, at most %d"
                        % (label, res["drops"], drops), answers_summary(res))
        for s in must:
            ok &= tap.check(count(res, s) > 0, "%s: the fault was felt: some answers are %d"
                            % (label, s), answers_summary(res))
        return ok

    def wait_recovery(self, label, since, bound, paths=DB_PATHS):
        """Rounds of concurrent requests (two per worker on each path)
        until a whole round answers 200; the time from since (the end of
        the fault, time.monotonic()) must be within bound seconds."""
        while True:
            last = [r for p in paths for r in web.batch(self.st.url(p), 2 * self.workers, 5)]
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
        self.tap.note("%s, after: %s" % (label, answers_summary(res)))
        self.tap.check(res["parsed"] and res["requests"] > 0 and list(res["answers"])
                       and all(s == 200 for s, _ in res["answers"])
                       and res["socket_errors"] == 0,
                       "%s: then %d s of wrk load on %s: every answer 200, no "
                       "socket error (%d requests)"
                       % (label, seconds, ", ".join(paths), res["requests"]),
                       [answers_summary(res)] + tail(res["out"], 6))
        return res

    def check_same_workers(self, label):
        """The workers of the start serve, and the supervisor started no
        other (a worker replaced and gone again would leave the same pids
        but not the same log)."""
        pids = self.st.worker_pids()
        started = sorted(int(p) for p in re.findall(r"worker (\d+) started", self.st.app_log()))
        self.tap.check(pids == self.pids0 and pids and started == self.pids0,
                       "%s: the same %d worker processes serve (none restarted)"
                       % (label, self.workers),
                       ["before %s" % self.pids0, "after  %s" % pids,
                        "started by the supervisor: %s" % started])
        return pids

    def check_after(self, label, paths=DB_PATHS, same=True):
        """The promises after a fault: a window of load answered 200 only,
        the same workers (unless the fault replaced some: same False), one
        PostgreSQL connection each."""
        self.check_steady(label, paths)
        if same:
            self.check_same_workers(label)
        self.check_connections(label)

    def check_outage(self, label, load, since, bound=DB_RECOVERY):
        """The promises of a database outage over at since: recovered within
        bound, load's answers 200 or a clear 503 (some 503), then those
        after a fault."""
        self.wait_recovery(label, since, bound)
        self.check_answers(label, load.result(), must=(503,))
        self.check_after(label)

    def check_connections(self, label, timeout=10):
        return check_connections(self.tap, self.st, self.workers, timeout, label=label)
