"""poolkit.py: what the pool_*.py tests share, on top of lib.py.

    with poolkit.Scene(tap, "kill") as sc:
        fake = sc.fake_worker()                  # tests/spawn/supervisor/fake_worker.c
        sp = sc.spawn(["-w", "2", "--", fake])   # tfb-spawn on sc.sock
        ng = sc.nginx()                          # nginx in front, on a port
        load = sc.wrk(ng.url("/plaintext"), seconds=5)
        ...
        res = load.result()                      # requests, failures

A Scene owns a temp dir and every process started through it, and on
exit kills whatever is left (supervisor trees included) and removes the
dir, unless a check failed or TFB_TEST_KEEP is set.  Every wait has a
timeout.  The binaries come from TFB_BUILD_DIR (default <repo>/build).

Python standard library only.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import lib

REPO = lib.REPO
BUILD = lib.BUILD
SPAWN_BIN = BUILD / "tfb-spawn"
APP_BIN = BUILD / "tfb-fcgi"
STACK = lib.STACK

wait_for = lib.wait_for


def children(pid):
    """Live (not zombie) direct children of pid."""
    return sorted(p for p in lib.all_pids()
                  if lib.proc_ppid(p) == pid and lib.alive(p))


def kill_tree(pid, sig=signal.SIGKILL):
    for p in [pid] + lib.descendants(pid):
        try:
            os.kill(p, sig)
        except OSError:
            pass


class SpawnLog:
    """A running tfb-spawn seen through its pid and its log file."""

    def __init__(self, log, pid):
        self.log = Path(log)
        self.pid = pid

    def text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def lines(self, pattern):
        return re.findall(pattern, self.text(), re.M)

    def workers(self):
        return children(self.pid)

    def ready_pids(self):
        """Workers the supervisor saw accepting (needs --log-level debug)."""
        seen = set(int(p) for p in self.lines(r"worker (\d+) \(slot \d+\) accepting"))
        return sorted(p for p in self.workers() if p in seen)

    def replaced(self, victim, n):
        """True once n workers accept and the victim is not one of them.
        One reading of the pool: a victim killed a moment ago may still be
        alive in a first reading and dead in a second."""
        ready = self.ready_pids()
        return len(ready) == n and victim not in ready

    def wait_ready(self, n, timeout=20):
        """Wait until exactly n workers run and all of them accept."""
        return wait_for(lambda: len(self.workers()) == n
                        and len(self.ready_pids()) == n, timeout)

    def wait_log(self, pattern, timeout=20, count=1):
        return wait_for(lambda: len(self.lines(pattern)) >= count, timeout)


class Spawn(SpawnLog):
    """tfb-spawn run by the test, logging to a file."""

    def __init__(self, scene, args, env=None, log=None, stdin=None):
        super().__init__(log or scene.path("spawn.log"), None)
        e = dict(os.environ)
        e.update(env or {})
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(SPAWN_BIN)] + [str(a) for a in args],
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=self.logf, stderr=self.logf, env=e, cwd=str(REPO))
        self.pid = self.proc.pid

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        return lib.wait_exit(self.proc, timeout)

    def kill(self):
        if self.proc.poll() is None:
            kill_tree(self.pid)
            self.wait_exit(5)
        self.logf.close()


class Nginx:
    """nginx on 127.0.0.1:port in front of one FastCGI upstream."""

    def __init__(self, scene, upstream, port=None):
        self.scene = scene
        self.port = port or lib.free_port()
        d = scene.path("nginx")
        os.makedirs(d, exist_ok=True)
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = NGINX_CONF % dict(user=user, dir=d, upstream=upstream,
                                 port=self.port)
        Path(d, "nginx.conf").write_text(conf)
        self.err = Path(d, "error.log")
        self.proc = subprocess.Popen(
            ["nginx", "-p", d + "/", "-c", d + "/nginx.conf", "-e", str(self.err)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        if not wait_for(lambda: not lib.port_is_free(self.port)
                        or self.proc.poll() is not None, 10):
            raise RuntimeError("nginx did not listen on %d" % self.port)
        if self.proc.poll() is not None:
            raise RuntimeError("nginx exited: %s" % self.err.read_text(errors="replace")[-500:])

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_tree(self.proc.pid)
                self.proc.wait(timeout=5)


# nginx as a test needs it: one worker, no disk writes outside dir, one
# FastCGI connection per request (a kept connection would pin a worker).
NGINX_CONF = """
%(user)s
daemon off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    fastcgi_temp_path %(dir)s/fastcgi;
    proxy_temp_path %(dir)s/proxy;
    scgi_temp_path %(dir)s/scgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    keepalive_requests 100000;
    upstream pool { server %(upstream)s; }
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location / {
            fastcgi_pass pool;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
        }
    }
}
"""


class Wrk:
    """wrk in the background; result() waits for it and counts failures:
    non-2xx/3xx responses plus socket errors of any kind."""

    def __init__(self, url, seconds, connections=16, timeout="5s"):
        self.seconds = seconds
        self.proc = subprocess.Popen(
            ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
             "--timeout", timeout, url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.started = time.monotonic()

    def result(self):
        try:
            out, _ = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return parse_wrk(out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def parse_wrk(out):
    r = {"out": out, "requests": 0, "non2xx": 0, "errors": 0}
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    r["failures"] = r["non2xx"] + r["errors"]
    r["summary"] = "%d requests, %d non-2xx, %d socket errors" % (
        r["requests"], r["non2xx"], r["errors"])
    return r


class Scene:
    """A temp dir and the processes of one scenario; see the module doc."""

    def __init__(self, tap, name):
        self.tap = tap
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="tfb-pool-%s-" % name, dir="/tmp")
        # Workers dropped to another user must reach their binary.
        os.chmod(self.dir, 0o755)
        self.sock = self.path("fcgi.sock")
        self.spawns, self.nginxes, self.wrks, self.procs = [], [], [], []
        self.failed_before = tap.failed

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def fake_worker(self):
        """The scripted worker, built by make test beside the build under
        test (a sanitizer build's with its sanitizers)."""
        out = BUILD / "tests" / "spawn" / "supervisor" / "fake_worker"
        if not out.exists():
            raise RuntimeError("%s not found: make test builds it" % out)
        return str(out)

    def spawn(self, args, **kw):
        s = Spawn(self, args, **kw)
        self.spawns.append(s)
        return s

    def nginx(self, upstream=None):
        n = Nginx(self, upstream or "unix:" + self.sock)
        self.nginxes.append(n)
        return n

    def wrk(self, url, seconds, **kw):
        w = Wrk(url, seconds, **kw)
        self.wrks.append(w)
        return w

    def popen(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in argv], **kw)
        self.procs.append(p)
        return p

    def note_logs(self):
        for s in self.spawns:
            self.tap.note("--- %s (end)" % s.log, *lib.tail(s.text(), 25))
        for n in self.nginxes:
            try:
                self.tap.note("--- %s (end)" % n.err,
                              *lib.tail(n.err.read_text(errors="replace"), 10))
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # A sanitizer build (make SANITIZE=...) reports into the log.
        for s in self.spawns:
            m = re.search(r"ERROR: \w+Sanitizer.*|runtime error:.*", s.text())
            if m:
                self.tap.fail("%s: no sanitizer report" % self.name, m.group(0))
        failed = exc_type is not None or self.tap.failed > self.failed_before
        if failed:
            self.note_logs()
        for w in self.wrks:
            w.kill()
        for n in self.nginxes:
            n.stop()
        for s in self.spawns:
            s.kill()
        for p in self.procs:
            if p.poll() is None:
                kill_tree(p.pid)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if failed or os.environ.get("TFB_TEST_KEEP"):
            self.tap.note("kept %s for inspection" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


class Database:
    """PostgreSQL for the real worker: the one PGHOST names when it is set
    (nothing started), else deploy/stack's embedded cluster in a VAR of
    its own (deploy/stack pg start ... stop, through lib.Stack)."""

    def __init__(self, tap):
        self.tap = tap
        self.external = bool(os.environ.get("PGHOST"))
        self.stack = None

    def start(self):
        if self.external:
            self.pg = {k: v for k, v in os.environ.items() if k.startswith("PG")}
            return self
        self.stack = lib.Stack(name="pool-pg", tap=self.tap)
        self.stack.call("pg", "start", timeout=lib.Stack.START_TIMEOUT)
        self.pg = self.stack.pg_env()
        if "PGHOST" not in self.pg:
            raise lib.StackError("deploy/stack env named no PGHOST")
        return self

    def psql(self, sql):
        r = lib.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                    60, env=dict(os.environ, **self.pg))
        if r.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, r.stdout))
        return r.stdout.strip()

    def app_connections(self):
        return int(self.psql("SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = '%s'" % lib.APP_NAME))

    def stop(self):
        if self.stack is not None:
            self.stack.cleanup()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False
