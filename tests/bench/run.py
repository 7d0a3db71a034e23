"""tests/bench/run: the article's experiment (make bench).

This project's pool (tfb-fcgi under tfb-spawn, behind nginx) against the
article's Python subjects (Flask with a connection per request, Flask
with one persistent connection per process, FastAPI with an asyncpg
pool; tests/bench/subjects/), over process counts past the cores, with
PostgreSQL at several distances: its unix socket (the reference), and as
root in a network namespace of its own behind a delay line.  Writes
results.json, results.csv, the charts and report.md, which opens with the
verdict, under var/bench/<timestamp>/.  tests/bench/README.md explains
the method and the output; --help lists the options.

This file is the command line: options, the plan, the checks before a
run, the output directory; benchlib/sweep.py runs it, benchlib/writeup.py
writes it up.  Its launcher, tests/bench/run, runs it on /usr/bin/python3,
whose modules deploy/deps installs (matplotlib, and the subjects' Flask,
FastAPI, gunicorn, uvicorn, psycopg2, asyncpg): a python3 found first on
PATH (pyenv, a virtualenv) would not see them.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ..kit import NETDELAY, REPO, web
from .benchlib import chart, experiment as X, sched as schedlib, subjects, sweep
from .benchlib import figures, host, writeup

APP = Path(os.environ.get("APP") or REPO / "build" / "tfb-fcgi")

QUICK = dict(subjects="tfb-fcgi,flask,fastapi,flask-per-request", workers="2,8,16,32",
             subject_workers="2,8,32", local_workers="2,16", few="8",
             db_rtt="local,0,1ms", routes_at=None, routes="db", concurrency="64", reps=2,
             duration=2,
             warmup=1, open="0", sched="autogroup", placement="shared")
FULL = dict(subjects="tfb-fcgi,flask,fastapi,flask-per-request,tfb-fcgi-per-request",
            workers="1,2,4,8,16,32,64", subject_workers="2,4,8,16,32,64", local_workers=None,
            few="4,32", db_rtt="local,0,0.2ms,1ms,5ms", routes_at="0,1ms",
            routes="db,fortunes,queries:20", concurrency="16,64,256", reps=5, duration=5,
            warmup=1, open="0.5,0.75,0.9,1,1.1", sched="autogroup,flat,tiers",
            placement="shared,split")

HELP = """\
The quick run (make bench; about 3.5 minutes on 2 cores): /db with 64
connections; this pool at 2, 8, 16 and 32 processes, Flask (persistent),
FastAPI at 2, 8 and 32, Flask with a connection per request at 8; the
database at 0 ms and 1 ms (as root), and this pool at local (its unix
socket) at 2 and 16; 2 repetitions of 2 s per point.

The full run (FULL=1 make bench; about 83 minutes): /db with 64
connections for every subject at 1 to 64 processes (the article's
subjects from 2) with the database at 0, 0.2, 1 and 5 ms, this pool at
local too; /fortunes and /queries?queries=20 at 4 and 32 processes at 0
and 1 ms; 16 and 256 connections, the per-request mode of Flask and of
this pool, the scheduler settings (flat, a cgroup per tier) and the split
CPU placement, each at 4 and 32 processes at 1 ms (the per-request mode,
the scheduler and the placement at 0 ms too); an open loop at 50% to 110%
of each subject's best rate at 1 ms; 5 repetitions of 5 s per point.

"auto" among the process counts (--workers, --few, --local-workers) is
this pool sizing itself (tfb-spawn -w auto): before each of its points
it is loaded until its size holds, and the report's targets set it
beside the best fixed count.  Each auto point costs about 25 s more, so
neither run has it by default: make bench BENCH_WORKERS=2,8,16,32,auto
adds it to the quick run (about a minute more); the full run with auto
on every line and the routes at local too (about 120 minutes):
FULL=1 make bench BENCH_WORKERS=1,2,4,8,16,32,64,auto BENCH_FEW=4,32,auto
BENCH_ROUTES_AT=local,0,1ms.

Every option has an environment variable (in brackets), so that
`make bench BENCH_DB_RTT=0,5ms` works; options win over variables, and
--file FILE reads BENCH_*=VALUE lines under both.  --dry-run prints the
plan and its estimate.  Not root: no network namespace, so the database
is local only (the first lines of the output and the report say so).

Output: var/bench/<timestamp>/ (--out): report.md, results.json,
results.csv, chart-*.png, bench.log.  `--report DIR` writes them again
from DIR/results.json, measuring nothing.
"""


def parse_args(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--file", default=os.environ.get("BENCH_FILE"))
    known, _ = pre.parse_known_args(argv)
    if known.file:
        host.read_file_settings(known.file)
    full = os.environ.get("FULL", "").strip() not in ("", "0")
    ap = argparse.ArgumentParser(prog="tests/bench/run", epilog=HELP,
                                 description="The article's experiment: this pool against "
                                 "Flask and FastAPI, the database a hop away.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    ap.add_argument("--file", help="read BENCH_*=VALUE settings from FILE [BENCH_FILE]")
    ap.add_argument("--full", action="store_true", default=full, help="the full run [FULL=1]")
    ap.add_argument("--subjects", default=env("BENCH_SUBJECTS"),
                    help="subjects [BENCH_SUBJECTS; %s]" % ", ".join(subjects.SUBJECTS))
    ap.add_argument("--workers", default=env("BENCH_WORKERS"),
                    help=f"process counts [BENCH_WORKERS; {QUICK['workers']}, full "
                         f"{FULL['workers']}]")
    ap.add_argument("--subject-workers", default=env("BENCH_SUBJECT_WORKERS"),
                    help="the article's subjects' counts, among --workers "
                         f"[BENCH_SUBJECT_WORKERS; {QUICK['subject_workers']}, full all]")
    ap.add_argument("--local-workers", default=env("BENCH_LOCAL_WORKERS"),
                    help="this pool's counts at local [BENCH_LOCAL_WORKERS; "
                         f"{QUICK['local_workers']}, full all]")
    ap.add_argument("--few", default=env("BENCH_FEW"),
                    help="the counts of the secondary parts (other routes, loads, the "
                         f"per-request mode...) [BENCH_FEW; {QUICK['few']}, full "
                         f"{FULL['few']}]")
    ap.add_argument("--db-rtt", default=env("BENCH_DB_RTT"),
                    help="the database's distances: local (its unix socket) and round "
                         "trips such as 0, 0.2ms, 1ms (root only) [BENCH_DB_RTT; "
                         f"{QUICK['db_rtt']}, full {FULL['db_rtt']}]")
    ap.add_argument("--routes-at", default=env("BENCH_ROUTES_AT"),
                    help="the distances the other routes run at [BENCH_ROUTES_AT; every "
                         f"one, full {FULL['routes_at']}]")
    ap.add_argument("--routes", default=env("BENCH_ROUTES"),
                    help=f"routes, the first is the headline's [BENCH_ROUTES; "
                         f"{QUICK['routes']}, full {FULL['routes']}]")
    ap.add_argument("--concurrency", default=env("BENCH_CONCURRENCY"),
                    help="closed-loop connections, 64 the main load [BENCH_CONCURRENCY; "
                         f"{QUICK['concurrency']}, full {FULL['concurrency']}]")
    for name, what in (("reps", "repetitions"), ("duration", "seconds per point"),
                       ("warmup", "seconds of warm-up per pool start")):
        ap.add_argument("--" + name, type=int, default=env("BENCH_" + name.upper()),
                        help=f"{what} [BENCH_{name.upper()}; {QUICK[name]}, full {FULL[name]}]")
    ap.add_argument("--open", default=env("BENCH_OPEN"),
                    help="open loop: shares of each subject's best rate, 0 for none "
                         f"[BENCH_OPEN; {QUICK['open']}, full {FULL['open']}]")
    ap.add_argument("--sched", default=env("BENCH_SCHED"),
                    help="scheduler settings, the first is the main one: autogroup (as "
                         "found), flat, tiers [BENCH_SCHED; autogroup, full "
                         f"{FULL['sched']}]")
    ap.add_argument("--placement", default=env("BENCH_PLACEMENT"),
                    help="CPU placements, the first the main one: shared, split "
                         f"[BENCH_PLACEMENT; shared, full {FULL['placement']}]")
    ap.add_argument("--port", type=int, default=int(env("BENCH_PORT", 8090)),
                    help="HTTP port on 127.0.0.1 [BENCH_PORT; 8090]")
    ap.add_argument("--var", default=env("BENCH_VAR", str(REPO / "var" / "bench-stack")),
                    help="the stack's state directory [BENCH_VAR; var/bench-stack]")
    ap.add_argument("--out", default=env("BENCH_OUT"),
                    help="output directory [BENCH_OUT; var/bench/<timestamp>]")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the plan and its estimated time, run nothing")
    ap.add_argument("--report", metavar="DIR",
                    help="write DIR's report, CSV and charts again from its results.json")
    ap.add_argument("--sync-readme", action="store_true",
                    help="quote tests/bench/example's verdict in README.md and "
                         "tests/bench/README.md again (after a new example)")
    a = ap.parse_args(argv)
    try:
        return a, make_plan(a)
    except ValueError as e:
        ap.error(str(e))


def ints(text, what, auto=False):
    """A list of process counts; with auto, "auto" among them (X.AUTO)."""
    return X.scaling.parse_int_list(text, what, X.AUTO if auto else None) if text else None


def choices(text, allowed, what):
    vals = [v for v in re.split(r"[,\s]+", text or "") if v]
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise ValueError(f"{what}: want some of {', '.join(allowed)}")
    return list(dict.fromkeys(vals))


def make_plan(a):
    base = FULL if a.full else QUICK

    def pick(name):
        v = getattr(a, name)
        # The subsets of the process counts follow the counts given.
        if v is None and ((a.workers and name in ("subject_workers", "local_workers"))
                          or (a.db_rtt and name == "routes_at")):
            return None
        return base[name] if v is None else v
    dists = X.parse_distances(pick("db_rtt"))
    if os.geteuid() != 0:
        dists = [d for d in dists if d.rtt_us is None] or [X.Distance("local", None)]
    routes = list(dict.fromkeys(X.parse_route(s) for s in
                                re.split(r"[,\s]+", pick("routes")) if s))
    shares = [float(x) for x in re.split(r"[,\s]+", pick("open")) if x]
    if any(not 0 <= x <= 10 for x in shares):
        raise ValueError("--open: shares between 0 and 10")
    reps, duration, warmup = (int(pick(n)) for n in ("reps", "duration", "warmup"))
    if reps < 1 or duration < 1 or warmup < 0:
        raise ValueError("--reps and --duration at least 1, --warmup at least 0")
    p = X.Plan(subjects=subjects.parse_subjects(pick("subjects")),
               workers=ints(pick("workers"), "--workers", auto=True),
               distances=dists, routes=routes,
               concurrency=ints(pick("concurrency"), "--concurrency"),
               reps=reps, duration=duration, warmup=warmup,
               open_shares=[x for x in shares if x > 0],
               scheds=choices(pick("sched"), X.SCHEDS, "--sched"),
               placements=choices(pick("placement"), X.PLACEMENTS, "--placement"),
               few=ints(pick("few"), "--few", auto=True),
               subject_workers=ints(pick("subject_workers"), "--subject-workers"),
               local_workers=ints(pick("local_workers"), "--local-workers", auto=True),
               routes_at=X.parse_distances(pick("routes_at")) if pick("routes_at") else None,
               cores=os.cpu_count() or 1)
    if not p.cells:
        raise ValueError("the plan has no point to measure")
    p.kind = "full" if a.full else "quick"
    return p


def plan_dict(a, p):
    """The plan as results.json records it: what the report needs."""
    return {"kind": p.kind, "subjects": p.subjects, "workers": p.workers,
            "distances": [d.key for d in p.distances],
            "routes": [r.key for r in p.routes], "paths": [r.path for r in p.routes],
            "concurrency": p.concurrency, "main_load": p.main_load.key, "reps": p.reps,
            "duration": p.duration, "warmup": p.warmup, "open": p.open_shares,
            "scheds": p.scheds, "placements": p.placements, "few": p.few,
            "subject_workers": p.subject_workers, "local_workers": p.local_workers,
            "routes_at": p.routes_at and [d.key for d in p.routes_at],
            "cells": len(p.cells), "estimate_s": round(p.estimate_seconds())}


def reproduce_command(a, p):
    def lst(v):
        return ",".join(X.wlabel(x) if isinstance(x, int) else str(x) for x in v)

    parts = ["tests/bench/run", "--subjects", lst(p.subjects), "--workers", lst(p.workers),
             "--db-rtt", ",".join(d.key for d in p.distances),
             "--routes", ",".join(r.key if not r.n else f"{r.name}:{r.n}" for r in p.routes),
             "--concurrency", lst(p.concurrency), "--reps", str(p.reps),
             "--duration", str(p.duration), "--warmup", str(p.warmup),
             "--open", lst(p.open_shares) or "0", "--sched", lst(p.scheds),
             "--placement", lst(p.placements), "--port", str(a.port)]
    for opt, v in (("--few", p.few), ("--subject-workers", p.subject_workers),
                   ("--local-workers", p.local_workers),
                   ("--routes-at", p.routes_at and [d.key for d in p.routes_at])):
        if v:
            parts += [opt, lst(v)]
    return ("FULL=1 " if p.kind == "full" else "") + " ".join(shlex.quote(x) for x in parts)


def machine_info():
    info = host.machine_info({"nginx": ["/usr/sbin/nginx", "-v"], "wrk": ["wrk", "--version"],
                              "python": [subjects.PYTHON, "--version"]})
    info["virtual"] = schedlib.virtual()
    return info


def subject_versions():
    code = ("import importlib.metadata as m\n"
            "for p in ('flask', 'gunicorn', 'psycopg2', 'fastapi', 'uvicorn', 'asyncpg',"
            " 'uvloop', 'httptools'):\n"
            "    try: print(p, m.version(p))\n"
            "    except Exception: print(p, 'missing')\n")
    r = subprocess.run([subjects.PYTHON, "-c", code], capture_output=True, text=True,
                       timeout=30)
    v = dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)
    return {"flask": f"Flask {v.get('flask')}, gunicorn {v.get('gunicorn')} sync, "
                     f"psycopg2 {v.get('psycopg2')}",
            "flask-per-request": "the same, TFB_SUBJECT_DB=per-request",
            "fastapi": f"FastAPI {v.get('fastapi')}, gunicorn {v.get('gunicorn')}, "
                       f"uvicorn {v.get('uvicorn')} (uvloop {v.get('uvloop')}, httptools "
                       f"{v.get('httptools')}), asyncpg {v.get('asyncpg')}"}, v


def preflight(a, p):
    problems = []
    if not os.access(APP, os.X_OK):
        problems.append(f"{APP} is missing: run make first")
    for tool in ("wrk",):
        if not host.on_path(tool):
            problems.append(f"{tool} not found: run deploy/deps bench")
    if not os.access("/usr/sbin/nginx", os.X_OK):
        problems.append("/usr/sbin/nginx not found: run deploy/deps bench")
    if p.network and not NETDELAY.exists():
        problems.append(f"{NETDELAY} is missing: make bench builds it")
    if p.open_shares and not sweep.OPENLOOP.exists():
        problems.append(f"{sweep.OPENLOOP} is missing: make bench builds it")
    _, versions = subject_versions()
    need = {"sync": ("flask", "gunicorn", "psycopg2"),
            "asgi": ("fastapi", "gunicorn", "uvicorn", "asyncpg")}
    for s in p.subjects:
        for mod in need.get(subjects.SUBJECTS[s].kind, ()):
            if versions.get(mod, "missing") == "missing":
                problems.append(f"{s}: {subjects.PYTHON} has no {mod}: run deploy/deps bench")
    s = schedlib.Scheduler()
    for sc in p.scheds:
        for pl in p.placements:
            why = s.available(sc, pl)
            if why:
                problems.append(why)
    no_charts = chart.missing()
    if no_charts:
        problems.append(f"{no_charts}: run deploy/deps bench")
    if not web.port_is_free(a.port):
        problems.append(f"--port {a.port} is taken: stop what uses it or choose another")
    return sorted(set(problems), key=problems.index)


def first_notes(p, asked):
    """What the report and the output say first: an axis left out."""
    if os.geteuid() != 0 and any(d.rtt_us is not None for d in asked):
        return ["Not root: the database-distance axis (BENCH_DB_RTT) is left out, as it "
                "needs network namespaces; the database is local (its unix socket) for "
                "every subject. Run as root for the article's setting, the database a hop "
                "away."]
    return []


def dry_run(a, p):
    print(f"{p.kind} run: {len(p.cells)} cells, {p.reps} repetitions of {p.duration} s, "
          f"{p.warmup} s warm-up per pool start; {p.points()} points")
    for b in p.blocks():
        cells = ", ".join(f"{c.distance.short} {c.route.key} {c.load.key}" for c in b.cells)
        extra = "" if (b.sched, b.placement) == (p.scheds[0], p.placements[0]) else \
            f" [{b.sched}, {b.placement}]"
        print(f"  {b.subject} w={X.wlabel(b.workers)}{extra}: {cells}")
    for s, d in p.open_plan():
        print(f"  open loop: {s} at its best count, {d.short}, "
              + ", ".join(f"{round(100 * x)}%" for x in p.open_shares)
              + f" of its best rate, {p.open_connections} connections")
    print(f"about {p.estimate_seconds() / 60:.1f} min")
    print(reproduce_command(a, p))


READMES = ((REPO / "README.md", "tests/bench/example/report.md"),
           (REPO / "tests" / "bench" / "README.md", "example/report.md"))


def sync_readmes():
    try:
        res = json.loads((REPO / "tests" / "bench" / "example" / "results.json").read_text())
        for path, link in READMES:
            changed = writeup.sync_readme(path, res, link)
            print(f"bench: {path}: {'quoted the example again' if changed else 'up to date'}")
    except (OSError, ValueError, KeyError) as e:
        print(f"tests/bench/run: --sync-readme: {e}", file=sys.stderr)
        return 1
    return 0


def rewrite_report(outdir):
    try:
        with open(os.path.join(outdir, "results.json")) as f:
            res = json.load(f)
        meta, points = res["meta"], res["points"]
        if "plan" not in meta:
            raise KeyError("no plan: a run of tests/bench/scaling? use its --report")
    except (OSError, ValueError, KeyError) as e:
        print(f"tests/bench/run: {outdir}: no report to rewrite: {e}", file=sys.stderr)
        return 1
    writeup.write_all(outdir, meta, points)
    print(f"bench: report rewritten: {outdir}/report.md")
    return 0


METHOD = ("each subject behind the same nginx (deploy/nginx/nginx.conf.in), the load "
          "on loopback from this machine, PostgreSQL made fresh for the run "
          "(deploy/stack's settings) and loaded by `deploy/stack pg load`; per block, "
          "the subject's pool started afresh and warmed up on its routes, then its cells "
          "measured one after the other, the distances by swapping the cable in front of "
          "the database (the connections stay); closed loop: wrk, its latency histogram "
          "merged over the repetitions; open loop: tests/bench/openloop.c; CPU from "
          "/proc around each window; blocks interleaved across repetitions.")


def main(argv):
    figures.cache_dir()
    a, p = parse_args(argv)
    if a.report:
        return rewrite_report(a.report)
    if a.sync_readme:
        return sync_readmes()
    asked = X.parse_distances(a.db_rtt or (FULL if a.full else QUICK)["db_rtt"])
    notes = first_notes(p, asked)
    for n in notes:
        print(f"bench: {n}")
    if a.dry_run:
        dry_run(a, p)
        return 0
    # One sweep at a time per state directory.
    started = host.start("tests/bench/run", preflight(a, p), a.var, a.out)
    if started is None:
        return 1
    lockf, out = started
    logf = open(out / "bench.log", "w")

    def say(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()
    for n in notes:
        logf.write(f"bench: {n}\n")
    versions, _ = subject_versions()
    meta = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": reproduce_command(a, p), "plan": plan_dict(a, p),
            "machine": machine_info(), "notes": notes,
            "subject_versions": {s: versions.get(s) for s in p.subjects},
            "scheduler": schedlib.settings(), "method": METHOD,
            "loadavg": " ".join(open("/proc/loadavg").read().split()[:3])}
    sw = sweep.Sweep(a, p, out, say)

    def stop():
        left = sw.stop_all()
        if left:
            say(f"bench: warning: left behind: {'; '.join(left)}")
    status = host.guarded(sw.run, stop, say, meta)
    meta["elapsed_s"] = round(time.monotonic() - sw.t0, 1)
    meta["calibration"] = sw.db.calibration
    meta["checks"] = sw.checks
    meta["scheduler_used"] = {f"{k[0]}; {k[1]}": v for k, v in sw.scheduler_used.items()}
    if sw.points:
        writeup.write_all(str(out), meta, sw.points)
    return host.finish(say, sw.failures, out, meta["elapsed_s"], status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
