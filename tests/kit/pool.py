"""pool: tfb-spawn and its workers, run by a test itself.

    w = pool.Worker(path="/plaintext")            # build/tfb-fcgi, or argv=[...]
    with w.start(sock, args=["--read-timeout", "1s"]) as w:  # one alone, --bind sock
        with w.connect() as c: c.get("/plaintext")            # fcgi.Connection

    sp = pool.Spawn(["-w", 2, "--bind", sock, "--", *w.argv], log, env=w.env)
    sp.wait_ready(2)                               # 2 workers, each accepting
    sp.lines(r"worker (\\d+) started")             # its log, searched
"""

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from . import APP_BIN, REPO, SPAWN_BIN, fcgi, proc
from .cmd import wait_exit, wait_for


class Worker:
    """A FastCGI responder: the command (argv, build/tfb-fcgi by default),
    its environment, the path a load asks it for, a name for messages.
    tfb-spawn runs it after "--"; start() runs one alone, bound to an
    address of its own, its log in a temporary directory, and as a
    context manager it is killed on the way out whatever happened."""

    def __init__(self, argv=None, path="/plaintext", env=None, name=None):
        self.argv = [str(a) for a in (argv or [APP_BIN])]
        self.path = path
        self.env = dict(env or {})
        self.name = name or os.path.basename(self.argv[0])
        self.proc = None

    def start(self, bind, args=(), env=None):
        """argv --bind bind ARGS, alone.  A database that is not there
        unless env names one: start-up must not need one."""
        self.tmp = tempfile.TemporaryDirectory(prefix="tfb-test-worker-")
        self.log = os.path.join(self.tmp.name, "log")
        e = dict(os.environ, PGHOST=os.path.join(self.tmp.name, "nopg"),
                 PGCONNECT_TIMEOUT="1")
        e.update(self.env)
        e.update(env or {})
        self.bind = bind
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen(self.argv + ["--bind", bind] + list(args), env=e,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        return self

    def addr(self):
        if "/" in self.bind:
            return self.bind
        host, _, port = self.bind.rpartition(":")
        return (host.strip("[]"), int(port))

    def connect(self, timeout=10):
        """A FastCGI connection, once it accepts (within 5 s)."""
        deadline = time.monotonic() + 5
        while True:
            try:
                return fcgi.connect(self.addr(), timeout)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        return wait_exit(self.proc, timeout)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Spawn:
    """A tfb-spawn seen through its pid and its log file: one run here
    (binary ARGS in cwd, its output into out, by default the log), or one
    found by its pid (pid=, started by something else: spawn-fcgi)."""

    def __init__(self, args=None, log=None, env=None, pid=None, binary=SPAWN_BIN,
                 cwd=REPO, out=None):
        self.log = Path(log)
        self.pid, self.proc, self.logf = pid, None, None
        if args is not None:
            self.logf = open(out or self.log, "ab")
            self.proc = subprocess.Popen([str(binary)] + [str(a) for a in args],
                                         stdin=subprocess.DEVNULL, stdout=self.logf,
                                         stderr=self.logf, env=dict(os.environ, **(env or {})),
                                         cwd=str(cwd))
            self.pid = self.proc.pid

    def text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def lines(self, pattern):
        return re.findall(pattern, self.text(), re.M)

    def workers(self):
        return proc.children(self.pid)

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
        return wait_for(lambda: len(self.workers()) == n and len(self.ready_pids()) == n,
                        timeout)

    def wait_log(self, pattern, timeout=20, count=1):
        return wait_for(lambda: len(self.lines(pattern)) >= count, timeout)

    def signal(self, sig):
        """sig to it; one already gone is the caller's check's business
        (and pid 0, never found, is not our own process group)."""
        try:
            if self.pid and self.pid > 0:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout):
        if self.proc is None:
            return 0 if wait_for(lambda: not proc.alive(self.pid), timeout) else None
        return wait_exit(self.proc, timeout)

    def kill(self):
        if self.pid and proc.alive(self.pid):
            proc.kill_tree(self.pid)
            self.wait_exit(5)
        if self.logf is not None:
            self.logf.close()
