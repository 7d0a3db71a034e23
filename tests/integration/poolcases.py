"""poolcases.py: the pool's scenarios under load, for any worker.

pool_fake.py runs them with tests/spawn/supervisor/fake_worker.c, pool_real.py with
build/tfb-fcgi on PostgreSQL.  A worker is described by a kit.pool.Worker:
the command after "--", its environment, the URL path to load, a name.

Every scenario starts its own tfb-spawn (2 workers on a unix socket, log
level debug so that the log says when each worker accepts) and nginx in
front, loads it with wrk on loopback, acts, and checks what the issue
asks: replaced within a second, zero failed requests, pids changed...
"""

import os
import signal
import time

from ..kit import proc, web
from ..kit.cmd import wait_for
from ..kit.scene import Scene

N = 2  # workers: the machine has 2 cores
WRK_CONNS = 16


def start(sc, w, extra=(), n=N, env=None):
    """tfb-spawn on sc.sock + deploy/stack's nginx in front of it, for
    worker w; returns (spawn, the front's Stack)."""
    e = dict(w.env)
    e.update(env or {})
    args = ["-w", n, "--bind", sc.sock, "--socket-mode", "0666",
            "--log-level", "debug", "--graceful-timeout", "10s"]
    sp = sc.spawn(args + list(extra) + ["--"] + w.argv, env=e)
    if not sp.wait_ready(n, 30):
        raise RuntimeError("%d workers did not become ready: %s" % (n, sp.workers()))
    ng = sc.front()
    r = web.try_get(ng.url(w.path), timeout=10)
    if r.status != 200:
        raise RuntimeError("the pool does not answer %s: %s" % (w.path, r.summary()))
    return sp, ng


def sigkill(tap, w):
    with Scene(tap, "kill") as sc:
        sp, ng = start(sc, w)
        load = sc.wrk(ng.url(w.path), 5)
        time.sleep(1.5)
        before = sp.workers()
        victim = before[0]
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        back = wait_for(lambda: sp.replaced(victim, N), 5, step=0.005)
        took = time.monotonic() - t0
        tap.check(back and took < 1.0,
                  "%s: a SIGKILLed worker is replaced and accepting within a "
                  "second (%.3f s)" % (w.name, took), sp.workers())
        res = load.result()
        tap.check(res["requests"] > 1000 and res["failures"] <= 1,
                  "%s: SIGKILL under load: at most the request it held "
                  "failed (%s)" % (w.name, res["summary"]), res["out"])
        tap.check(len(sp.workers()) == N, "%s: the pool is back to %d workers"
                  % (w.name, N), sp.workers())


def sighup(tap, w):
    with Scene(tap, "hup") as sc:
        sp, ng = start(sc, w)
        load = sc.wrk(ng.url(w.path), 6)
        time.sleep(1.5)
        before = set(sp.workers())
        sp.signal(signal.SIGHUP)
        done = sp.wait_log(r"rolling restart done", 15)
        after = set(sp.workers())
        res = load.result()
        tap.check(done, "%s: SIGHUP: the rolling restart completes" % w.name,
                  sp.text()[-2000:])
        tap.check(len(after) == N and not (after & before),
                  "%s: SIGHUP: every worker pid changed (%s -> %s)"
                  % (w.name, sorted(before), sorted(after)))
        tap.check(res["requests"] > 1000 and res["failures"] == 0,
                  "%s: SIGHUP under load: zero failed requests (%s)"
                  % (w.name, res["summary"]), res["out"])


def resize(tap, w):
    with Scene(tap, "resize") as sc:
        sp, ng = start(sc, w)
        load = sc.wrk(ng.url(w.path), 7)
        time.sleep(1)
        counts = []
        for sig, want in ((signal.SIGTTIN, N + 1), (signal.SIGTTIN, N + 2),
                          (signal.SIGTTOU, N + 1), (signal.SIGTTOU, N)):
            sp.signal(sig)
            ok = wait_for(lambda: len(sp.workers()) == want
                                  and len(sp.ready_pids()) == want, 5)
            counts.append((signal.Signals(sig).name, want, len(sp.workers()), bool(ok)))
            time.sleep(0.5)
        res = load.result()
        tap.check(all(c[3] for c in counts),
                  "%s: SIGTTIN, SIGTTIN, SIGTTOU, SIGTTOU: the worker count "
                  "follows (%s)" % (w.name, ", ".join(
                      "%s->%d" % (c[0][3:], c[2]) for c in counts)))
        tap.check(res["requests"] > 1000 and res["failures"] == 0,
                  "%s: resizing under load: zero failed requests (%s)"
                  % (w.name, res["summary"]), res["out"])


def max_requests(tap, w):
    base, jitter = 300, 100
    with Scene(tap, "maxreq") as sc:
        sp, ng = start(sc, w, ["--max-requests", base,
                               "--max-requests-jitter", jitter])
        res = sc.wrk(ng.url(w.path), 5, connections=WRK_CONNS).result()
        recycled = [(int(p), int(n)) for p, n in
                    sp.lines(r"worker (\d+) \(slot \d+\) recycled after (\d+) requests")]
        own = {int(p): int(n) for p, n in
               sp.lines(r"worker (\d+) started \(slot \d+, max-requests (\d+)\)")}
        limits = list(own.values())
        tap.check(len(recycled) >= 4,
                  "%s: max-requests %d: workers recycle under load (%d times)"
                  % (w.name, base, len(recycled)))
        # The requests already read when the limit is reached are answered
        # (one per front connection at most), so a worker may serve a few
        # past its limit; never fewer.
        bad = [(p, n, own.get(p)) for p, n in recycled
               if p not in own or not own[p] <= n <= own[p] + WRK_CONNS]
        tap.check(recycled and not bad,
                  "%s: each recycled after its own limit in [%d, %d], at most %d past it"
                  % (w.name, base, base + jitter, WRK_CONNS),
                  ["(pid, served, its limit): %s" % bad[:20]])
        tap.check(len(set(limits)) > 1 and all(base <= x <= base + jitter
                                                for x in limits),
                  "%s: the limits are jittered (%d distinct of %d)"
                  % (w.name, len(set(limits)), len(limits)))
        tap.check(res["requests"] > 1000 and res["failures"] == 0,
                  "%s: recycling under load: zero failed requests (%s)"
                  % (w.name, res["summary"]), res["out"])
        tap.check(not sp.lines(r"after its start"),
                  "%s: no recycling counted as a crash loop" % w.name)


def sigterm(tap, w, db=None):
    """Graceful stop under load: the tree is gone within the deadline;
    with a database, no connection of the app is left."""
    with Scene(tap, "term") as sc:
        sp, ng = start(sc, w)
        load = sc.wrk(ng.url(w.path), 4)
        time.sleep(1.5)
        tree = [sp.pid] + sp.workers()
        t0 = time.monotonic()
        sp.signal(signal.SIGTERM)
        rc = sp.wait_exit(12)
        took = time.monotonic() - t0
        load.result()
        left = [p for p in tree if proc.alive(p)]
        tap.check(rc == 0 and took < 10,
                  "%s: SIGTERM under load: the supervisor exits 0 within the "
                  "10 s deadline (%s after %.2f s)" % (w.name, rc, took))
        tap.check(not left, "%s: no worker left after SIGTERM" % w.name, str(left))
        tap.check(not os.path.exists(sc.sock),
                  "%s: the socket it bound is removed" % w.name)
        if db is not None:
            n = wait_for(lambda: db.app_connections() == 0, 5, 0.2)
            tap.check(n, "%s: no connection of the app left in pg_stat_activity"
                      % w.name, "%d left" % db.app_connections())


def run_all(tap, w, db=None):
    for case in (sigkill, sighup, resize, max_requests):
        case(tap, w)
    sigterm(tap, w, db)
