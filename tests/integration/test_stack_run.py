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
import tempfile
import time

from ..kit import APP_BIN, BUILD, REPO, STACK, proc, stack, web
from ..kit.cmd import Job, run, tail, wait_for
from ..kit.tap import main

READY = "(Ctrl-C stops)"


def pid_in(path):
    pids = proc.read_pids(path)
    return pids[0] if pids else None


def launcher(pid):
    """A process's program: its comm, or for a shell the script it runs."""
    argv, comm = proc.cmdline(pid), proc.comm(pid) or "?"
    if comm in ("bash", "sh", "dash") and len(argv) > 1 and "/" in argv[1]:
        return argv[1]
    return comm


def check_chain(tap, what, st, job):
    """Each responder's parents up to make are tfb-spawn and deploy/stack:
    three launchers, no shell in between."""
    chains = []
    for pid in st.worker_pids():
        chain, p = [], proc.ppid(pid)
        while p and p not in (1, job.pid) and len(chain) < 10:
            chain.append(launcher(p))
            p = proc.ppid(p)
        chains.append((chain, p == job.pid))
    tap.check(len(chains) == 2 and all(c == ["tfb-spawn", "deploy/stack"] and at_make
                                      for c, at_make in chains),
              "%s: each responder's parents are tfb-spawn, deploy/stack, then "
              "make: three launchers" % what,
              ["%s (make reached: %s)" % (" <- ".join(["tfb-fcgi"] + c), m)
               for c, m in chains])


def scenario(tap, what, act, want_rc, want_line, via_make=False):
    """Start run (in a session of its own; with via_make, `make run` on the
    build under test), do act(st, job), then check its exit status, its
    last words and that every part is gone."""
    st = stack.Stack(server="nginx", workers=2, tap=tap, name="run")
    argv = [STACK, "run"]
    if via_make:
        argv = ["make", "--no-print-directory", "B=%s" % BUILD, "run"]
    job = Job(argv, env=st.env(), cwd=str(REPO))
    try:
        ready = wait_for(lambda: not job.running() or READY in job.peek(), 120, 0.1)
        if not tap.check(ready and READY in job.peek(), "%s: deploy/stack run serves" % what,
                         tail(job.peek(), 20)):
            return
        r = web.try_get(st.url("/db"))
        tap.check(r.status == 200, "%s: /db answers 200" % what, r.summary())
        if via_make:
            check_chain(tap, what, st, job)
        var = os.path.realpath(st.var)
        pids = st.worker_pids() + [pid_in(os.path.join(var, "run", "spawn.pid")),
                                   pid_in(os.path.join(var, "pg", "data", "postmaster.pid")),
                                   pid_in(os.path.join(var, "run", "nginx.pid"))]
        t0 = time.monotonic()
        act(st, job)
        rc, out, _ = job.wait(30)
        took = time.monotonic() - t0
        tap.check(rc == want_rc and took < 15,
                  "%s: deploy/stack run exits %s within 15 s" % (what, want_rc),
                  ["exit status %s after %.1f s" % (rc, took)] + tail(out, 10))
        if want_line:
            tap.check(want_line in out, "%s: it says %r" % (what, want_line), tail(out, 10))
        stack.check_gone(tap, [p for p in pids if p], st.port, "%s: the stack" % what, 10)
    finally:
        job.signal(signal.SIGKILL, group=True)
        job.kill()
        st.cleanup()


def ctrl_c(st, job):
    job.signal(signal.SIGINT, group=True)


def stop_elsewhere(st, job):
    st.call("stop", timeout=60)


def kill_pidfile(rel, sig):
    def act(st, job):
        pid = pid_in(os.path.join(os.path.realpath(st.var), rel))
        if pid is None:
            raise stack.StackError("no pid in %s" % rel)
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
        shutil.copy(REPO / "Makefile", work)
        shutil.copy(REPO / "deploy" / "deps", os.path.join(work, "deploy"))
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(work):
            for name in [root] + [os.path.join(root, f) for f in dirs + files]:
                os.chown(name, nobody.pw_uid, nobody.pw_gid)
        pkg = "tfb-fcgi-no-such-package"
        env = dict(os.environ, EXTRA_PKGS=pkg, HOME=work)
        r = run(["runuser", "-u", "nobody", "--", "make", "-C", work], 60, env=env)
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
    tap.need([APP_BIN, STACK])
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
    main(body, deadline=400)
