"""pool_deploy.py: every way of running the pool serves every route.

  1. spawn-fcgi + tfb-spawn (our own: spawn-fcgi binds and forks the
     supervisor, which supervises the workers)
  2. plain spawn-fcgi -F N (no supervision at all)
  3. spawn-fcgi + multiwatch (respawn, nothing more)
  4. lighttpd's own spawning: bin-path + max-procs (the shipped
     configuration, its backend rendered as deploy/lighttpd/pool.conf.in's
     variant says)
  5. systemd: deploy/systemd/tfb-fcgi.{socket,service}, checked with
     systemd-analyze verify and run the way systemd would by
     systemd-socket-activate: the socket on fd 0 (StandardInput=socket),
     and on fd 3 with LISTEN_FDS (the unit without StandardInput=socket)

Each path runs build/tfb-fcgi with 2 workers on PostgreSQL, behind nginx
(lighttpd for 4), and must answer each TechEmpower route with a body the
verifier's checks accept, then stop leaving no worker behind.
"""

import os
import re
import shlex
import signal
import subprocess
import time

from ..kit import APP_BIN, REPO, SPAWN_BIN, STACK, proc, verify as tfb_verify, web
from ..kit.cmd import run, tail, wait_for
from ..kit.front import Front
from ..kit.pg import Database
from ..kit.pool import Spawn
from ..kit.scene import Scene
from ..kit.tap import main

N = 2
APP = str(APP_BIN)
ROUTES = [("/plaintext", "plaintext"), ("/json", "json"), ("/db", "db"),
          ("/queries?queries=5", "list"), ("/fortunes", "fortune"),
          ("/updates?queries=5", "list"), ("/cached-queries?count=5", "list")]


def route_problems(base):
    """(level, reason, url) problems of one GET per route."""
    out = []
    for path, kind in ROUTES:
        url = base + path
        r = web.try_get(url, timeout=10)
        if r.status != 200:
            out.append(("fail", "HTTP %s: %s" % (r.status, r.summary(120)), url))
            continue
        if kind == "plaintext":
            if b"hello, world!" not in r.body.lower():
                out.append(("fail", "body %r" % r.body[:40], url))
        elif kind == "fortune":
            out += tfb_verify.fortune_problems(r.body.decode("utf-8", "replace"), url)
        elif kind == "list":
            out += tfb_verify.verify_randomnumber_list(5, r.body, url)
        else:
            obj, p = tfb_verify.basic_body_verification(r.body, url)
            out += p
            if not p and kind == "json":
                out += tfb_verify.verify_helloworld_object(obj, url)
            elif not p:
                out += tfb_verify.verify_randomnumber_object(obj, url)
    return out


def app_pids():
    return [p for p in proc.all_pids()
            if proc.alive(p) and os.path.realpath(proc.exe(p)) == os.path.realpath(APP)]


def serve_and_stop(tap, name, base, stop, pids_before):
    """Check the routes at base, stop with stop(), check no worker left."""
    workers = [p for p in app_pids() if p not in pids_before]
    tap.check(len(workers) == N, "%s: %d workers run (%s)" % (name, N, workers))
    tap.problems("%s: every route answers" % name, route_problems(base))
    stop()
    left = wait_for(lambda: not [p for p in workers if proc.alive(p)], 15)
    tap.check(left, "%s: stopped, no worker left" % name,
              str([p for p in workers if proc.alive(p)]))


def spawn_fcgi_supervised(tap, db):
    with Scene(tap, "sf-spawn") as sc:
        before = app_pids()
        pidf, logf = sc.path("spawn.pid"), sc.path("spawn.log")
        # spawn-fcgi forks, execs tfb-spawn, and exits; tfb-spawn's own pid
        # file and log file are how it is found again.
        r = run(["spawn-fcgi", "-s", sc.sock, "-M", "0666", "--",
                     str(SPAWN_BIN), "-w", str(N), "-p", pidf, "-l", logf,
                     "--log-level", "debug", "--", APP], 20,
                    env=dict(os.environ, **db.pg))
        wait_for(lambda: os.path.exists(pidf), 5)
        pid = int(open(pidf).read().split()[0]) if os.path.exists(pidf) else 0
        sp = Spawn(log=logf, pid=pid)
        ready = sp.wait_ready(N, 20)
        tap.check(r.returncode == 0 and ready,
                  "spawn-fcgi + tfb-spawn: spawn-fcgi forks the supervisor, "
                  "which starts %d workers" % N, [r.stdout] + tail(sp.text(), 10))
        ng = sc.front()

        def stop():
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not proc.alive(pid), 12)

        try:
            tap.check("inherited (fd 0)" in sp.text(),
                      "spawn-fcgi + tfb-spawn: the socket comes on fd 0")
            # A worker dying within a second of its start counts as a crash
            # and is restarted after a backoff: kill one that has lived.
            time.sleep(1.2)
            victim = sp.workers()[0]
            os.kill(victim, signal.SIGKILL)
            tap.check(wait_for(lambda: sp.replaced(victim, N), 3),
                      "spawn-fcgi + tfb-spawn: a killed worker is replaced")
            serve_and_stop(tap, "spawn-fcgi + tfb-spawn", ng.url(""), stop, before)
            tap.check(not proc.alive(pid) and not os.path.exists(pidf),
                      "spawn-fcgi + tfb-spawn: SIGTERM stops the supervisor "
                      "and removes its pid file")
        finally:
            if pid and proc.alive(pid):
                proc.kill_tree(pid)


def spawn_fcgi_plain(tap, db):
    with Scene(tap, "sf-plain") as sc:
        before = app_pids()
        pidf = sc.path("pool.pid")
        r = run(["spawn-fcgi", "-F", str(N), "-s", sc.sock, "-M", "0666",
                     "-P", pidf, "--", APP], 20, env=dict(os.environ, **db.pg))
        pids = [int(x) for x in re.findall(r"\d+", open(pidf).read())] \
            if os.path.exists(pidf) else []
        tap.check(r.returncode == 0 and len(pids) == N,
                  "spawn-fcgi -F %d: forks %d workers and exits" % (N, N), r.stdout)
        ng = sc.front()

        def stop():
            for p in pids:
                try:
                    os.kill(p, signal.SIGTERM)
                except OSError:
                    pass

        try:
            serve_and_stop(tap, "spawn-fcgi -F %d" % N, ng.url(""), stop, before)
        finally:
            for p in pids:
                if proc.alive(p):
                    os.kill(p, signal.SIGKILL)


def spawn_fcgi_multiwatch(tap, db):
    multiwatch = tap.tool("multiwatch", "spawn-fcgi + multiwatch")
    if multiwatch is None:
        return
    with Scene(tap, "sf-multiwatch") as sc:
        before = app_pids()
        # -s TERM: multiwatch's default graceful signal is USR1, which our
        # worker does not treat as a stop request.
        mw = sc.popen(["spawn-fcgi", "-n", "-s", sc.sock, "-M", "0666", "--",
                       multiwatch, "-f", str(N), "-s", "TERM",
                       "--", APP],
                      env=dict(os.environ, **db.pg), stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        ok = wait_for(lambda: len(proc.children(mw.pid)) == N, 10)
        tap.check(ok, "spawn-fcgi + multiwatch: %d workers" % N)
        ng = sc.front()
        victim = proc.children(mw.pid)[0]
        os.kill(victim, signal.SIGKILL)
        tap.check(wait_for(lambda: len(proc.children(mw.pid)) == N
                                   and victim not in proc.children(mw.pid), 5),
                  "spawn-fcgi + multiwatch: a killed worker is replaced")
        time.sleep(0.5)  # the new worker connects to PostgreSQL

        def stop():
            mw.send_signal(signal.SIGTERM)
            mw.wait(15)

        serve_and_stop(tap, "spawn-fcgi + multiwatch", ng.url(""), stop, before)


def lighttpd_spawning(tap, db):
    with Scene(tap, "lighttpd") as sc:
        before = app_pids()
        env = ", ".join('"%s" => "%s"' % kv for kv in sorted(db.pg.items()))
        # As root it stays root: the workers it spawns run the build as is.
        lt = Front("lighttpd", sc.path("lt"), REPO / "deploy" / "lighttpd" / "pool.conf.in",
                   web.free_port(), USER_LINES="# workers spawned as the caller",
                   FCGI_BACKEND='"socket" => "%s", "bin-path" => "%s", "max-procs" => %d, '
                   '"bin-environment" => ( %s )' % (sc.path("lt", "run", "fcgi.sock"), APP,
                                                     N, env))
        sc.own(lt)
        try:
            lt.start()
            err = ""
        except Exception as e:
            err = str(e)
        up = not err and wait_for(lambda: len(app_pids()) - len(before) >= N, 15)
        tap.check(up, "lighttpd bin-path + max-procs %d: lighttpd spawns the "
                  "workers" % N, [err] + lt.log_tail(10))
        serve_and_stop(tap, "lighttpd bin-path + max-procs", lt.url(""), lt.stop, before)


def unit_settings(path):
    """ExecStart argv and Environment pairs of a unit file."""
    argv, env = [], {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        if k == "ExecStart":
            argv = shlex.split(v)
        elif k == "Environment":
            env.update(x.split("=", 1) for x in shlex.split(v))
    return argv, env


def systemd(tap, db):
    src = REPO / "deploy" / "systemd"
    with Scene(tap, "systemd") as sc:
        units = []
        for name in ("tfb-fcgi.socket", "tfb-fcgi.service"):
            text = (src / name).read_text()
            text = text.replace("/usr/local/bin/tfb-spawn", str(SPAWN_BIN))
            text = text.replace("/usr/local/bin/tfb-fcgi", APP)
            # RuntimeDirectory= is systemd's to make; here, ours.
            text = text.replace("/run/tfb-fcgi", sc.path("run"))
            units.append(sc.path(name))
            with open(units[-1], "w") as f:
                f.write(text)
        if tap.tool("systemd-analyze", "systemd-analyze verify"):
            r = run(["systemd-analyze", "verify"] + units, 60)
            tap.check(r.returncode == 0 and not r.stdout.strip(),
                      "systemd-analyze verify tfb-fcgi.socket tfb-fcgi.service",
                      r.stdout)
        if not tap.tool("systemd-socket-activate", "systemd-socket-activate"):
            return
        argv, env = unit_settings(units[1])
        env.update(db.pg)
        tap.check("StandardInput=socket" in open(units[1]).read()
                  and argv[0] == str(SPAWN_BIN),
                  "the service runs tfb-spawn with StandardInput=socket")
        # systemd-socket-activate passes only the variables named by -E.
        setenv = []
        for k, v in sorted(env.items()):
            setenv += ["-E", "%s=%s" % (k, v)]
        setenv += ["-E", "TFB_SPAWN_WORKERS=%d" % N, "-E", "TFB_SPAWN_LOG_LEVEL=debug"]
        # StandardInput=socket: the socket on fd 0 and no LISTEN_FDS.
        stdin_socket = ["/bin/sh", "-c", 'exec env -u LISTEN_FDS -u LISTEN_PID '
                        '-u LISTEN_FDNAMES "$@" <&3 3<&-', "sh"]
        for how, wrap in (("StandardInput=socket, fd 0", stdin_socket),
                          ("LISTEN_FDS, fd 3", [])):
            log = open(sc.path("spawn-%d.log" % len(wrap)), "ab")
            before = app_pids()
            if os.path.exists(sc.sock):
                os.unlink(sc.sock)
            act = sc.popen(["systemd-socket-activate", "-l", sc.sock] + setenv
                           + wrap + argv, stdout=log, stderr=log)
            wait_for(lambda: os.path.exists(sc.sock), 5)
            # As the unit's SocketGroup and SocketMode would let nginx's
            # workers (www-data as root) connect.
            os.chmod(sc.sock, 0o666)
            ng = sc.front()
            r = web.try_get(ng.url("/plaintext"), timeout=15)  # activates it
            ok = wait_for(lambda: len(app_pids()) - len(before) == N, 10)
            text = open(log.name, errors="replace").read()
            tap.check(r.status == 200 and ok
                      and ("inherited (fd 0)" if wrap else "LISTEN_FDS (fd 3)") in text,
                      "systemd (%s): activated on the first request" % how,
                      [r.summary()] + tail(text, 10))

            def stop(p=act):
                p.send_signal(signal.SIGTERM)
                p.wait(15)

            st = run([str(SPAWN_BIN), "status", env["TFB_SPAWN_STATUS"]], 10)
            tap.check(st.returncode == 0 and
                      re.search(r"^total processes: +%d$" % N, st.stdout, re.M),
                      "systemd (%s): the status page on the unit's socket" % how,
                      tail(st.stdout, 5))
            serve_and_stop(tap, "systemd (%s)" % how, ng.url(""), stop, before)
            ng.call("front", "stop")


def body(tap):
    tap.need([SPAWN_BIN, APP_BIN, STACK])
    with Database(tap) as db:
        for case in (spawn_fcgi_supervised, spawn_fcgi_plain, spawn_fcgi_multiwatch,
                     lighttpd_spawning, systemd):
            case(tap, db)


if __name__ == "__main__":
    main(body, deadline=400)
