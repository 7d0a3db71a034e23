"""subjects: what the experiment compares, and how each one runs.

    tfb-fcgi               this project's pool (deploy/stack: tfb-spawn,
                           tfb-fcgi workers, nginx over a unix socket,
                           keepalive 32), one persistent connection per worker
    tfb-fcgi-per-request   the same with --db-mode per-request
    flask                  the article's fix: Flask under gunicorn's sync
                           workers, one persistent psycopg2 connection each
    flask-per-request      Flask as TechEmpower had it: a connection opened
                           and closed around every request
    fastapi                FastAPI as TechEmpower runs it: gunicorn with
                           uvicorn's workers, an asyncpg pool per process

The Python subjects are tests/bench/subjects/*.py on Debian's
/usr/bin/python3 (their packages are Debian's: deploy/deps bench), each
behind the same nginx as the pool (deploy/nginx/nginx.conf.in, with
subjects/nginx-proxy.conf.in instead of the pool's part), which proxies
HTTP to gunicorn on a unix socket.  Every subject answers on the same
port, one at a time: Runner.start() stops the one before.

Before a subject's numbers count it passes the checks ours passes: the
TechEmpower verifier replica's checks of each route it is measured on
(tests/kit/verify.py, one request each, no database counts), once per
run; and every measured point must be free of errors.
"""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ...kit import proc, verify, web
from ...kit.cmd import tail, wait_for
from ...kit.front import Front
from ...kit.stack import StackError

HERE = Path(__file__).resolve().parent.parent / "subjects"
PYTHON = "/usr/bin/python3"
# The connections the Python subjects may hold in all, of the server's
# max_connections (deploy/stack's 256): room for ours and for psql.
SUBJECT_CONNECTIONS = 200


@dataclass(frozen=True)
class Subject:
    key: str
    label: str       # for tables and legends
    color: str       # the same in every chart
    kind: str        # pool | sync | asgi
    db_mode: str     # persistent | per-request

    @property
    def ours(self):
        return self.kind == "pool"


SUBJECTS = {s.key: s for s in (
    Subject("tfb-fcgi", "tfb-fcgi (this pool, C)", "#1f4e9c", "pool", "persistent"),
    Subject("flask", "Flask, persistent connection (the article's fix)", "#e8850c",
            "sync", "persistent"),
    Subject("fastapi", "FastAPI, asyncpg pool", "#2e9e44", "asgi", "persistent"),
    Subject("flask-per-request", "Flask, a connection per request (TechEmpower's)",
            "#c8322d", "sync", "per-request"),
    Subject("tfb-fcgi-per-request", "tfb-fcgi --db-mode per-request", "#7b4fa6",
            "pool", "per-request"),
)}
ORDER = list(SUBJECTS)


def parse_subjects(text):
    out = []
    for part in [x for x in text.replace(" ", ",").split(",") if x]:
        if part not in SUBJECTS:
            raise ValueError("subject %r: want %s" % (part, ", ".join(SUBJECTS)))
        out.append(part)
    if not out:
        raise ValueError("--subjects: empty list")
    return sorted(dict.fromkeys(out), key=ORDER.index)


def pool_size(workers):
    """The asyncpg pool of each FastAPI process: its share of
    SUBJECT_CONNECTIONS, at most TechEmpower's 160 (fastapi_app.py)."""
    return max(1, min(160, SUBJECT_CONNECTIONS // workers))


class Gunicorn:
    """gunicorn serving a Python subject on a unix socket, its files under
    var; start() returns once W workers run and one answers."""

    def __init__(self, var):
        self.var = str(var)
        os.makedirs(self.var, exist_ok=True)
        os.chmod(self.var, 0o755)  # nginx's www-data reaches the socket
        self.sock = os.path.join(self.var, "app.sock")
        self.pidfile = os.path.join(self.var, "gunicorn.pid")
        self.log = os.path.join(self.var, "gunicorn.log")
        self.proc = None

    def argv(self, subject, workers):
        module = "fastapi_app:app" if subject.kind == "asgi" else "flask_app:app"
        worker = "uvicorn.workers.UvicornWorker" if subject.kind == "asgi" else "sync"
        # --preload: the application is imported once, before the fork, so
        # that 64 workers start in about 4 s here; each opens its connections
        # after the fork (psycopg2 lazily, asyncpg in the startup event).
        return [PYTHON, "-m", "gunicorn", "--chdir", str(HERE), "--workers", str(workers),
                "--worker-class", worker, "--bind", "unix:" + self.sock,
                "--backlog", "4096", "--pid", self.pidfile, "--error-logfile", self.log,
                "--log-level", "warning", "--preload", "--graceful-timeout", "5",
                "--timeout", "60", "--keep-alive", "120", module]

    def start(self, subject, workers, pgenv, timeout=60):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PG", "TFB_", "PYTHON"))}
        env.update(pgenv, PGAPPNAME="tfb-subject", PYTHONDONTWRITEBYTECODE="1",
                   TFB_SUBJECT_DB=subject.db_mode, TFB_SUBJECT_POOL=str(pool_size(workers)))
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.argv(subject, workers), env=env, cwd=str(HERE),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            if len(self.workers()) == workers and self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise StackError("gunicorn (%s, %d workers) did not start: %s"
                         % (subject.key, workers, " | ".join(self.log_tail())))

    def answers(self):
        """Whether a worker answers /plaintext on the socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(self.sock)
                s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n"
                          b"Connection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200 ")
        except OSError:
            return False

    def pids(self):
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def workers(self):
        return [p for p in proc.children(self.proc.pid)] if self.pids() else []

    def log_tail(self, n=6):
        try:
            return tail(Path(self.log).read_text(errors="replace"), n)
        except OSError:
            return []

    def stop(self):
        """SIGKILL to the master, then to its workers: nothing is in flight
        by then (the sweep drained it), and gunicorn's own shutdown,
        quick or graceful, takes 64 workers over 5 s, every pool start."""
        if self.proc is None:
            return
        pids = [self.proc.pid] + proc.descendants(self.proc.pid)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        wait_for(lambda: not any(proc.alive(p) for p in pids), 5)
        self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)


class Runner:
    """One subject at a time on one port: this project's stack (a
    tests/kit/stack.Stack whose VAR, port and PG* the caller set) or a
    Python subject behind nginx.  start() stops whatever ran before it;
    stop() stops everything.  guard: the section a signal must not cut."""

    def __init__(self, stack, var, port, guard):
        self.stack, self.port, self.guard = stack, port, guard
        self.gunicorn = Gunicorn(os.path.join(var, "gunicorn"))
        self.front = Front("nginx", os.path.join(var, "front"),
                           HERE / "nginx-proxy.conf.in", port, SOCK=self.gunicorn.sock)
        self.front_up = None    # "stack" | "proxy" | None
        self.subject = None
        self.workers = 0

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self, subject, workers, pgenv):
        """subject with workers processes, reaching PostgreSQL with pgenv,
        answering on the port.  Raises StackError."""
        st = self.stack
        want = "stack" if subject.ours else "proxy"
        if self.front_up and self.front_up != want:
            self.stop_front()
        st.run("pool", "stop", timeout=st.STOP_TIMEOUT)
        self.gunicorn.stop()
        self.subject, self.workers = subject, workers
        if subject.ours:
            # 0 is experiment.AUTO: the pool sizes itself.
            st.workers = "auto" if workers == 0 else workers
            st.app_args = "--db-mode per-request" if subject.db_mode == "per-request" else ""
            st.extra_env.update(pgenv)
            st.call("pool", "start", timeout=st.START_TIMEOUT)
            if not self.front_up:
                st.call("front", "start", timeout=st.START_TIMEOUT)
        else:
            with self.guard:
                self.gunicorn.start(subject, workers, pgenv)
            if not self.front_up:
                self.front.start(guard=self.guard)
        self.front_up = want

    def stop_front(self):
        if self.front_up == "stack":
            self.stack.run("front", "stop", timeout=self.stack.STOP_TIMEOUT)
        elif self.front_up == "proxy":
            self.front.stop()
        self.front_up = None

    def stop(self):
        """Everything: the front server, the pool, gunicorn."""
        self.stop_front()
        self.stack.run("pool", "stop", timeout=self.stack.STOP_TIMEOUT)
        self.stack.run("front", "stop", timeout=self.stack.STOP_TIMEOUT)
        self.front.stop()
        self.gunicorn.stop()
        self.subject = None

    # -- what runs

    def app_pids(self):
        """The subject's processes' roots: the supervisor, gunicorn's
        master (the sampler adds their descendants)."""
        if self.subject is None:
            return []
        return self.stack.pool_pids() if self.subject.ours else self.gunicorn.pids()

    def worker_pids(self):
        if self.subject is None:
            return []
        return self.stack.worker_pids() if self.subject.ours else self.gunicorn.workers()

    def front_pids(self):
        if self.front_up == "stack":
            return self.stack.front_pids()
        return self.front.pids() if self.front_up == "proxy" else []

    def check(self, routes):
        """The verifier replica's checks of routes (experiment.Route) on
        the running subject: [(check name, [problem...])], the failed
        ones only (a WARN counts, as in the project's tests)."""
        v = verify.Verifier(self.url(""))
        by_name = {"db": v.verify_db, "json": v.verify_json, "fortunes": v.verify_fortune,
                   "plaintext": v.verify_plaintext,
                   "queries": lambda: v.verify_query("/queries?queries="),
                   "updates": lambda: v.verify_update("/updates?queries=")}
        bad = []
        for r in routes:
            for name, problems in by_name[r.name]():
                problems = [p for p in problems if p[0] != "pass"]
                if problems:
                    bad.append((name, ["%s: %s" % (p[0], p[1]) for p in problems]))
        return bad

    def alive(self):
        """How many of the subject's workers still run."""
        return sum(1 for p in self.worker_pids() if proc.alive(p))


def answers_200(url, timeout=10):
    return web.try_get(url, timeout=timeout).status == 200
