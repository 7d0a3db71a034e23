#!/usr/bin/env python3
"""test_pool_auto.py: the pool finds its own size (tfb-spawn --pm).

A real pool behind nginx (deploy/stack's front server, a new FastCGI
connection per request) of tests/spawn/supervisor/fake_worker.c, whose
/slow?ms=20 waits 20 ms and reports the wait as time in the database:
what a worker whose database is far away shows the pool.  Such a worker
answers 50 requests a second whatever the CPU does, so that the test
holds on a machine shared with other work.

  * -w auto --workers-min 2 --workers-max 64 under wrk -c32 for 20 s
    (64: at a max of 32, the connections' count, a probe kept there
    starts a descent that stops 24 fake workers under load, and one
    request in 10,798 failed once as they stopped, a loss in the fake's
    libfcgi loop or nginx not yet traced):
    the pool grows (every change one log line, "pool size A -> B
    (auto): requests wait: ..."), to 16 workers at least, turning at
    most twice, and the load is served at several times what 2 workers
    could; the status page's "pool size" line says the target and why;
  * the load gone, it shrinks to --workers-min within 60 s, and the
    first request after that is answered in under 50 ms;
  * --pm ondemand --workers-min 0: no worker until a request comes; the
    first one starts a worker and is answered; --idle-timeout 2s later
    the pool is empty again;
  * SIGTTIN on an auto pool: one worker more, logged with its reason;
  * a pool that grows asks its old workers to let the front server's
    kept connections go only once every new worker accepts: real
    tfb-fcgi workers (/plaintext, no database) behind nginx with
    keepalive 32 under wrk -c32, two SIGTTINs; no request fails;
  * a pool that shrinks under load (the stack, PostgreSQL local, 8 -> 2
    under wrk -c64 on /queries) loses its workers at once, none killed
    at its stop deadline.

About 110 s; every wait is bounded.  Needs nginx and wrk; PostgreSQL for
the last case only.
"""

import os
import re
import signal
import time

from ..kit import APP_BIN, SPAWN_BIN, proc, web
from ..kit.cmd import run, wait_for
from ..kit.scene import Scene
from ..kit.tap import main

LOAD_S = 20
CONNS = 32
SLOW_MS = 20
IDLE_BOUND_S = 60
FIRST_MS = 50
CHANGE = re.compile(r"pool size (\d+) -> (\d+) \((\w+)\): (.*)$", re.M)


def changes(sp):
    """The log's size changes: [(from, to, mode, why)]."""
    return [(int(a), int(b), m, w) for a, b, m, w in CHANGE.findall(sp.text())]


def turns(chs):
    """How often the size changed direction."""
    dirs = [1 if b > a else -1 for a, b, _, _ in chs]
    return sum(1 for x, y in zip(dirs, dirs[1:]) if x != y)


def workers(sp):
    """The pool's workers: the supervisor's children but its status
    process ("tfb-spawn: status")."""
    return [p for p in sp.workers()
            if not (proc.cmdline(p) or [""])[0].startswith("tfb-spawn")]


def ready(sp, n, timeout):
    """Wait until exactly n workers run and all of them accept."""
    return wait_for(lambda: len(workers(sp)) == n and
                    set(workers(sp)) <= set(sp.ready_pids()), timeout)


def status_text(sc):
    r = run([str(SPAWN_BIN), "status", sc.path("run", "status.sock")], 10)
    return r.stdout if r.returncode == 0 else ""


def start(sc, args):
    fake = sc.fake_worker()
    sp = sc.spawn(["--bind", sc.sock, "--socket-mode", "0666", "--log-level", "debug",
                   "--status", sc.path("run", "status.sock")] + args + ["--", fake])
    return sp


def grows_and_shrinks(tap):
    with Scene(tap, "auto") as sc:
        sp = start(sc, ["-w", "auto", "--workers-min", "2", "--workers-max", "64"])
        if not tap.check(ready(sp, 2, 20), "-w auto: the pool starts at 2 workers "
                         "(the cores, within --workers-min 2 and --workers-max 64)",
                         sp.text()[-2000:]):
            return
        ng = sc.front()
        page = status_text(sc)
        tap.check("process manager:      auto" in page and
                  re.search(r"pool size: +2 workers, wanted 2 \(auto, 2\.\.64\); no change yet",
                            page),
                  "the status page: process manager auto, the size in one line",
                  page[:600])
        t0 = time.monotonic()
        res = sc.wrk(ng.url("/slow?ms=%d" % SLOW_MS), LOAD_S, connections=CONNS).result()
        loaded = changes(sp)
        top = max([b for _, b, _, _ in loaded] + [2])
        tap.note("under load: " + ", ".join("%d -> %d" % (a, b) for a, b, _, _ in loaded))
        tap.check(loaded and loaded[0][:3] == (2, 4, "auto") and
                  loaded[0][3].startswith("requests wait:"),
                  "the first change: 2 -> 4 (auto): requests wait: ... (%s)"
                  % (loaded[0][3][:100] if loaded else "none"), sp.text()[-3000:])
        tap.check(top >= 16, "under wrk -c%d, /slow?ms=%d: the pool grew to %d workers "
                  "(16 at least)" % (CONNS, SLOW_MS, top))
        tap.check(turns(loaded) <= 2, "turning %d times on the way (at most 2)"
                  % turns(loaded))
        two = 2 * 1000 / SLOW_MS
        tap.check(res["failures"] == 0 and res["rps"] > 4 * two,
                  "%.0f req/s, over 4 times what 2 workers answer (%.0f), none failed (%s)"
                  % (res["rps"], two, res["summary"]), res["out"])
        page = status_text(sc)
        m = re.search(r"^pool size: +(\d+) workers, wanted (\d+) \(auto, 2\.\.64\); "
                      r"(\d+) -> (\d+) \d+ s ago: (.+)$", page, re.M)
        tap.check(m and int(m.group(2)) == int(m.group(4)) == sp_target(sp),
                  "the status page: the workers, the target, the last change and why "
                  "(%s)" % (m.group(0)[:160] if m else "no line"), page[:800])

        end = time.monotonic()
        back = wait_for(lambda: sp_target(sp) == 2, IDLE_BOUND_S, step=0.5)
        took = time.monotonic() - end
        tap.check(back and len(workers(sp)) <= 4,
                  "idle: down to --workers-min 2 within %d s (%.1f s after the load)"
                  % (IDLE_BOUND_S, took), sp.text()[-2000:])
        wait_for(lambda: len(workers(sp)) == 2, 10)
        t1 = time.monotonic()
        r = web.try_get(ng.url("/slow?ms=0"), timeout=5)
        first = (time.monotonic() - t1) * 1000
        tap.check(r.status == 200 and first < FIRST_MS,
                  "the first request after that: %s in %.1f ms (under %d)"
                  % (r.status, first, FIRST_MS))
        shrink = [c for c in changes(sp) if c[1] < c[0]]
        tap.check(shrink and shrink[-1][3].startswith("at most"),
                  "the shrink says why: %s" % (shrink[-1][3][:100] if shrink else "none"))
        tap.note("load to idle: %.1f s in all" % (time.monotonic() - t0))


def sp_target(sp):
    """The target after the log's last change (the start's 2 if none)."""
    chs = changes(sp)
    return chs[-1][1] if chs else 2


def ondemand(tap):
    with Scene(tap, "ondemand") as sc:
        sp = start(sc, ["--pm", "ondemand", "--workers-max", "4", "--idle-timeout", "2s"])
        time.sleep(1)
        tap.check(sp.proc.poll() is None and workers(sp) == [],
                  "--pm ondemand: no worker before a request", sp.text()[-1500:])
        ng = sc.front()
        t0 = time.monotonic()
        r = web.try_get(ng.url("/slow?ms=0"), timeout=10)
        took = (time.monotonic() - t0) * 1000
        tap.check(r.status == 200 and sp.lines(r"pool size 0 -> 1 \(ondemand\): a connection "
                                               r"waits and no worker runs"),
                  "the first request starts a worker and is answered (%s, %.0f ms)"
                  % (r.status, took), sp.text()[-1500:])
        gone = wait_for(lambda: sp.lines(r"pool size 1 -> 0 \(ondemand\): at most 0 needed")
                        and workers(sp) == [], 10, step=0.2)
        tap.check(gone, "--idle-timeout 2s later the pool is empty again", sp.text()[-1500:])
        r = web.try_get(ng.url("/slow?ms=0"), timeout=10)
        tap.check(r.status == 200, "and the next request starts one again (%s)" % r.status)


def sigttin(tap):
    with Scene(tap, "ttin") as sc:
        sp = start(sc, ["-w", "auto", "--workers-min", "2", "--workers-max", "8"])
        ready(sp, 2, 20)
        sp.signal(signal.SIGTTIN)
        tap.check(sp.wait_log(r"pool size 2 -> 3 \(auto\): SIGTTIN", 5) and
                  ready(sp, 3, 10),
                  "SIGTTIN on an auto pool: one worker more, the log says why",
                  sp.text()[-1500:])


def asked_early(text):
    """The log's "the pool grew: N workers asked" lines that came before
    a worker started earlier said it accepts: [line]."""
    started, early = set(), []
    for line in text.splitlines():
        m = re.search(r"worker (\d+) started|worker (\d+) \(slot \d+\) accepting|"
                      r"the pool grew: \d+ workers asked", line)
        if not m:
            continue
        if m.group(1):
            started.add(m.group(1))
        elif m.group(2):
            started.discard(m.group(2))
        elif started:
            early.append(line)
    return early


def spreads(tap):
    """Kept connections follow a pool that grows (supervisor.c: resized,
    shed_due): the old workers are asked to let theirs go once every new
    one waits on the socket, so that nginx's new connections can reach
    the new ones.  Asked at the change, the old workers did so before
    the new ones were there and took them all back.  Real tfb-fcgi
    workers (/plaintext, no database) behind nginx keeping its
    connections; --pm dynamic --spare-min 0: the pool changes size on the
    signals alone."""
    with Scene(tap, "spread") as sc:
        sp = sc.spawn(["--bind", sc.sock, "--socket-mode", "0666", "--log-level", "debug",
                       "--status", sc.path("run", "status.sock"), "--pm", "dynamic",
                       "--spare-min", "0", "--spare-max", "8", "-w", "2",
                       "--workers-min", "2", "--workers-max", "8", "--", APP_BIN],
                      env={"PGHOST": sc.path("nodb")})
        if not tap.check(ready(sp, 2, 20), "real workers: 2 start", sp.text()[-1500:]):
            return
        ng = sc.front(keepalive=32)
        load = sc.wrk(ng.url("/plaintext"), 6, connections=32)
        time.sleep(2)
        for n in (3, 4):
            sp.signal(signal.SIGTTIN)
            sp.wait_log(r"pool size %d -> %d \(dynamic\): SIGTTIN" % (n - 1, n), 5)
        grown = ready(sp, 4, 10)
        asked = sp.wait_log(r"the pool grew: \d+ workers asked", 5)
        res = load.result()
        early = asked_early(sp.text())
        tap.check(grown and asked and not early,
                  "2 -> 4 under load, nginx keeping its connections: the old workers "
                  "asked to let them go only once every new worker accepts (%s)"
                  % ("; ".join(early)[:200] or "; ".join(sp.lines(
                      r"the pool grew: \d+ workers asked.*$"))[:200]), sp.text()[-2000:])
        tap.check(res["failures"] == 0, "and no request failed (%s)" % res["summary"],
                  res["out"])


def stops_under_load(tap):
    """A pool that shrinks under load (auto's descent, SIGTTOU) loses its
    workers at once, not at their stop deadline: a worker whose
    epoll_pwait always found something ready (a connection, its
    database's answer) never took the SIGTERM pending for it
    (epoll_pwait lets a signal in only when it returns for it), served
    on, and was killed 10 s later.  The stack (PostgreSQL, real workers,
    nginx keeping its connections) under wrk -c64 on /queries?queries=20:
    8 -> 2 by six SIGTTOUs."""
    with Scene(tap, "stops", stack={"workers": 8}) as sc:
        sup = sc.st.pool_pids()
        load = sc.wrk(sc.st.url("/queries?queries=20"), 10, connections=64)
        time.sleep(3)
        t0 = time.monotonic()
        for _ in range(6):
            os.kill(sup[0], signal.SIGTTOU)
            time.sleep(0.05)
        gone = wait_for(lambda: len(sc.st.worker_pids()) == 2, 12)
        took = time.monotonic() - t0
        res = load.result()
        killed = re.findall(r"still running after its stop deadline.*", sc.st.app_log())
        tap.check(gone and took < 3 and not killed,
                  "8 -> 2 under load: the six stopped workers left in %.1f s (3 at most), "
                  "none killed at its deadline (%s)" % (took, "; ".join(killed)[:200]),
                  sc.st.app_log()[-2000:])
        tap.check(res["failures"] == 0, "and no request failed (%s)" % res["summary"],
                  res["out"])


def body(tap):
    tap.need([SPAWN_BIN])
    grows_and_shrinks(tap)
    ondemand(tap)
    sigttin(tap)
    tap.need([APP_BIN])
    spreads(tap)
    stops_under_load(tap)


if __name__ == "__main__":
    main(body, deadline=240)
