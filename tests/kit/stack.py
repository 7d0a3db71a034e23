"""stack.py: deploy/stack from Python, for the integration tests and the bench.

    st = stack.Stack(server="nginx", workers=4)   # a VAR of its own in /tmp
    with st:                                      # deploy/stack start ... stop
        st.url("/db")                             # http://127.0.0.1:PORT/db
        st.psql("SELECT 1")                       # deploy/stack psql -At -c ...
        st.worker_pids()                          # from the pool's pid file

    st = stack.Stack(var="var/bench-stack", port=8090)   # a VAR that stays
    st.call("pg", "start")                        # one part; StackError if it fails
    st.server, st.workers = "lighttpd", 8         # the knobs of the next call
    st.call("pool", "start")

deploy/stack is the only thing that starts the stack's servers.  This
module hands it the knobs of its contract (VAR, PORT, SERVER, WORKERS,
FCGI, FCGI_PORT, KEEPALIVE, APP_ARGS, and whatever `env` adds: APP, PG*)
and reads back what it leaves behind: the pid files under VAR/run and the
output of `deploy/stack env`.  Around it, what both its users need:
commands run with a timeout, free ports, processes seen through /proc.

It sits in tests/, beside harness.h, so that tests/integration/ (through
lib.py) and tests/bench/ (benchlib) import the same code and neither
imports the other.  Python standard library only.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# TFB_STACK: another script with the same contract (to test the tests).
STACK = Path(os.environ.get("TFB_STACK") or REPO / "deploy" / "stack")
APP_NAME = "tfb-fcgi"  # application_name of the app's libpq connections

# Ports the tests may listen on, "LO-HI": 28080-28099 unless TFB_TEST_PORTS
# names others (several people running tests on one machine each take a
# range of their own).
PORT_RANGE = os.environ.get("TFB_TEST_PORTS", "28080-28099")


# --------------------------------------------------------------------------
# Commands

def run(argv, timeout, env=None, cwd=None, session=False):
    """subprocess.run with a timeout, stdout and stderr merged into
    .stdout (text).  A timeout returns returncode None, never raises.
    session: run it in a session of its own, out of reach of a Ctrl-C
    on our terminal."""
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                              timeout=timeout, text=True, errors="replace",
                              start_new_session=session)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return subprocess.CompletedProcess(argv, None, out + "\n(timed out after %ss)" % timeout)


def wait_exit(proc, timeout):
    """proc's exit status once it exits within timeout seconds, else
    None (it is left running)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def tail(text, n=30):
    lines = (text or "").rstrip().splitlines()
    return lines[-n:]


# --------------------------------------------------------------------------
# Ports

_taken_ports = set()


def port_is_free(port, host="127.0.0.1"):
    """True when nothing listens on host:port and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers do: a TIME-WAIT connection that happens to use
        # the port on its local side does not stop them from listening.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) != 0


def free_port():
    """A port in PORT_RANGE that nothing uses and that this process has
    not handed out yet; an ephemeral port when the range is exhausted."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", PORT_RANGE)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        ports = list(range(lo, hi + 1))
        # Start at a place of our own, so that test files run side by side
        # seldom race for the same port.
        k = os.getpid() % len(ports) if ports else 0
        for port in ports[k:] + ports[:k]:
            if port not in _taken_ports and port_is_free(port):
                _taken_ports.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _taken_ports.add(port)
    return port


# --------------------------------------------------------------------------
# Processes, through /proc

def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state, ppid,
    ...), or None.  The name may hold blanks and parentheses: split
    after the last ')'."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid):
    """True while pid runs; a zombie counts as gone."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def proc_ppid(pid):
    fields = _stat_fields(pid)
    try:
        return int(fields[1])
    except (TypeError, IndexError, ValueError):
        return None


def proc_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    children = {}
    for pid in all_pids():
        children.setdefault(proc_ppid(pid), []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def is_app(pid):
    return os.path.basename(proc_exe(pid).replace(" (deleted)", "")) == "tfb-fcgi"


def read_pids(path):
    """The pids a pid file names (one, or one per line); [] without it."""
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split() if x.isdigit()]
    except OSError:
        return []


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
        self.port = port or free_port()
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
            self.fcgi_port = free_port()
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
            self.port = free_port()
            if self.fcgi == "tcp" and self.fcgi_picked:
                self.fcgi_port = free_port()
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

    def app_connections(self):
        return int(self.psql("SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = '%s'" % APP_NAME))

    def postmaster_pid(self):
        """The postmaster of the database in use: the parent of a backend
        (the embedded cluster and a local PGHOST alike); None when it
        cannot be read."""
        try:
            return proc_ppid(int(self.psql("SELECT pg_backend_pid()")))
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
                pids = read_pids(os.path.join(d, "run", name))
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
            pids.update(p for p in [root] + descendants(root) if is_app(p))
        if pids:
            return sorted(pids)
        marks = {("VAR=" + d).encode() for d in self.var_dirs()}
        marks.add(("PORT=%d" % self.port).encode())
        return sorted(p for p in all_pids() if is_app(p) and marks & set(proc_environ(p)))
