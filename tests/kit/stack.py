"""stack: deploy/stack from Python, for the integration tests and the bench.

    with stack.started(tap, server="nginx", workers=4) as st:   # a VAR of its own
        if st:                                    # None when it did not start
            st.url("/db")                         # http://127.0.0.1:PORT/db
            st.psql("SELECT 1")                   # deploy/stack psql -At -c ...
            st.worker_pids()                      # from the pool's pid file

    st = stack.Stack(var="var/bench-stack", port=8090)   # a VAR that stays
    st.call("pg", "start")                        # one part; StackError if it fails
    st.server, st.workers = "lighttpd", 8         # the knobs of the next call
    st.call("pool", "start")

deploy/stack is the only thing that starts the stack's servers.  This
module hands it the knobs of its contract (VAR, PORT, SERVER, WORKERS,
FCGI, FCGI_PORT, KEEPALIVE, APP_ARGS, and whatever `env` adds: APP, PG*)
and reads back what it leaves behind: the pid files under VAR/run and the
output of `deploy/stack env`.  Below the class, the checks several tests
make of a running stack: every worker touched, one PostgreSQL connection
each, the same workers at the end, nothing left after the stop.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
from pathlib import Path

from . import APP_BIN, APP_CONNECTIONS_SQL, APP_NAME, REPO, STACK, fcgi, proc, web
from .cmd import run, tail


def is_app(pid):
    return os.path.basename(proc.exe(pid)) == "tfb-fcgi"


# --------------------------------------------------------------------------
# The stack

class StackError(Exception):
    pass


class Stack:
    """deploy/stack with a VAR, a PORT and the other knobs of its own.

    var: the state directory; None makes a temporary one (/tmp/tfb-test-
    NAME-*) that cleanup() removes unless TFB_TEST_KEEP is set.  A VAR
    given here is never removed: it may hold a cluster worth keeping.
    port: the HTTP port (a free one from PORT_RANGE when None); fcgi
    "tcp" without fcgi_port takes another free one.  Knobs left None are
    not passed, so deploy/stack's defaults apply (WORKERS: one per core).
    The attributes server, workers, fcgi, fcgi_port, keepalive and
    app_args may be changed between calls; env adds variables (APP, PG*),
    and takes out of the caller's environment those whose value is None.

    tap: a reporter with note() and failed (lib.TAP): notes, and the ends
    of the logs when a check failed, go there.  guard: a context manager
    every deploy/stack call runs inside, in a session of its own; the
    caller then owns the signals (the bench defers a Ctrl-C until the call
    is through, since a start killed half-way may leave a process with no
    pid file).  Without it a Ctrl-C reaches deploy/stack's own trap too.

    As a context manager it starts everything on entry and always stops
    it on exit, printing the ends of its logs when a check failed, then
    removes a temporary VAR.  Every call has a timeout."""

    START_TIMEOUT = 240
    STOP_TIMEOUT = 90

    def __init__(self, server="nginx", workers=None, port=None, fcgi=None,
                 fcgi_port=None, keepalive=None, app_args=None, var=None,
                 name="t", env=None, tap=None, guard=None):
        self.server = server
        self.workers = workers
        self.picked = port is None  # ours to change if it turns out taken
        self.port = port or web.free_port()
        self.fcgi = fcgi
        self.fcgi_port = fcgi_port
        self.fcgi_picked = fcgi_port is None
        self.keepalive = keepalive
        self.app_args = app_args
        self.own_var = var is None
        self.var = tempfile.mkdtemp(prefix="tfb-test-%s-" % name, dir="/tmp") \
            if var is None else str(var)
        self.extra_env = dict(env or {})
        self.tap = tap
        self.guard = guard
        self.started = False

    # -- environment and raw commands

    def knobs(self):
        """The deploy/stack variables this stack sets, as strings."""
        if self.fcgi == "tcp" and self.fcgi_port is None:
            self.fcgi_port = web.free_port()
        k = {"VAR": self.var, "PORT": self.port, "SERVER": self.server,
             "WORKERS": self.workers, "FCGI": self.fcgi,
             "FCGI_PORT": self.fcgi_port, "KEEPALIVE": self.keepalive,
             "APP_ARGS": self.app_args}
        return {n: str(v) for n, v in k.items() if v is not None}

    def env(self):
        e = dict(os.environ)
        e.update(self.knobs())
        e.update(self.extra_env)
        return {k: v for k, v in e.items() if v is not None}

    def describe(self):
        """SERVER=nginx WORKERS=4 PORT=28080 ...: for messages."""
        return " ".join("%s=%s" % kv for kv in self.knobs().items() if kv[0] != "VAR")

    def run(self, *args, timeout=60):
        """deploy/stack ARGS...; a CompletedProcess (returncode None on a
        timeout), output merged."""
        guard = self.guard or contextlib.nullcontext()
        with guard:
            return run([str(STACK)] + list(args), timeout, env=self.env(),
                       cwd=str(REPO), session=self.guard is not None)

    def call(self, *args, timeout=60):
        """run(), raising StackError with the end of the output when
        deploy/stack fails."""
        r = self.run(*args, timeout=timeout)
        if r.returncode != 0:
            raise StackError("deploy/stack %s (%s) exited %s:\n%s"
                             % (" ".join(args), self.describe(), r.returncode,
                                "\n".join(tail(r.stdout))))
        return r

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    # -- lifecycle

    def start(self):
        """deploy/stack start.  A port we picked free a moment ago may be
        taken by the time the servers bind it (others pick from the same
        range): then, and only for a port we picked, try another, twice."""
        self.started = True  # even half-started: stop must run
        for attempt in range(3):
            r = self.run("start", timeout=self.START_TIMEOUT)
            if r.returncode == 0 or not self.picked or attempt == 2 or \
                    "is already taken" not in (r.stdout or ""):
                break
            self.port = web.free_port()
            if self.fcgi == "tcp" and self.fcgi_picked:
                self.fcgi_port = web.free_port()
        if r.returncode != 0:
            raise StackError("deploy/stack start (%s) exited %s:\n%s"
                             % (self.describe(), r.returncode, "\n".join(tail(r.stdout))))
        return r

    def stop(self):
        """deploy/stack stop, whatever runs from VAR; nothing to do when
        VAR does not exist (nothing ever ran from it)."""
        self.started = False
        if not os.path.lexists(self.var):
            return None
        r = self.run("stop", timeout=self.STOP_TIMEOUT)
        if r.returncode != 0 and self.tap:
            self.tap.note("deploy/stack stop exited %s:" % r.returncode, *tail(r.stdout, 15))
        return r

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None or (self.tap is not None and self.tap.failed)
        if failed and self.tap:
            self.dump_logs()
        self.cleanup()
        return False

    def cleanup(self):
        """Stop, then remove a temporary VAR (unless TFB_TEST_KEEP)."""
        # A second Ctrl-C must not skip the stop: ignore SIGINT meanwhile.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGINT, old)
        if not self.own_var:
            return
        if os.environ.get("TFB_TEST_KEEP"):
            if self.tap:
                self.tap.note("kept VAR=%s for inspection" % self.var)
            return
        # As root the stack may have replaced our VAR by a symlink to a
        # directory of its own (/var/tmp/tfb-fcgi-<hash>): remove both.
        if os.path.islink(self.var):
            real = os.path.realpath(self.var)
            if real.startswith("/var/tmp/tfb-fcgi-"):
                shutil.rmtree(real, ignore_errors=True)
            os.unlink(self.var)
        else:
            shutil.rmtree(self.var, ignore_errors=True)

    def dump_logs(self, lines=15):
        """Print the ends of the stack's log files as comments."""
        if not self.tap:
            return
        for root in self.var_dirs():
            for p in sorted(Path(root).rglob("*.log"))[:12]:
                try:
                    text = p.read_text(errors="replace")
                except OSError:
                    continue
                if text.strip():
                    self.tap.note("--- %s (last %d lines)" % (p, lines), *tail(text, lines))

    def app_log(self):
        """The pool's log (the supervisor's lines and the workers'), or ""."""
        for d in self.var_dirs():
            try:
                with open(os.path.join(d, "log", "app.log"), errors="replace") as f:
                    return f.read()
            except OSError:
                continue
        return ""

    def var_dirs(self):
        """VAR and, when the stack relocated it, where it went (a symlink
        VAR, or a symlinked directory inside it)."""
        dirs = [self.var]
        real = os.path.realpath(self.var)
        if real != self.var:
            dirs.append(real)
        for p in Path(self.var).iterdir() if os.path.isdir(self.var) else []:
            if p.is_symlink() and p.is_dir():
                dirs.append(os.path.realpath(p))
        return dirs

    def run_path(self, name):
        """run/NAME in the stack's state (the pool's fcgi.sock, its
        status.sock), wherever the stack put it; None when it is not
        there."""
        for d in self.var_dirs():
            p = os.path.join(d, "run", name)
            if os.path.exists(p):
                return p
        return None

    # -- PostgreSQL

    def pg_env(self):
        """The PG* variables `deploy/stack env` prints ("export K=V", V
        quoted for the shell), as a dict."""
        out = {}
        for line in (self.run("env", timeout=30).stdout or "").splitlines():
            m = re.fullmatch(r"export (PG[A-Z]+)=(.*)", line.strip())
            if m:
                out[m.group(1)] = " ".join(shlex.split(m.group(2)))
        return out

    def psql(self, sql, timeout=60):
        """Run one SQL command; return its unaligned, tuples-only output
        (fields separated by "|").  Raises StackError on failure."""
        r = self.run("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
                     timeout=timeout)
        if r.returncode != 0:
            raise StackError("psql %r exited %s: %s" % (sql[:80], r.returncode,
                                                       " | ".join(tail(r.stdout, 5))))
        return r.stdout.strip()

    def world(self, table="world"):
        """{id: randomnumber} of the World table (or "World")."""
        rows = {}
        for line in self.psql("SELECT id, randomnumber FROM %s" % table).splitlines():
            i, n = line.split("|")
            rows[int(i)] = int(n)
        return rows

    def app_connections(self):
        return int(self.psql(APP_CONNECTIONS_SQL))

    def postmaster_pid(self):
        """The postmaster of the database in use: the parent of its
        checkpointer (the embedded cluster and a local PGHOST alike), a
        child that lives as long as the server; psql's own backend would
        be gone, and its parent with it from /proc, by the time we read
        it.  None when it cannot be read."""
        try:
            return proc.ppid(int(self.psql(
                "SELECT pid FROM pg_stat_activity "
                "WHERE backend_type = 'checkpointer'")))
        except (StackError, ValueError):
            return None

    # -- the status page

    def status(self, timeout=10):
        """The pool's status page as JSON (a dict), read from the status
        socket deploy/stack gives the supervisor (run/status.sock) with
        `tfb-spawn status SOCKET json`: it is served by the supervisor's
        own process, so reading it is no request to the workers.  None
        when no pool answers."""
        env = self.env()
        app = env.get("APP") or str(REPO / "build" / "tfb-fcgi")
        spawn = env.get("SPAWN") or os.path.join(os.path.dirname(app), "tfb-spawn")
        sock = self.run_path("status.sock")
        if sock is None:
            return None
        r = run([spawn, "status", sock, "json"], timeout)
        try:
            return json.loads(r.stdout) if r.returncode == 0 else None
        except ValueError:
            return None

    # -- pid files

    def _pid_file(self, *names):
        """The pids of the first of run/NAME... that names any, in VAR or
        where the stack moved it."""
        for d in self.var_dirs():
            for name in names:
                pids = proc.read_pids(os.path.join(d, "run", name))
                if pids:
                    return pids
        return []

    def pool_pids(self):
        """What the pool's pid file names: the supervisor (tfb-spawn,
        run/spawn.pid), or, for a plain spawn-fcgi pool, one pid per
        responder (run/pool.pid)."""
        return self._pid_file("spawn.pid", "pool.pid")

    def front_pids(self):
        """The front server's master (or only) process."""
        return self._pid_file("nginx.pid", "lighttpd.pid")

    def worker_pids(self):
        """The pids of this stack's tfb-fcgi processes: the tfb-fcgi
        processes among the pool's pid file and their descendants when
        there is one, else every tfb-fcgi process whose environment names
        our VAR or PORT."""
        pids = set()
        for root in self.pool_pids():
            pids.update(p for p in [root] + proc.descendants(root) if is_app(p))
        if pids:
            return sorted(pids)
        marks = {("VAR=" + d).encode() for d in self.var_dirs()}
        marks.add(("PORT=%d" % self.port).encode())
        return sorted(p for p in proc.all_pids() if is_app(p) and marks & set(proc.environ(p)))


# --------------------------------------------------------------------------
# A stack for one test, and the checks of a running one

@contextlib.contextmanager
def started(tap, **knobs):
    """A Stack(tap=tap, **knobs) started as one check ("deploy/stack
    start ... exits 0"): yields it, or None when it did not start.  On
    the way out it is stopped, the ends of its logs shown when a check
    failed, its temporary VAR removed."""
    st = Stack(tap=tap, **knobs)
    try:
        st.start()
        err = ""
    except StackError as e:
        err = str(e)
    if not tap.check(not err, "deploy/stack start (%s)" % st.describe(), err):
        st.cleanup()
        yield None
        return
    failed = True
    try:
        yield st
        failed = False
    finally:
        st.__exit__(StackError if failed else None, None, None)


def step(tap, st, *args, timeout=120, after=""):
    """deploy/stack ARGS on st as one check, "deploy/stack ARGS" and after;
    whether it passed."""
    r = st.run(*args, timeout=timeout)
    return tap.check(r.returncode == 0, "deploy/stack %s%s" % (" ".join(args), after),
                     tail(r.stdout, 10))


def own_pg(tap, what):
    """what, and the rest of the program, skipped when PGHOST names a
    PostgreSQL of someone else's, which a test must not stop, restart or
    fill."""
    if os.environ.get("PGHOST"):
        tap.skip_rest(what, "PGHOST is set: the stack uses a PostgreSQL it does not own")


def fcgi_round(sock, n, path="/db"):
    """n requests on n new connections to the pool's socket, all sent
    before any answer is read, so that they wait for several workers."""
    conns = []
    try:
        for _ in range(n):
            c = fcgi.connect(sock)
            conns.append(c)
            c.send(fcgi.whole(path))
        for c in conns:
            c.read_response()
    except OSError:
        pass  # a touch, not a check: the caller checks what it wants
    finally:
        for c in conns:
            c.close()


def touch_all_workers(st, workers, rounds=3):
    """Concurrent /db requests, more than there are workers, so that every
    worker serves some: through the front server, and straight to the
    pool's socket, since nginx sends its requests on the FastCGI
    connections it keeps, which the workers that accepted them hold (one
    no kept connection reaches would serve none)."""
    n = max(4 * workers, 16)
    sock = st.run_path("fcgi.sock")
    for _ in range(rounds):
        web.batch(st.url("/db"), n)
        if sock:
            fcgi_round(sock, n)


def poll_connections(st, workers, fetch, want, timeout=8):
    """Poll fetch() until it returns want or timeout seconds pass, sending
    every worker a request in between (a worker notices a dead connection
    only when it next uses it).  Returns the last value fetched."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = fetch()
        except StackError as e:
            got = str(e)
        if got == want or time.monotonic() > deadline:
            return got
        touch_all_workers(st, workers, rounds=1)
        time.sleep(0.5)


def check_connections(tap, st, workers, timeout=8, label="pg_stat_activity"):
    """One PostgreSQL connection per worker, named tfb-fcgi (polled: a
    worker notices a dead connection on its next request, and an
    abandoned backend takes a moment to go)."""
    got = poll_connections(st, workers, st.app_connections, workers, timeout)
    details = ["got %s" % got]
    if got != workers:
        try:
            details += st.psql("SELECT pid, state, backend_start, left(query, 60) FROM "
                               "pg_stat_activity WHERE application_name = '%s'"
                               % APP_NAME).splitlines()[:20]
        except StackError:
            pass
    return tap.check(got == workers, "%s: %d connections with application_name %s (one "
                     "per worker)" % (label, workers, APP_NAME), details)


def check_workers(tap, st, workers, pids_before, label="the stack"):
    """The workers at the end: as many as asked, running the build under
    test (make test-sanitize must test its sanitizer build, not another),
    the very processes of the start."""
    pids = st.worker_pids()
    tap.check(len(pids) == workers, "%s: %d tfb-fcgi worker processes" % (label, workers),
              "found pids %s" % pids)
    want = os.path.realpath(APP_BIN)
    exes = sorted({proc.exe(p) for p in pids})
    tap.check(exes == [want], "%s: the workers run %s, the build under test" % (label, want),
              "they run %s" % exes)
    tap.check(pids == pids_before and pids, "%s: no worker died or was replaced during "
              "the run" % label, ["at start %s" % pids_before, "at end   %s" % pids])
    return pids


def check_gone(tap, pids, port, what, timeout=5):
    """After a stop: none of pids alive, the port free."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if p and proc.alive(p)]
        free = web.port_is_free(port)
        if (not left and free) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return tap.check(pids and not left and free, "%s: nothing of it left (%d processes "
                     "gone), port %d free" % (what, len(pids), port),
                     ["still alive: %s" % left, "port free: %s" % free])
