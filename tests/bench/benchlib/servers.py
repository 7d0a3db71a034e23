"""servers: the stack under test (through deploy/stack) and the anchors.

Stack drives deploy/stack's parts: PostgreSQL is started once for the
whole sweep, the pool and the front server are restarted for every
configuration.  The anchor servers (nginx answering by itself, lighttpd
serving a static file) are started here from tests/bench/anchors/*.conf.in
on the same port as the front server, which is stopped meanwhile.

Every process is found through a pid file under $VAR/run, never by name:
other people's pools and servers may run on the same machine.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import procstat

REPO = Path(__file__).resolve().parents[3]
STACK = REPO / "deploy" / "stack"
ANCHORS = Path(__file__).resolve().parent.parent / "anchors"
PLAINTEXT = b"Hello, World!"


class StartError(Exception):
    pass


class _Critical:
    """A section a signal must not cut short (a deploy/stack start or
    stop: killed half-way, it could leave a process with no pid file).
    The runner's signal handler looks at depth and, when inside, only
    notes the signal in pending; leaving the outermost section raises
    KeyboardInterrupt then."""

    def __init__(self):
        self.depth = 0
        self.pending = None

    def __enter__(self):
        self.depth += 1

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0 and self.pending is not None:
            self.pending = None
            if exc[0] is None:
                raise KeyboardInterrupt


CRITICAL = _Critical()


def port_taken(port, host="127.0.0.1"):
    """Does something listen on host:port (or refuse to let us bind)?"""
    s = socket.socket()
    try:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    finally:
        s.close()
    s = socket.socket()
    try:
        # As the servers do: a TIME-WAIT connection that happens to use
        # the port on its local side does not stop them from listening.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except OSError:
        return True
    finally:
        s.close()
    return False


def read_pids(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split() if x.isdigit()]
    except OSError:
        return []


def is_root():
    return os.geteuid() == 0


class Stack:
    def __init__(self, var, port, fcgi_port, keepalive=0, log=print):
        self.var_arg = str(var)
        self.port = port
        self.fcgi_port = fcgi_port
        self.keepalive = keepalive
        self.log = log
        self.var = None        # resolved once PostgreSQL runs
        self.pg_started = False
        self.anchor = None     # (name, pidfile) of a running anchor server
        self.front_kind = None

    # --- deploy/stack -------------------------------------------------

    def _env(self, **kw):
        env = dict(os.environ)
        env.update(VAR=self.var_arg, PORT=str(self.port),
                   FCGI_PORT=str(self.fcgi_port),
                   KEEPALIVE=str(self.keepalive))
        env.update({k: str(v) for k, v in kw.items()})
        return env

    def _stack(self, *args, check=True, **kw):
        # Its own session: a Ctrl-C on the terminal reaches only us, and
        # we let the stack command finish first.
        with CRITICAL:
            p = subprocess.run([str(STACK), *args], env=self._env(**kw),
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, start_new_session=True)
        if check and p.returncode != 0:
            raise StartError(f"deploy/stack {' '.join(args)} failed "
                             f"({p.returncode}): {(p.stderr or p.stdout).strip()[-600:]}")
        return p

    def pg_start(self):
        self._stack("pg", "start")
        self.pg_started = True
        self.var = os.path.realpath(self.var_arg)
        self.pgenv = {}
        for line in self._stack("env").stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                self.pgenv[k] = v.strip("'\"")

    def psql(self, sql):
        return self._stack("psql", "-X", "-At", "-c", sql).stdout.strip()

    def postmaster_pid(self):
        """The postmaster of the database in use: the parent of a backend
        (works for the embedded cluster and for a local PGHOST alike)."""
        try:
            backend = int(self.psql("SELECT pg_backend_pid()"))
        except (StartError, ValueError):
            return None
        st = procstat.read_stat(backend)
        return st[0] if st else None

    def start_config(self, server, sock, workers, db_mode):
        """Run this configuration: restart the pool, and the front server
        too unless the running one already has this front and socket (it
        finds the new pool at the same socket path or port)."""
        env = dict(SERVER=server, FCGI=sock, WORKERS=workers,
                   APP_ARGS="" if db_mode == "persistent" else f"--db-mode {db_mode}")
        if self.front_kind != (server, sock):
            self._stack("front", "stop", check=False)
            self.front_kind = None
        self._stack("pool", "stop", check=False)
        self._stack("pool", "start", **env)
        if self.front_kind is None:
            try:
                self._stack("front", "start", **env)
            except StartError:
                self._stack("pool", "stop", check=False)
                raise
            self.front_kind = (server, sock)

    def stop_config(self):
        """Stop the pool and the front server."""
        self._stack("front", "stop", check=False)
        self._stack("pool", "stop", check=False)
        self.front_kind = None

    def stop_all(self):
        self.stop_anchor()
        if self.var is None and not os.path.exists(self.var_arg):
            return
        self._stack("stop", check=False)

    # --- pids -----------------------------------------------------------

    def pool_pids(self):
        """What the pool's pid file names: the supervisor (build/tfb-spawn,
        run/spawn.pid), or, for a plain spawn-fcgi pool, one pid per
        responder (run/pool.pid, the older name)."""
        for name in ("spawn.pid", "pool.pid"):
            pids = read_pids(os.path.join(self.var, "run", name))
            if pids:
                return pids
        return []

    def worker_pids(self):
        """The responders: the supervisor's children, or the pids
        themselves when nothing supervises them."""
        roots = self.pool_pids()
        kids = procstat.children_map()
        out = []
        for pid in roots:
            out += kids.get(pid, []) or [pid]
        return out

    def front_pids(self):
        """The front server's master (or only) process; its workers are
        found as descendants."""
        if self.anchor:
            return read_pids(self.anchor[1])
        for name in ("nginx.pid", "lighttpd.pid"):
            pids = read_pids(os.path.join(self.var, "run", name))
            if pids:
                return pids
        return []

    # --- anchors --------------------------------------------------------

    def _render(self, template, out, values):
        text = (ANCHORS / template).read_text()
        for k, v in values.items():
            text = text.replace(f"@{k}@", v)
        Path(out).write_text(text)

    def start_anchor(self, name, paths):
        """name: nginx-alone or lighttpd-alone, on self.port."""
        if port_taken(self.port):
            raise StartError(f"port {self.port} is taken")
        var = self.var
        conf = os.path.join(var, "conf", f"bench-{name}.conf")
        pidfile = os.path.join(var, "run", f"bench-{name}.pid")
        if name == "nginx-alone":
            os.makedirs(os.path.join(var, "tmp", "nginx"), exist_ok=True)
            self._render("nginx-alone.conf.in", conf, {
                "VAR": var, "LISTEN": "127.0.0.1", "PORT": str(self.port),
                "USER_LINE": "user www-data www-data;" if is_root()
                else "# not root: no user switch"})
            argv = ["/usr/sbin/nginx", "-p", var + "/", "-c", conf,
                    "-e", os.path.join(var, "log", "bench-nginx-alone.error.log")]
        elif name == "lighttpd-alone":
            docroot = os.path.join(var, "www", "bench")
            os.makedirs(docroot, exist_ok=True)
            os.chmod(docroot, 0o755)
            for p in paths:
                f = os.path.join(docroot, p.split("?")[0].strip("/") or "index")
                with open(f, "wb") as fh:
                    fh.write(PLAINTEXT)
                os.chmod(f, 0o644)
            self._render("lighttpd-alone.conf.in", conf, {
                "VAR": var, "LISTEN": "127.0.0.1", "PORT": str(self.port),
                "DOCROOT": docroot,
                "USER_LINES": 'server.username = "www-data"\n'
                              'server.groupname = "www-data"' if is_root()
                else "# not root: no user switch"})
            # lighttpd opens its error log after dropping to www-data.
            errlog = os.path.join(var, "log", "bench-lighttpd-alone.error.log")
            Path(errlog).touch()
            if is_root():
                shutil.chown(errlog, "www-data", "www-data")
            argv = ["/usr/sbin/lighttpd", "-f", conf]
        else:
            raise ValueError(name)
        with CRITICAL:
            p = subprocess.run(argv, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, start_new_session=True)
            if p.returncode == 0:
                self.anchor = (name, pidfile)
        if p.returncode != 0:
            raise StartError(f"{name} did not start: {(p.stderr or p.stdout).strip()[-400:]}")
        # Wait until it answers and its pid file is written.
        for _ in range(100):
            if read_pids(pidfile) and http_get(self.port, paths[0]) is not None:
                return
            time.sleep(0.05)
        raise StartError(f"{name} does not answer on port {self.port}")

    def stop_anchor(self):
        if not self.anchor:
            return
        name, pidfile = self.anchor
        for pid in read_pids(pidfile):
            try:
                os.kill(pid, 15)
            except OSError:
                continue
            for _ in range(200):
                if not procstat.alive(pid):
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        try:
            os.unlink(pidfile)
        except OSError:
            pass
        self.anchor = None


def http_get(port, path, host="127.0.0.1", timeout=5):
    """(status, body) of one HTTP/1.0 GET, or None if nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None
    return status, body
