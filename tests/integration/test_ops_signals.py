#!/usr/bin/env python3
"""test_ops_signals.py: operating the pool as a php-fpm or gunicorn user
would (issue 19, items 1, 4 and 7), each check against the programs make
built, with real tfb-fcgi workers (no database needed: /plaintext):

  * every signal family, to the supervisor and to a worker: the stops
    (TERM, QUIT, INT), a fault (SEGV, ABRT), the reloads (HUP, USR1), the
    resizes (TTIN, TTOU), the ones logged and ignored (WINCH, TSTP, PWR,
    the real-time ones...), and USR2: the supervisor re-executed in place
    under load, with no failed request, the same pid and socket file, a
    new binary; or, when the new binary is gone or refuses the options,
    logged, and the pool going on as it was;
  * on every way out (the stops, a fault, every worker exiting 2, a
    start-up error, after a USR2 that failed or succeeded), the run
    directory is listed: no pid file, socket or lock file is left;
  * --version of both programs, and the version on the status page and
    in tfb_build_info;
  * the process titles in /proc/PID/cmdline, comm and exe unchanged;
  * tfb-spawn --check on good and bad configurations, making nothing;
  * make install DESTDIR= (the installed programs run, under
    systemd-socket-activate), make uninstall, and make deb (its contents
    and control file).

One directory per pool, its run/ apart from its logs.  Every wait has a
deadline.  Python standard library only.
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..kit import APP_BIN as APP
from ..kit import BUILD, REPO, SPAWN_BIN as SPAWN, fcgi, proc
from ..kit.cmd import run, tail, wait_exit, wait_for
from ..kit.pool import Spawn
from ..kit.tap import main


def cmdline(pid):
    """The title as ps shows it: the arguments joined (a title is one)."""
    return " ".join(proc.cmdline(pid))


def send(pid, sig):
    """kill(), a process already gone (or never found: pid 0, which
    kill() would take for our own group) being the check's business."""
    if not pid or pid <= 0:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def get(sock, path="/plaintext", timeout=5):
    """One request straight to the pool's socket; the fcgi.Response, or
    None when the connection failed."""
    try:
        with fcgi.connect(sock, timeout=timeout) as c:
            return c.get(path)
    except OSError:
        return None


def hello(sock):
    r = get(sock)
    return r is not None and r.status == 200 and r.body == b"Hello, World!"


class Pool(Spawn):
    """tfb-spawn started by the test in a directory of its own; its pid
    file and sockets in run/, its log apart, so that what a way out leaves
    behind is run/'s listing."""

    def __init__(self, tap, name, workers=2, args=(), worker=None,
                 spawn=SPAWN, status=True):
        self.tap = tap
        self.dir = Path(tempfile.mkdtemp(prefix="ops-%s." % name))
        self.run = self.dir / "run"
        self.run.mkdir()
        self.sock = str(self.run / "fcgi.sock")
        self.status = str(self.run / "status.sock") if status else None
        self.pidfile = self.run / "spawn.pid"
        self.n = workers
        log = self.dir / "spawn.log"
        argv = ["--log-level", "debug", "-w", workers, "--bind", self.sock,
                "-p", self.pidfile, "-l", log, "--graceful-timeout", "5s"]
        if status:
            argv += ["--status", self.status]
        argv += list(args) + ["--"] + (worker or [APP])
        super().__init__(argv, log, env=dict(PGHOST=str(self.dir / "no-database"),
                                              PGCONNECT_TIMEOUT="1"),
                         binary=spawn, cwd=self.dir, out=self.dir / "stderr")

    def workers(self):
        return [p for p in proc.children(self.pid) if proc.comm(p) == "tfb-fcgi"]

    def status_pid(self):
        pids = [p for p in proc.children(self.pid) if proc.comm(p) == "tfb-spawn"]
        return pids[0] if pids else None

    def ready(self, n=None, timeout=15):
        n = self.n if n is None else n
        return wait_for(lambda: len(self.workers()) == n
                            and (self.status is None or self.status_pid())
                            and hello(self.sock), timeout, step=0.05)

    def files(self):
        return sorted(os.listdir(self.run))

    def details(self):
        return ["log: " + line for line in tail(self.text(), 25)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        descendants = proc.descendants(self.pid)
        self.kill()
        for p in descendants:
            wait_for(lambda: not proc.alive(p), 5)
        if self.tap.failed == 0 and not os.environ.get("TFB_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


RUNNING = ["fcgi.sock", "fcgi.sock.lock", "spawn.pid", "status.sock",
           "status.sock.lock"]


def way_out(tap, name, sig, want_rc):
    """Start a pool, check what it made, send sig, check it exits with
    want_rc and leaves its run directory empty."""
    with Pool(tap, name) as p:
        tap.check(p.ready(), "%s: the pool serves" % name, p.details())
        tap.check(p.files() == RUNNING,
                  "%s: while it runs, run/ holds %s" % (name, p.files()))
        workers = p.workers()
        p.signal(sig)
        rc = p.wait_exit(15)
        gone = wait_for(lambda: not any(proc.alive(w) for w in workers), 10)
        tap.check(rc == want_rc and gone,
                  "%s: it exits %s (%s), its workers with it" % (name, want_rc, rc),
                  p.details())
        tap.check(p.files() == [],
                  "%s: nothing left in run/ (%s)" % (name, p.files()),
                  p.details())


def test_ways_out(tap):
    way_out(tap, "SIGTERM", signal.SIGTERM, 0)
    way_out(tap, "SIGQUIT", signal.SIGQUIT, 0)
    way_out(tap, "SIGINT", signal.SIGINT, 0)
    way_out(tap, "SIGSEGV", signal.SIGSEGV, -signal.SIGSEGV)
    way_out(tap, "SIGABRT", signal.SIGABRT, -signal.SIGABRT)

    with Pool(tap, "fatal-workers", worker=[str(APP), "--db-mode", "nope"]) as p:
        rc = p.wait_exit(15)
        tap.check(rc == 2 and "giving up" in p.text(),
                  "every worker exiting 2: tfb-spawn exits 2 (%s)" % rc, p.details())
        tap.check(p.files() == [],
                  "and leaves nothing in run/ (%s)" % p.files(), p.details())

    with Pool(tap, "fatal-start", status=False,
              args=["--status", "/nonexistent/dir/status.sock"]) as p:
        rc = p.wait_exit(15)
        tap.check(rc == 2 and "/nonexistent/dir/status.sock" in p.text(),
                  "a start-up error after the pid file and the socket were "
                  "made: exit 2 (%s)" % rc, p.details())
        tap.check(p.files() == [],
                  "and they are removed, lock file included (%s)" % p.files())


def test_titles_and_version(tap, version):
    with Pool(tap, "titles", workers=3) as p:
        tap.check(p.ready(), "a pool of 3 serves", p.details())
        sp = p.status_pid()
        ws = p.workers()
        tap.check(cmdline(p.pid) == "tfb-spawn: supervisor"
                  and proc.comm(p.pid) == "tfb-spawn",
                  "the supervisor: title 'tfb-spawn: supervisor', comm "
                  "tfb-spawn (%r)" % cmdline(p.pid))
        tap.check(sp is not None and cmdline(sp) == "tfb-spawn: status"
                  and proc.comm(sp) == "tfb-spawn",
                  "the status process: 'tfb-spawn: status' (%r)"
                  % (sp and cmdline(sp)))
        titles = sorted(cmdline(w) for w in ws)
        tap.check(titles == ["tfb-fcgi: worker %d" % i for i in range(3)]
                  and all(proc.comm(w) == "tfb-fcgi" for w in ws),
                  "the workers: 'tfb-fcgi: worker N', N their slot, comm "
                  "tfb-fcgi (%s)" % titles)
        exe = proc.exe(p.pid)
        tap.check(os.path.samefile(exe, SPAWN)
                  and all(os.path.samefile(proc.exe(w), APP) for w in ws),
                  "/proc/PID/exe unchanged: %s" % exe)

        out = run([str(SPAWN), "status", p.status], 10).stdout
        tap.check(re.search(r"^version: +%s$" % re.escape(version), out, re.M),
                  "the status page says the version", out[-600:])
        out = run([str(SPAWN), "status", p.status, "json"], 10).stdout
        tap.check('"version":"%s"' % version in out, "its JSON too", out[-300:])
        out = run([str(SPAWN), "status", p.status, "prometheus"], 10).stdout
        tap.check('tfb_build_info{pool="tfb-fcgi",version="%s"} 1' % version
                  in out and "# TYPE tfb_build_info gauge" in out,
                  "and Prometheus' tfb_build_info", out[:400])
        p.signal(signal.SIGTERM)
        p.wait_exit(15)

    for prog, name in ((SPAWN, "tfb-spawn"), (APP, "tfb-fcgi")):
        for flag in ("--version", "-V"):
            r = run([str(prog), flag], 10)
            tap.check(r.returncode == 0 and r.stdout == "%s %s\n" % (name, version),
                      "%s %s: '%s %s' (%r)" % (name, flag, name, version, r.stdout))


def test_reload_resize(tap):
    """HUP and USR1 roll the workers, TTIN and TTOU resize the pool; the
    status process shrugs off the pool's commands (pkill reaches it too)."""
    with Pool(tap, "reload") as p:
        tap.check(p.ready(), "reload: the pool serves", p.details())
        before = set(p.workers())
        p.signal(signal.SIGHUP)
        tap.check(p.wait_log(r"rolling restart done") and
                  wait_for(lambda: not before & set(p.workers())
                               and len(p.workers()) == 2, 10),
                  "SIGHUP: every worker replaced", p.details())
        os.rename(p.log, str(p.log) + ".1")
        before = set(p.workers())
        p.signal(signal.SIGUSR1)
        tap.check(p.wait_log(r"SIGUSR1: reopened") and p.wait_log("rolling restart done")
                  and wait_for(lambda: not before & set(p.workers()), 10),
                  "SIGUSR1: the log reopened, the workers rolled onto it")
        p.signal(signal.SIGTTIN)
        tap.check(wait_for(lambda: len(p.workers()) == 3, 10),
                  "SIGTTIN: 3 workers")
        p.signal(signal.SIGTTOU)
        tap.check(wait_for(lambda: len(p.workers()) == 2, 10),
                  "SIGTTOU: 2 again")
        sp = p.status_pid() or 0
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN,
                    signal.SIGWINCH):
            send(sp, sig)
            time.sleep(0.05)
        time.sleep(0.3)
        tap.check(proc.alive(sp) and p.status_pid() == sp,
                  "the status process ignores HUP, USR1, USR2, TTIN, WINCH")
        p.signal(signal.SIGTERM)
        tap.check(p.wait_exit(15) == 0 and p.files() == [],
                  "then SIGTERM: exit 0, run/ empty (%s)" % p.files())


IGNORED = ["WINCH", "TSTP", "PWR", "URG", "VTALRM", "PROF", "IO", "STKFLT",
           "XCPU"]


def test_ignored(tap):
    """The signals with no meaning here: logged and ignored by the
    supervisor; a worker logs and ignores its own list; XCPU and the
    stops end a worker, which is replaced."""
    with Pool(tap, "ignored") as p:
        tap.check(p.ready(), "ignored: the pool serves", p.details())
        workers = p.workers()
        for name in IGNORED:
            p.signal(getattr(signal, "SIG" + name))
            time.sleep(0.05)
        for sig in (signal.SIGRTMIN, signal.SIGRTMIN + 5, signal.SIGRTMAX,
                    signal.SIGXFSZ, signal.SIGPIPE, signal.SIGALRM, signal.SIGCONT):
            p.signal(sig)
            time.sleep(0.05)
        logged = [n for n in IGNORED + ["RTMIN", "RTMIN+5", "RTMAX"]
                  if p.wait_log(r"tfb-spawn\[%d\] info: SIG%s ignored"
                              % (p.pid, re.escape(n)), timeout=5)]
        tap.check(len(logged) == len(IGNORED) + 3,
                  "tfb-spawn logs each as ignored, saying why "
                  "(%d of %d)" % (len(logged), len(IGNORED) + 3), p.details())
        tap.check(p.wait_log("SIGCONT: running again"), "SIGCONT: logged")
        tap.check(proc.state(p.pid) in ("S", "R") and p.workers() == workers
                  and hello(p.sock),
                  "the supervisor runs on, not stopped (%s), the same workers "
                  "serving" % proc.state(p.pid))

        w = workers[0]
        for sig in (signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU, signal.SIGTSTP,
                    signal.SIGWINCH, signal.SIGALRM, signal.SIGPWR, signal.SIGRTMIN,
                    signal.SIGPIPE, signal.SIGXFSZ):
            send(w, sig)
            time.sleep(0.05)
        tap.check(p.wait_log(r"tfb-fcgi\[%d\] info: SIGUSR2 ignored" % w)
                  and p.wait_log(r"tfb-fcgi\[%d\] info: SIGRTMIN ignored" % w)
                  and p.wait_log(r"tfb-fcgi\[%d\] info: SIGTSTP ignored" % w),
                  "a worker logs USR2, TSTP, RTMIN... as ignored", p.details())
        tap.check(proc.alive(w) and proc.state(w) != "T" and w in p.workers()
                  and hello(p.sock),
                  "and serves on, the same process (%s)" % proc.state(w))
        send(w, signal.SIGUSR1)
        tap.check(p.wait_log(r"tfb-fcgi\[%d\] info: worker: SIGUSR1" % w)
                  and proc.alive(w),
                  "SIGUSR1 to a worker: its log's turn (none to reopen here)")
        for sig in (signal.SIGXCPU, signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM,
                    signal.SIGINT):
            w = (p.workers() or [0])[0]
            send(w, sig)
            tap.check(wait_for(lambda: not proc.alive(w)
                                   and len(p.workers()) == 2, 10) and hello(p.sock),
                      "%s to a worker: it leaves and is replaced"
                      % signal.Signals(sig).name, p.details())
        p.signal(signal.SIGTERM)
        tap.check(p.wait_exit(15) == 0 and p.files() == [],
                  "then SIGTERM: exit 0, run/ empty (%s)" % p.files())


class Load:
    """Clients sending /plaintext straight to the pool's socket, a new
    connection for each request, as nginx without kept connections does;
    anything but 200 and Hello, World! is a failure."""

    def __init__(self, sock, clients=4):
        self.sock = sock
        self.ok = 0
        self.bad = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self):
        while not self.stop.is_set():
            try:
                with fcgi.connect(self.sock, timeout=10) as c:
                    r = c.get("/plaintext")
                good = r.status == 200 and r.body == b"Hello, World!"
                why = repr(r)
            except OSError as e:
                good, why = False, "%s: %s" % (type(e).__name__, e)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.bad.append(why)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)
        return self.ok, self.bad


def ino(path):
    """The inode of what path names, None when it is gone."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def copy_spawn(p, name="tfb-spawn"):
    """A copy of tfb-spawn in the pool's bin/, to be replaced by a test."""
    d = p / "bin"
    d.mkdir(exist_ok=True)
    shutil.copy2(SPAWN, d / name)
    return d / name


def test_usr2(tap):
    """USR2 under load: the supervisor re-executed in place into a new
    binary (a new file renamed over its path, as dpkg does), the same
    pid, pid file and socket file, the workers replaced, no failed
    request; then the stop leaves nothing."""
    tmp = Path(tempfile.mkdtemp(prefix="ops-usr2-bin."))
    binary = copy_spawn(tmp)
    with Pool(tap, "usr2", spawn=binary) as p:
        tap.check(p.ready(), "USR2: the pool serves", p.details())
        sock_ino = os.stat(p.sock).st_ino
        pid_text = p.pidfile.read_text()
        before = set(p.workers())
        shutil.copy2(SPAWN, str(binary) + ".new")
        os.rename(str(binary) + ".new", binary)
        load = Load(p.sock)
        time.sleep(1)
        p.signal(signal.SIGUSR2)
        done = p.wait_log(r"re-executed: 2 workers of the previous image adopted") \
            and p.wait_log(r"rolling restart done", timeout=20) \
            and wait_for(lambda: len(p.workers()) == 2
                             and not before & set(p.workers()), 20)
        time.sleep(1)
        ok, bad = load.finish()
        tap.check(done, "SIGUSR2: re-executed, the old workers adopted, then "
                  "replaced one at a time", p.details())
        tap.check(ok > 100 and not bad,
                  "under load (4 clients, straight to the socket): %d requests "
                  "answered, %d failed" % (ok, len(bad)), bad[:10])
        tap.check(p.proc.poll() is None and p.pidfile.read_text() == pid_text
                  and cmdline(p.pid) == "tfb-spawn: supervisor",
                  "the same pid, in the same pid file, titled again")
        tap.check(ino("/proc/%d/exe" % p.pid) == ino(binary),
                  "it runs the new binary now at its path")
        tap.check(ino(p.sock) == sock_ino,
                  "the socket file is the one bound at the start: kept, "
                  "neither unlinked nor bound again")
        tap.check(p.status_pid() is not None and hello(p.sock)
                  and "version:" in run([str(SPAWN), "status", p.status],
                                            10).stdout,
                  "its status page answers from a new status process")
        p.signal(signal.SIGTERM)
        tap.check(p.wait_exit(15) == 0 and p.files() == [],
                  "SIGTERM after the upgrade: exit 0, run/ empty (%s)" % p.files(),
                  p.details())
    shutil.rmtree(tmp, ignore_errors=True)


def usr2_refused(tap, name, spoil, said):
    """USR2 when the new binary cannot run: spoil(path) breaks it; the
    log says said; the pool goes on as it was; the stop leaves nothing."""
    tmp = Path(tempfile.mkdtemp(prefix="ops-usr2-%s." % name))
    binary = copy_spawn(tmp)
    with Pool(tap, "usr2-" + name, spawn=binary) as p:
        tap.check(p.ready(), "USR2, %s: the pool serves" % name, p.details())
        workers = p.workers()
        spoil(binary)
        p.signal(signal.SIGUSR2)
        tap.check(p.wait_log(r"SIGUSR2: .*--check: .*%s.*running on with this "
                           r"image" % said),
                  "USR2, %s: logged, the pool keeps its image" % name, p.details())
        tap.check(p.proc.poll() is None and p.workers() == workers
                  and hello(p.sock) and p.files() == RUNNING,
                  "the same workers serve, its files in place")
        p.signal(signal.SIGTERM)
        tap.check(p.wait_exit(15) == 0 and p.files() == [],
                  "then SIGTERM: exit 0, run/ empty (%s)" % p.files())
    shutil.rmtree(tmp, ignore_errors=True)


def refusing(path):
    """A new binary that rejects the options the pool runs with."""
    os.unlink(path)
    path.write_text("#!/bin/sh\necho \"tfb-spawn: unrecognized option "
                    "'--bind' (see --help)\" >&2\nexit 2\n")
    path.chmod(0o755)


def test_usr2_refused(tap):
    usr2_refused(tap, "gone", os.unlink, "No such file or directory")
    usr2_refused(tap, "bad-options", refusing, "unrecognized option '--bind'")


def test_check(tap):
    d = Path(tempfile.mkdtemp(prefix="ops-check."))
    good = [str(SPAWN), "--check", "--bind", str(d / "fcgi.sock"),
            "-p", str(d / "spawn.pid"), "-l", str(d / "spawn.log"),
            "--status", str(d / "status.sock"), "--", str(APP)]
    r = run(good, 10)
    tap.check(r.returncode == 0 and "the configuration is valid" in r.stdout,
              "--check, a good configuration: exit 0, saying what it checked",
              r.stdout)
    tap.check(os.listdir(d) == [], "and nothing made: no socket, lock, pid or "
              "log file (%s)" % os.listdir(d))
    live = subprocess.Popen([str(SPAWN), "-w", "1", "--bind", str(d / "live.sock"),
                             "--", str(APP)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, PGHOST=str(d / "nodb")))
    wait_for(lambda: hello(str(d / "live.sock")), 10)
    (d / "file").write_text("")
    bad = [
        (["--bind", str(d / "no/fcgi.sock"), "--", str(APP)], "directory"),
        (["--bind", str(d / "live.sock"), "--", str(APP)], "running server"),
        (["--bind", str(d / "s.sock"), "--", str(d / "nosuch")], "nosuch"),
        (["--bind", str(d / "s.sock"), "--", str(d / "file")], "Permission denied"),
        (["--bind", str(d / "s.sock"), "-p", str(d / "no/x.pid"), "--", str(APP)],
         "--pid-file"),
        (["--bind", str(d / "s.sock"), "-l", str(d / "no/x.log"), "--", str(APP)],
         "--log-file"),
        (["--bind", str(d / "s.sock"), "--status", "rel.sock", "--", str(APP)],
         "absolute path"),
        (["--bind", str(d / "s.sock"), "--user", "no-such-user", "--", str(APP)],
         "no such user"),
        (["--bind", str(d / "s.sock"), "--workers", "0", "--", str(APP)],
         "--workers"),
        (["--", str(APP)], "no listening socket"),
    ]
    for args, said in bad:
        r = run([str(SPAWN), "--check"] + args, 10)
        tap.check(r.returncode == 2 and said in r.stdout,
                  "--check %s: exit 2, '%s' (%s)" % (" ".join(args[:2]), said,
                                                     r.returncode), r.stdout)
    left = sorted(os.listdir(d))
    tap.check(left == ["file", "live.sock", "live.sock.lock"],
              "no bad check made anything either (%s)" % left)
    live.send_signal(signal.SIGTERM)
    wait_exit(live, 10)
    shutil.rmtree(d, ignore_errors=True)


def make(*args):
    return run(["make", "--no-print-directory", "-C", str(REPO),
                    "B=%s" % BUILD] + list(args), 300)


def test_install(tap, version):
    dest = Path(tempfile.mkdtemp(prefix="ops-install."))
    r = make("install", "DESTDIR=%s" % dest)
    tap.check(r.returncode == 0, "make install DESTDIR=...", tail(r.stdout))
    want = ["etc/default/tfb-fcgi", "etc/nginx/snippets/tfb-fcgi.conf",
            "usr/local/bin/tfb-fcgi", "usr/local/bin/tfb-spawn",
            "usr/local/lib/systemd/system/tfb-fcgi.service",
            "usr/local/lib/systemd/system/tfb-fcgi.socket",
            "usr/local/share/doc/tfb-fcgi/LICENSE",
            "usr/local/share/tfb-fcgi/create.sql",
            "usr/local/share/tfb-fcgi/roles.sql"]
    got = sorted(str(f.relative_to(dest)) for f in dest.rglob("*") if f.is_file())
    tap.check(got == want, "it lays out the programs, units, snippet, "
              "settings, SQL and licence", got)
    unit = (dest / "usr/local/lib/systemd/system/tfb-fcgi.service").read_text()
    tap.check("ExecStart=/usr/local/bin/tfb-spawn -- /usr/local/bin/tfb-fcgi\n"
              in unit, "the unit's ExecStart names the installed programs")
    for prog in ("tfb-spawn", "tfb-fcgi"):
        r = run([str(dest / "usr/local/bin" / prog), "--version"], 10)
        tap.check(r.stdout == "%s %s\n" % (prog, version),
                  "the installed %s runs: %r" % (prog, r.stdout))

    sock = str(dest / "fcgi.sock")
    act = subprocess.Popen(
        ["systemd-socket-activate", "-l", sock,
         str(dest / "usr/local/bin/tfb-spawn"), "-w", "1", "--",
         str(dest / "usr/local/bin/tfb-fcgi")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=dict(os.environ, PGHOST=str(dest / "nodb")))
    ok = wait_for(lambda: os.path.exists(sock), 10) and \
        wait_for(lambda: hello(sock), 15, step=0.2)
    tap.check(ok, "under systemd-socket-activate (LISTEN_FDS), the installed "
              "pool answers /plaintext")
    act.send_signal(signal.SIGTERM)
    tap.check(wait_exit(act, 15) == 0, "and stops on SIGTERM")
    if os.path.exists(sock):  # systemd's to remove, not the pool's
        os.unlink(sock)

    r = make("uninstall", "DESTDIR=%s" % dest)
    left = sorted(str(f.relative_to(dest)) for f in dest.rglob("*") if f.is_file())
    tap.check(r.returncode == 0 and left == [],
              "make uninstall takes every file away (%s)" % left, tail(r.stdout))
    shutil.rmtree(dest, ignore_errors=True)


def test_deb(tap):
    r = make("deb")
    debs = sorted(BUILD.glob("tfb-fcgi_*.deb"))
    tap.check(r.returncode == 0 and len(debs) == 1, "make deb builds one package",
              tail(r.stdout))
    if not debs:
        return
    deb = str(debs[0])
    deb_version = run([str(REPO / "deploy/version"), "--deb"], 10).stdout.strip()
    fields = {k: run(["dpkg-deb", "-f", deb, k], 10).stdout.strip()
              for k in ("Package", "Version", "Architecture", "Depends",
                        "Maintainer", "Description")}
    tap.check(fields["Package"] == "tfb-fcgi" and fields["Version"] == deb_version
              and os.path.basename(deb) == "tfb-fcgi_%s_%s.deb"
              % (deb_version, fields["Architecture"]),
              "its name, package and version (%s)" % fields["Version"], str(fields))
    deps = fields["Depends"]
    tap.check(all(d in deps for d in ("libfcgi0ldbl", "libpq5", "libjson-c5",
                                      "libc6 (>= 2."))
              and fields["Maintainer"] and fields["Description"],
              "Depends: %s" % deps)
    listing = run(["dpkg-deb", "-c", deb], 10).stdout
    files = sorted(line.split()[-1] for line in listing.splitlines()
                   if not line.startswith("d"))
    tap.check(files == ["./etc/default/tfb-fcgi", "./etc/nginx/snippets/tfb-fcgi.conf",
                        "./lib/systemd/system/tfb-fcgi.service",
                        "./lib/systemd/system/tfb-fcgi.socket",
                        "./usr/bin/tfb-fcgi", "./usr/bin/tfb-spawn",
                        "./usr/share/doc/tfb-fcgi/copyright",
                        "./usr/share/tfb-fcgi/create.sql",
                        "./usr/share/tfb-fcgi/roles.sql"],
              "its files, where Debian puts them", files)
    tap.check(all(" root/root " in line for line in listing.splitlines()),
              "all owned by root")
    d = Path(tempfile.mkdtemp(prefix="ops-deb."))
    run(["dpkg-deb", "-R", deb, str(d)], 30)
    unit = (d / "lib/systemd/system/tfb-fcgi.service").read_text()
    conffiles = (d / "DEBIAN/conffiles").read_text().split()
    tap.check("ExecStart=/usr/bin/tfb-spawn -- /usr/bin/tfb-fcgi\n" in unit,
              "its unit starts /usr/bin/tfb-spawn")
    tap.check(conffiles == ["/etc/default/tfb-fcgi",
                            "/etc/nginx/snippets/tfb-fcgi.conf"],
              "the files under /etc are conffiles (%s)" % conffiles)
    tap.check("BSD 2-Clause" in (d / "usr/share/doc/tfb-fcgi/copyright").read_text(),
              "the licence is Debian's copyright file")
    scripts = [s for s in ("postinst", "prerm", "postrm")
               if os.access(d / "DEBIAN" / s, os.X_OK)]
    tap.check(scripts == ["postinst", "prerm", "postrm"]
              and "enable tfb-fcgi.socket" in (d / "DEBIAN/postinst").read_text()
              and run(["sh", "-n", str(d / "DEBIAN/postinst")], 10).returncode == 0,
              "maintainer scripts: the socket unit enabled, valid sh")
    r = run([str(d / "usr/bin/tfb-spawn"), "--version"], 10)
    tap.check(r.returncode == 0 and r.stdout.startswith("tfb-spawn "),
              "its stripped tfb-spawn runs: %r" % r.stdout)
    shutil.rmtree(d, ignore_errors=True)


def body(tap):
    tap.need([SPAWN, APP])
    # The faults sent here leave no core file behind: every process this
    # one starts inherits the limit (a preexec_fn is unsafe with threads).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    version = run([str(REPO / "deploy/version")], 10).stdout.strip()
    tap.check(re.fullmatch(r"\d+\.\d+\.\d+(-\S+)?", version),
              "deploy/version: %r" % version)
    test_titles_and_version(tap, version)
    test_check(tap)
    test_ways_out(tap)
    test_reload_resize(tap)
    test_ignored(tap)
    test_usr2(tap)
    test_usr2_refused(tap)
    test_install(tap, version)
    test_deb(tap)


if __name__ == "__main__":
    main(body, deadline=500)
