"""servers: the anchor servers, and the sections a signal must not cut.

The stack under test (PostgreSQL, the pool, the front server) is
deploy/stack's, driven through tests/stack.py.  The anchors are servers
deploy/stack does not know: nginx answering by itself and lighttpd
serving a static file, started here from tests/bench/anchors/*.conf.in on
the front server's port (the runner stops the front server first).

Every process is found through a pid file under $VAR/run, never by name:
other people's pools and servers may run on the same machine.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import stack

ANCHORS = Path(__file__).resolve().parent.parent / "anchors"
PLAINTEXT = b"Hello, World!"


class StartError(stack.StackError):
    """An anchor did not start.  A StackError, so that the runner takes
    both with one except clause: either way, nothing to measure."""


class _Critical:
    """A section a signal must not cut short (a deploy/stack start or
    stop, an anchor's start: killed half-way, it could leave a process
    with no pid file).  The runner's signal handler looks at depth and,
    when inside, only notes the signal in pending; leaving the outermost
    section raises KeyboardInterrupt then."""

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


def is_root():
    return os.geteuid() == 0


class Anchor:
    """One anchor server at a time, on port, with its files under var
    (the stack's state directory, resolved: as root the servers' users
    must reach it)."""

    def __init__(self, var, port):
        self.var = var
        self.port = port
        self.running = None  # (name, pid file) of the running anchor

    def pids(self):
        """The running anchor's master (or only) process."""
        return stack.read_pids(self.running[1]) if self.running else []

    def _render(self, template, out, values):
        text = (ANCHORS / template).read_text()
        for k, v in values.items():
            text = text.replace(f"@{k}@", v)
        Path(out).write_text(text)

    def start(self, name, paths):
        """name: nginx-alone or lighttpd-alone; paths: what it must
        answer (lighttpd gets a file for each)."""
        if not stack.port_is_free(self.port):
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
                self.running = (name, pidfile)
        if p.returncode != 0:
            raise StartError(f"{name} did not start: {(p.stderr or p.stdout).strip()[-400:]}")
        # Wait until it answers and its pid file is written.
        for _ in range(100):
            if stack.read_pids(pidfile) and http_get(self.port, paths[0]) is not None:
                return
            time.sleep(0.05)
        raise StartError(f"{name} does not answer on port {self.port}")

    def stop(self):
        if not self.running:
            return
        name, pidfile = self.running
        for pid in stack.read_pids(pidfile):
            try:
                os.kill(pid, 15)
            except OSError:
                continue
            for _ in range(200):
                if not stack.alive(pid):
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
        self.running = None


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
