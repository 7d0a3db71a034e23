"""front: nginx or lighttpd rendered from the shipped templates, for what
deploy/stack does not start itself.

deploy/stack starts the stack's front server (tests drive it through
stack.Stack).  Two front servers of the tests are no stack's: the bench's
anchors (nginx answering by itself, lighttpd serving a static file) and
lighttpd spawning the workers itself (pool_deploy.py).  Each is the
shipped configuration, deploy/SERVER/SERVER.conf.in (the settings every
front server of the project shares), including a part of its own
rendered from a template beside it, exactly as deploy/lib/front.sh
renders the stack's:

    f = front.Front("nginx", var, "tests/bench/anchors/nginx-alone.conf.in", port)
    f.start()          # rendered into var/conf, daemonized, answering
    f.stop()           # through its pid file
"""

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
from pathlib import Path

from . import REPO, proc, web
from .cmd import tail, wait_for
from .stack import StackError

FRONT_USER = "www-data"  # as deploy/stack: whom the servers drop to as root


class StartError(StackError):
    """The server did not start: a StackError, so that a caller takes both
    with one except clause (either way, nothing to measure)."""


def render(template, out, values):
    """template with each @NAME@ replaced by values[NAME], written to out;
    ValueError when a placeholder has no value."""
    text = Path(template).read_text()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.search(r"@[A-Z_]+@", text)
    if left:
        raise ValueError("%s: no value for %s" % (template, left.group(0)))
    Path(out).write_text(text if text.endswith("\n") else text + "\n")


def limits():
    """(descriptors, connections) as deploy/lib/front.sh gives them: two
    descriptors per client plus slack, within the hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if hard == resource.RLIM_INFINITY or hard >= 65536 else hard
    return nofile, min(nofile // 2, 16384)


class Front:
    """server (nginx or lighttpd) on listen:port with its files under var
    (made here: conf, run, log, tmp, www), serving what the template site
    says; values fill the site's own placeholders (and may replace the
    user lines).  As root it drops to www-data, as deploy/stack's does."""

    def __init__(self, server, var, site, port, listen="127.0.0.1", **values):
        if server not in ("nginx", "lighttpd"):
            raise ValueError("server %r: want nginx or lighttpd" % server)
        self.server, self.var, self.port = server, str(var), port
        nofile, conns = limits()
        root = os.geteuid() == 0
        self.values = {
            "VAR": self.var, "LISTEN": listen, "PORT": port, "NOFILE": nofile,
            "WORKER_CONNECTIONS": conns, "MAX_CONNECTIONS": conns,
            "SITE": self.path("conf", "%s-site.conf" % server),
            "FASTCGI": self.path("conf", "fastcgi.conf"),
            "USER_LINE": "user %s %s;" % (FRONT_USER, FRONT_USER) if root
            else "# not root: no user switch",
            "USER_LINES": 'server.username = "%s"\nserver.groupname = "%s"'
            % (FRONT_USER, FRONT_USER) if root else "# not root: no user switch"}
        self.values.update(values)
        self.site = site
        self.pidfile = self.path("run", "%s.pid" % server)
        self.errlog = self.path("log", "%s.error.log" % server)

    def path(self, *parts):
        return os.path.join(self.var, *parts)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _configure(self):
        for d in ("conf", "run", "log", "www", "tmp/" + self.server):
            os.makedirs(self.path(d), exist_ok=True)
        conf = self.path("conf", "%s.conf" % self.server)
        render(REPO / "deploy" / self.server / ("%s.conf.in" % self.server), conf, self.values)
        render(self.site, self.values["SITE"], self.values)
        if self.server == "nginx":
            shutil.copy(REPO / "deploy" / "nginx" / "fastcgi.conf", self.values["FASTCGI"])
            return ["/usr/sbin/nginx", "-p", self.var + "/", "-c", conf, "-e", self.errlog]
        # lighttpd opens its error log after dropping to www-data.
        Path(self.errlog).touch()
        if os.geteuid() == 0 and "server.username" in self.values["USER_LINES"]:
            shutil.chown(self.errlog, FRONT_USER, FRONT_USER)
            shutil.chown(self.path("tmp", "lighttpd"), FRONT_USER, FRONT_USER)
        return ["/usr/sbin/lighttpd", "-f", conf]

    def start(self, guard=None):
        """Render, start (the server daemonizes), and return once it
        answers HTTP and its pid file is written.  guard: a context
        manager the start runs in (the bench's section a signal must not
        cut); raises StartError."""
        if not web.port_is_free(self.port):
            raise StartError("port %d is taken" % self.port)
        argv = self._configure()
        with guard or contextlib.nullcontext():
            p = subprocess.run(argv, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        if p.returncode != 0:
            raise StartError("%s did not start: %s" % (
                self.server, " | ".join(tail(p.stderr or p.stdout, 6))))
        if not wait_for(lambda: self.pids() and web.try_get(self.url("/plaintext"), timeout=2)
                        .status is not None, 10, 0.05):
            raise StartError("%s does not answer on port %d: %s" % (
                self.server, self.port, " | ".join(self.log_tail(6))))

    def pids(self):
        """The master (or only) process, from the pid file."""
        return proc.read_pids(self.pidfile)

    def log_tail(self, n=10):
        try:
            return tail(Path(self.errlog).read_text(errors="replace"), n)
        except OSError:
            return []

    def stop(self):
        """SIGTERM (both stop at once on it), SIGKILL after 10 s."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                continue
            if not wait_for(lambda: not proc.alive(pid), 10, 0.05):
                proc.kill_tree(pid)
        with contextlib.suppress(OSError):
            os.unlink(self.pidfile)

    kill = stop  # what a scene.Scene that owns it calls at its end
