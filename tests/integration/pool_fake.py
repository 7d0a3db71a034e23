"""pool_fake.py: tfb-spawn with a fake worker (tests/spawn/supervisor/fake_worker.c).

The fake keeps tfb-fcgi's worker contract without a database, and can
misbehave on purpose: a request that never ends, a crash at start or in
the middle of a request, exit status 2.  So this file runs everything about the supervisor that needs
no PostgreSQL: the scenarios under load (poolcases.py), the request time
limit, crash loops, the stops, the pid and log files, the privilege drop,
a broken binary met by a rolling restart, the TCP and systemd sockets.
"""

import os
import pwd
import shutil
import signal
import stat
import threading
import time
from pathlib import Path

from ..kit import SPAWN_BIN, proc, web
from ..kit.cmd import run, tail, wait_for
from ..kit.pool import Worker
from ..kit.scene import Scene
from ..kit.tap import main
from . import poolcases
from .poolcases import N

BASE = ["--socket-mode", "0666", "--log-level", "debug"]


def stuck(tap, fake):
    """A request past --request-timeout: its worker is killed, replaced."""
    w = Worker([fake], name="fake")
    with Scene(tap, "stuck") as sc:
        sp, ng = poolcases.start(sc, w, ["--request-timeout", "1s"])
        before = sp.workers()
        t0 = time.monotonic()
        r = web.try_get(ng.url("/sleep"), timeout=10)
        took = time.monotonic() - t0
        tap.check(r.status == 502 and 0.9 < took < 3,
                  "a request stuck past the 1 s limit ends (HTTP %s after %.2f s)"
                  % (r.status, took))
        tap.check(sp.lines(r"busy on one request for [\d.]+ s, over the 1.0 s "
                           r"limit: killing it"),
                  "the supervisor says which worker it killed and why")
        ok = sp.wait_ready(N, 5)
        tap.check(ok and set(sp.workers()) != set(before),
                  "the stuck worker is replaced (%s -> %s)" % (before, sp.workers()))
        tap.check(web.try_get(ng.url("/plaintext")).status == 200,
                  "and the pool answers again")


def crash_loop(tap):
    """A worker binary that dies at start does not fork-bomb."""
    with Scene(tap, "crash") as sc:
        sp = sc.spawn(["-w", N, "--bind", sc.sock] + BASE + ["--", "/bin/false"])
        time.sleep(5)
        starts = len(sp.lines(r"worker \d+ started"))
        # Backoff 0.25, 0.5, 1, 2 s: 5 starts per slot in 5 s.
        tap.check(N <= starts <= N * 6,
                  "/bin/false: %d starts in 5 s for %d slots, not a fork bomb"
                  % (starts, N))
        tap.check(sp.lines(r"exited with status 1 [\d.]+ s after its start "
                           r"\(3 in a row\); next start in 1.00 s"),
                  "the log gives the reason and the growing backoff")
        tap.check(sp.proc.poll() is None, "the supervisor keeps trying")
        sp.signal(signal.SIGTERM)
        tap.check(sp.wait_exit(3) == 0, "and stops at once on SIGTERM")


def crash_storm(tap, fake):
    """Requests that crash their worker: each worker that dies serving one
    is replaced at once, not backed off as a crash loop, so the pool
    serves the next request right after a storm of them."""
    w = Worker([fake], name="fake")
    with Scene(tap, "storm") as sc:
        sp, ng = poolcases.start(sc, w, [])
        for _ in range(100):
            web.try_get(ng.url("/crash"), timeout=5)
        t0 = time.monotonic()
        r = web.try_get(ng.url("/plaintext"), timeout=5)
        took = time.monotonic() - t0
        replaced = len(sp.lines(r"replacing it"))
        tap.check(r.status == 200 and took < 1,
                  "after 100 requests that crash their worker, the next is served "
                  "(HTTP %s in %.2f s)" % (r.status, took))
        tap.check(replaced >= 90 and not sp.lines(r"next start in"),
                  "each crashed worker was replaced at once (%d), none backed off"
                  % replaced)


def fatal(tap, fake):
    """Every worker exits 2: the supervisor exits 2 too, saying why."""
    with Scene(tap, "fatal") as sc:
        sp = sc.spawn(["-w", N, "--bind", sc.sock] + BASE + ["--", fake],
                      env={"FAKE_EXIT": "2"})
        rc = sp.wait_exit(5)
        tap.check(rc == 2, "workers exiting 2: the supervisor exits 2 (%s)" % rc)
        tap.check(sp.lines(r"every worker exited with status 2"),
                  "with a clear log line")
        tap.check(len(sp.lines(r"worker \d+ started")) == N,
                  "and no worker was restarted")


def bad_start(tap):
    """Configuration errors stop the start with status 2 and a message."""
    cases = [
        (["-w", "0"], "--workers: '0'"),
        (["--bind", "x.sock", "--", "/bin/true"],
         "a unix socket path needs a '/'"),
        (["--", "/nonexistent/worker"], "No such file"),
        (["--", "no-such-worker-cmd"], "not found in PATH"),
        (["--", "/bin/true"], "no listening socket"),
    ]
    for args, says in cases:
        r = run([str(SPAWN_BIN)] + args, 10)
        tap.check(r.returncode == 2 and says in r.stdout,
                  "tfb-spawn %s: exit 2, saying %r" % (" ".join(args), says),
                  r.stdout)


def stops(tap, fake):
    """Graceful stop lets a request finish; the deadline SIGKILLs a stuck
    one; SIGINT does not wait; SIGKILL of the supervisor takes the
    workers along (PR_SET_PDEATHSIG)."""
    w = Worker([fake], name="fake")
    with Scene(tap, "graceful") as sc:
        sp, ng = poolcases.start(sc, w)
        box = {}
        t = lib_thread(lambda: box.update(r=web.try_get(ng.url("/slow?ms=1500"))))
        time.sleep(0.3)
        sp.signal(signal.SIGTERM)
        rc = sp.wait_exit(10)
        t.join(10)
        tap.check(box.get("r") is not None and box["r"].status == 200
                  and box["r"].body == b"Hello, World!",
                  "SIGTERM: the request in flight is answered (%s)"
                  % (box.get("r") and box["r"].summary()))
        tap.check(rc == 0, "and the supervisor exits 0 (%s)" % rc)

    with Scene(tap, "deadline") as sc:
        sp, ng = poolcases.start(sc, w, ["--request-timeout", "0",
                                         "--graceful-timeout", "1s"])
        t = lib_thread(lambda: web.try_get(ng.url("/sleep"), timeout=10))
        time.sleep(0.3)
        t0 = time.monotonic()
        sp.signal(signal.SIGTERM)
        rc = sp.wait_exit(10)
        took = time.monotonic() - t0
        tap.check(rc == 0 and 0.9 < took < 2.5,
                  "SIGTERM with a stuck request: SIGKILL at the 1 s deadline "
                  "(exit %s after %.2f s)" % (rc, took))
        tap.check(sp.lines(r"still running after its stop deadline: killing it"),
                  "the log says which worker was killed")
        t.join(10)

    with Scene(tap, "int") as sc:
        sp, ng = poolcases.start(sc, w, ["--request-timeout", "0"])
        t = lib_thread(lambda: web.try_get(ng.url("/sleep"), timeout=10))
        time.sleep(0.3)
        tree = sp.workers()
        t0 = time.monotonic()
        sp.signal(signal.SIGINT)
        rc = sp.wait_exit(5)
        took = time.monotonic() - t0
        tap.check(rc == 0 and took < 1.5 and not any(proc.alive(p) for p in tree),
                  "SIGINT: immediate stop, stuck request or not (%.2f s)" % took)
        t.join(10)

    with Scene(tap, "orphans") as sc:
        sp, ng = poolcases.start(sc, w)
        tree = sp.workers()
        sp.proc.kill()
        sp.proc.wait(5)
        gone = wait_for(lambda: not any(proc.alive(p) for p in tree), 3)
        tap.check(gone, "the supervisor SIGKILLed: its workers stop too (%s)" % tree)


def lib_thread(fn):
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def files(tap, fake):
    """--pid-file, --log-file with the workers' lines, SIGUSR1 reopening
    it and rolling the workers onto the new file."""
    with Scene(tap, "files") as sc:
        pidf, logf = sc.path("spawn.pid"), sc.path("pool.log")
        sp = sc.spawn(["-w", N, "--bind", sc.sock, "-p", pidf, "-l", logf]
                      + BASE + ["--", fake], log=sc.path("stderr.log"))
        sp.log = Path(logf)
        sp.wait_ready(N, 10)
        tap.check(open(pidf).read() == "%d\n" % sp.pid,
                  "--pid-file holds the supervisor's pid")
        pids = sp.workers()
        text = sp.text()
        tap.check(all(("worker %d started" % p) in text for p in pids),
                  "--log-file names each worker's pid")
        second = run([str(SPAWN_BIN), "-w", "1", "--bind",
                          sc.path("other.sock"), "-p", pidf, "--", fake], 10)
        tap.check(second.returncode == 2 and "running already" in second.stdout,
                  "a second supervisor on the same pid file is refused",
                  second.stdout)
        os.rename(logf, logf + ".1")
        sp.signal(signal.SIGUSR1)
        ok = wait_for(lambda: os.path.exists(logf)
                              and "rolling restart done" in open(logf).read(), 10)
        tap.check(ok, "SIGUSR1 reopens the log file and rolls the workers")
        tap.check(not set(pids) & set(sp.workers()),
                  "every worker now writes to the new file")
        sp.signal(signal.SIGTERM)
        tap.check(sp.wait_exit(10) == 0 and not os.path.exists(pidf),
                  "the pid file is removed at exit")
        tap.check(os.path.getsize(sc.path("stderr.log")) == 0,
                  "nothing went to stderr once --log-file was open")


def privileges(tap, fake):
    """As root with --user: the workers run as the user, the supervisor
    stays root, as nginx's master does, so that its housekeeping works:
    SIGUSR1 reopens the log root opened, and at the end the pid file and
    the socket root made are removed."""
    if not tap.root("--user drops privileges"):
        return
    nobody = pwd.getpwnam("nobody")
    with Scene(tap, "user") as sc:
        pidf, logf = sc.path("spawn.pid"), sc.path("pool.log")
        sp = sc.spawn(["-w", N, "--bind", sc.sock, "--user", "nobody", "-p", pidf,
                       "-l", logf] + BASE + ["--", fake], log=sc.path("stderr.log"))
        sp.log = Path(logf)
        sp.wait_ready(N, 10)
        uids = [proc.uid(p) for p in sp.workers()]
        tap.check(len(uids) == N and all(u == nobody.pw_uid for u in uids),
                  "--user nobody: the workers run as nobody (%s)" % uids)
        tap.check(proc.uid(sp.pid) == 0,
                  "and the supervisor stays root for its housekeeping")
        st = os.stat(sc.sock)
        tap.check(st.st_uid == nobody.pw_uid and stat.S_IMODE(st.st_mode) == 0o666,
                  "the socket belongs to nobody, mode as asked")
        ng = sc.front()
        tap.check(web.try_get(ng.url("/plaintext")).status == 200,
                  "and the pool answers")
        os.rename(logf, logf + ".1")
        sp.signal(signal.SIGUSR1)
        reopened = wait_for(
            lambda: os.path.exists(logf) and "reopened" in open(logf).read(), 5)
        tap.check(reopened, "SIGUSR1: the supervisor reopens its log, root's file")
        sp.signal(signal.SIGTERM)
        rc = sp.wait_exit(10)
        tap.check(rc == 0 and not os.path.exists(pidf) and not os.path.exists(sc.sock),
                  "SIGTERM: exit 0, the pid file and the socket removed",
                  ["exit %s, pid file %s, socket %s" % (rc, os.path.exists(pidf),
                                                         os.path.exists(sc.sock))])


def broken_roll(tap, fake):
    """A rolling restart onto a binary that cannot start keeps the old
    workers serving; once the binary is fixed, SIGHUP completes."""
    with Scene(tap, "broken") as sc:
        exe = sc.path("worker")
        shutil.copy(fake, exe)
        w = Worker([exe], name="fake")
        sp, ng = poolcases.start(sc, w)
        before = set(sp.workers())
        os.unlink(exe)
        with open(exe, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(exe, 0o755)
        sp.signal(signal.SIGHUP)
        time.sleep(2)
        tap.check(before <= set(sp.workers()),
                  "SIGHUP onto a broken binary: the old workers keep running")
        tap.check(web.try_get(ng.url("/plaintext")).status == 200,
                  "and keep serving")
        tap.check(sp.lines(r"after its start \(\d in a row\)"),
                  "the new worker's crash loop is in the log")
        os.unlink(exe)
        shutil.copy(fake, exe)
        sp.signal(signal.SIGHUP)
        ok = sp.wait_log(r"rolling restart done", 15)
        tap.check(ok and not before & set(sp.workers()) and len(sp.workers()) == N,
                  "binary fixed, SIGHUP: the roll completes")


def scoreboard(tap, fake):
    """The scoreboard is sealed and its slots are checked: a worker that
    tries to shrink it cannot (the supervisor would die of SIGBUS), and one
    that writes a sibling's slot as busy for ever does not get the sibling
    killed by the request time limit."""
    with Scene(tap, "truncate") as sc:
        sp = sc.spawn(["-w", N, "--bind", sc.sock] + BASE + ["--", fake],
                      env={"FAKE_TRUNCATE": "1"})
        ready = sp.wait_ready(N, 10)
        time.sleep(0.5)
        tap.check(ready and sp.proc.poll() is None and
                  not sp.lines(r"exited with status 3"),
                  "a worker cannot shrink the sealed scoreboard; the supervisor lives",
                  sp.text())
    with Scene(tap, "forge") as sc:
        sp = sc.spawn(["-w", N, "--bind", sc.sock, "--request-timeout", "1s"] + BASE +
                      ["--", fake], env={"FAKE_FORGE": "1"})
        sp.wait_ready(N, 10)
        before = sorted(sp.workers())
        time.sleep(2.5)
        tap.check(sorted(sp.workers()) == before and not sp.lines(r"killing it"),
                  "a slot written over by a sibling gets no worker killed "
                  "(%s -> %s)" % (before, sorted(sp.workers())), sp.text())


def affinity(tap, fake):
    """--cpu-affinity slot: the worker in slot i runs on allowed CPU i mod
    n, and only there; none (the default) leaves every worker free."""
    allowed = sorted(os.sched_getaffinity(0))

    def cpus(pid):
        return sorted(os.sched_getaffinity(pid))

    with Scene(tap, "affinity") as sc:
        sp = sc.spawn(["-w", N, "--bind", sc.sock, "--cpu-affinity", "slot"] + BASE +
                      ["--", fake])
        sp.wait_ready(N, 10)
        got = {}
        for pid, slot in sp.lines(r"worker (\d+) started \(slot (\d+)"):
            pid, slot = int(pid), int(slot)
            if proc.alive(pid):
                got[slot] = cpus(pid)
        want = {slot: [allowed[slot % len(allowed)]] for slot in got}
        tap.check(len(got) == N and got == want,
                  "--cpu-affinity slot: worker i on CPU i mod %d (%s)" % (len(allowed), got),
                  sp.text())
    with Scene(tap, "noaffinity") as sc:
        sp = sc.spawn(["-w", N, "--bind", sc.sock] + BASE + ["--", fake])
        sp.wait_ready(N, 10)
        free = [cpus(pid) == allowed for pid in sp.workers()]
        tap.check(len(free) == N and all(free),
                  "no --cpu-affinity: every worker may run on every CPU")


def sockets(tap, fake):
    """--bind HOST:PORT (loopback by default), and systemd's LISTEN_FDS
    through systemd-socket-activate."""
    with Scene(tap, "tcp") as sc:
        port = web.free_port()
        sp = sc.spawn(["-w", N, "--bind", port] + BASE + ["--", fake])
        sp.wait_ready(N, 10)
        ng = sc.front(fcgi_port=port)
        tap.check("tcp 127.0.0.1 port %d" % port in sp.text()
                  and web.try_get(ng.url("/plaintext")).status == 200,
                  "--bind PORT: TCP on 127.0.0.1, served")
    if not tap.tool("systemd-socket-activate", "systemd-socket-activate passes LISTEN_FDS"):
        return
    with Scene(tap, "activate") as sc:
        port = web.free_port()
        log = open(sc.path("spawn.log"), "ab")
        sc.popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % port,
                  SPAWN_BIN, "-w", N] + BASE + ["--", fake],
                 stdout=log, stderr=log)
        wait_for(lambda: not web.port_is_free(port), 5)
        ng = sc.front(fcgi_port=port)
        r = web.try_get(ng.url("/plaintext"), timeout=10)
        text = open(sc.path("spawn.log"), errors="replace").read()
        tap.check(r.status == 200 and "LISTEN_FDS (fd 3)" in text,
                  "systemd-socket-activate: the pool takes fd 3 from LISTEN_FDS "
                  "and serves", [r.summary()] + tail(text, 10))


def body(tap):
    tap.need([SPAWN_BIN])
    with Scene(tap, "fake") as sc:
        fake = sc.fake_worker()
        poolcases.run_all(tap, Worker([fake], name="fake"))
        for case in (stuck, crash_storm, fatal, stops, files, privileges, broken_roll,
                     scoreboard, affinity, sockets):
            case(tap, fake)
        crash_loop(tap)
        bad_start(tap)


if __name__ == "__main__":
    main(body, deadline=400)
