#!/usr/bin/env python3
"""test_stack_run.py: `deploy/stack run` (what `make run` runs) in the
foreground, and what a new user meets before it.

- run serves, and Ctrl-C (SIGINT to its process group, as a terminal
  sends it) stops every part;
- `deploy/stack stop` from elsewhere: run notices, says so, exits 0;
- a part that dies (the front server, the pool, PostgreSQL): run says
  which, stops the rest and exits 1 instead of serving half a stack;
- `make run`: from make to a responder, three launchers (make,
  deploy/stack, tfb-spawn), as a responder's parent chain in /proc says;
- a missing Debian package, as a user who cannot install it: make stops
  before compiling anything, with the one message that names the apt-get
  line.
"""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

READY = "(Ctrl-C stops)"


class Run:
    """deploy/stack run in the background, in a session of its own; with
    via_make, `make run` on the build under test."""

    def __init__(self, st, via_make=False):
        self.st = st
        self.out = tempfile.TemporaryFile(mode="w+")
        cmd = [str(lib.STACK), "run"]
        if via_make:
            cmd = ["make", "--no-print-directory", "B=%s" % lib.BUILD, "run"]
        self.proc = subprocess.Popen(cmd, env=st.env(), cwd=str(lib.REPO),
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        self.out.seek(0)
        return self.out.read()

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in self.output():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def wait_exit(self, timeout):
        return lib.wait_exit(self.proc, timeout)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def pid_in(path):
    try:
        with open(path) as f:
            return int(f.readline().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def parts_gone(tap, st, what, pids):
    """After run exited: no worker, no supervisor, no PostgreSQL of its
    own, the port free."""
    deadline = time.monotonic() + 10
    while True:
        left = [p for p in pids if p and lib.alive(p)]
        free = lib.port_is_free(st.port)
        if (not left and free) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    tap.check(not left and free, "%s: nothing of the stack left running" % what,
              ["alive: %s" % left, "port %d free: %s" % (st.port, free)])


def launcher(pid):
    """A process's program: its comm, or for a shell the script it runs."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
    except OSError:
        return "?"
    if comm in ("bash", "sh", "dash") and len(argv) > 1 and "/" in argv[1]:
        return argv[1]
    return comm


def check_chain(tap, what, st, run):
    """Each responder's parents up to make are tfb-spawn and deploy/stack:
    three launchers, no shell in between."""
    chains = []
    for pid in st.worker_pids():
        chain, p = [], lib.proc_ppid(pid)
        while p and p not in (1, run.proc.pid) and len(chain) < 10:
            chain.append(launcher(p))
            p = lib.proc_ppid(p)
        chains.append((chain, p == run.proc.pid))
    tap.check(len(chains) == 2 and all(c == ["tfb-spawn", "deploy/stack"] and at_make
                                      for c, at_make in chains),
              "%s: each responder's parents are tfb-spawn, deploy/stack, then "
              "make: three launchers" % what,
              ["%s (make reached: %s)" % (" <- ".join(["tfb-fcgi"] + c), m)
               for c, m in chains])


def scenario(tap, what, act, want_rc, want_line, via_make=False):
    """Start run, do act(st, run), then check its exit status, its last
    words and that every part is gone."""
    st = lib.Stack(server="nginx", workers=2, tap=tap, name="run")
    run = Run(st, via_make)
    try:
        if not tap.check(run.wait_ready(), "%s: deploy/stack run serves" % what,
                         lib.tail(run.output(), 20)):
            return
        r = lib.try_get(st.url("/db"))
        tap.check(r.status == 200, "%s: /db answers 200" % what, r.summary())
        if via_make:
            check_chain(tap, what, st, run)
        var = os.path.realpath(st.var)
        pids = st.worker_pids() + [pid_in(os.path.join(var, "run", "spawn.pid")),
                                   pid_in(os.path.join(var, "pg", "data", "postmaster.pid")),
                                   pid_in(os.path.join(var, "run", "nginx.pid"))]
        t0 = time.monotonic()
        act(st, run)
        rc = run.wait_exit(30)
        took = time.monotonic() - t0
        out = run.output()
        tap.check(rc == want_rc and took < 15,
                  "%s: deploy/stack run exits %s within 15 s" % (what, want_rc),
                  ["exit status %s after %.1f s" % (rc, took)] + lib.tail(out, 10))
        if want_line:
            tap.check(want_line in out, "%s: it says %r" % (what, want_line),
                      lib.tail(out, 10))
        parts_gone(tap, st, what, pids)
    finally:
        run.kill()
        st.cleanup()


def ctrl_c(st, run):
    os.killpg(run.proc.pid, signal.SIGINT)


def stop_elsewhere(st, run):
    r = st.run("stop", timeout=60)
    if r.returncode != 0:
        raise lib.StackError("deploy/stack stop: %s" % r.stdout)


def kill_pidfile(rel, sig):
    def act(st, run):
        pid = pid_in(os.path.join(os.path.realpath(st.var), rel))
        if pid is None:
            raise lib.StackError("no pid in %s" % rel)
        os.kill(pid, sig)
    return act


def check_missing_package(tap):
    """As a user who cannot install: a package that is missing stops make
    before the compiler runs, with the apt-get line to type."""
    # It runs make as nobody, through runuser.
    if not tap.root("make as a user, a package missing"):
        return
    work = tempfile.mkdtemp(prefix="tfb-test-deps-")
    try:
        os.makedirs(os.path.join(work, "deploy"))
        shutil.copy(lib.REPO / "Makefile", work)
        shutil.copy(lib.REPO / "deploy" / "deps", os.path.join(work, "deploy"))
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(work):
            for name in [root] + [os.path.join(root, f) for f in dirs + files]:
                os.chown(name, nobody.pw_uid, nobody.pw_gid)
        pkg = "tfb-fcgi-no-such-package"
        env = dict(os.environ, EXTRA_PKGS=pkg, HOME=work)
        r = lib.run(["runuser", "-u", "nobody", "--", "make", "-C", work], 60, env=env)
        line = "apt-get update && apt-get install -y --no-install-recommends %s" % pkg
        tap.check(r.returncode not in (0, None) and line in r.stdout
                  and "missing Debian packages: %s" % pkg in r.stdout,
                  "make as a user, a package missing: stops with the apt-get line",
                  r.stdout)
        tap.check(" CC " not in r.stdout and "error:" not in r.stdout,
                  "make as a user, a package missing: the compiler never ran", r.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def body(tap):
    if not lib.preflight(tap):
        return
    scenario(tap, "Ctrl-C", ctrl_c, 0, None)
    scenario(tap, "stop from elsewhere", stop_elsewhere, 0, "stopped from elsewhere")
    scenario(tap, "make run", stop_elsewhere, 0, "stopped from elsewhere", via_make=True)
    scenario(tap, "nginx killed", kill_pidfile("run/nginx.pid", signal.SIGKILL), 1,
             "nginx is gone; stopping the rest")
    scenario(tap, "tfb-spawn killed", kill_pidfile("run/spawn.pid", signal.SIGKILL), 1,
             "the pool (tfb-spawn) is gone; stopping the rest")
    scenario(tap, "PostgreSQL stopped", kill_pidfile("pg/data/postmaster.pid", signal.SIGINT),
             1, "PostgreSQL is gone; stopping the rest")
    check_missing_package(tap)


if __name__ == "__main__":
    lib.main(body, deadline=400)
