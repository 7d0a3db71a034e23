"""tests/bench/scaling: the pool's own process-count scaling sweep.

(make bench runs the article's experiment, tests/bench/run; this is the
earlier sweep of the pool alone, kept for the axes it has that the
experiment does not.)

Sweeps worker counts, front servers, socket types, database connection
modes, nginx's FastCGI keep-conn and the workers' CPU placement over some
routes, measures nginx and lighttpd alone and pgbench with
the route's statements as anchors in the same run, and writes raw results,
charts and report.md under var/bench/<timestamp>/.  `make bench` runs it.
See --help; tests/bench/README.md explains the method and the
output.

This file is the command line: options, the plan, the checks before a
sweep, the output directory; benchlib/runner.py runs the sweep.  Its
launcher, tests/bench/scaling, runs it on /usr/bin/python3, the interpreter
whose modules deploy/deps installs (python3-matplotlib for the charts): a
python3 found first on PATH, such as a pyenv or a virtualenv one, would
not see them.
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

from ..kit import REPO, web
from .benchlib import chart, host, plan as planlib, report, runner as runlib

# The binary under test: make bench passes nothing, the stack uses
# build/tfb-fcgi unless APP names another.
APP = Path(os.environ.get("APP") or REPO / "build" / "tfb-fcgi")
SPAWN = REPO / "build" / "tfb-spawn"

QUICK = dict(routes="plaintext,db,queries:20,updates:20,fortunes", workers="1,2,4,8,16,32",
             concurrency="64", duration=1, warmup=1, reps=2,
             keepalives="0,1,8,32,64", cpu_affinity="none",
             pgbench_clients="wrk,cores", sequential=False, probe="cores",
             timing_rounds=3, timing_duration=3, slow_rounds=2, slow_peers=100)
FULL = dict(routes="plaintext,json,db,queries:20,fortunes,updates:20,cached:20",
            workers="1,2,4,8,16,32", concurrency="64", duration=3, warmup=2,
            reps=3, keepalives="0,1,8,32,64", cpu_affinity="none,slot",
            pgbench_clients="wrk,workers", sequential=True, probe="cores",
            timing_rounds=5, timing_duration=3, slow_rounds=3, slow_peers=100)

HELP = """\
Quick sweep (the default, about 6.5 minutes on 2 cores): routes /plaintext,
/db, /queries?queries=20, /updates?queries=20 and /fortunes (what the
report's targets read); nginx + unix socket + persistent connections
+ keepalive 32 (what deploy/stack ships) at 1, 2, 4, 8, 16 and 32
workers; at workers = cores the same with keepalive 0, 1, 8 and 64, to
compare keep-conn with none, and keepalive 0 at 32 workers too;
per-request connections, lighttpd and TCP at 8 workers; a light-load
probe (--probe) where every request wakes a worker; 2 repetitions of 1 s per point after a 1 s warm-up per
configuration; wrk -c 64.  Anchors every repetition: nginx alone,
lighttpd alone, pgbench for each database route with as many clients as
wrk's connections and as many as the machine's cores.  Every point where
a pool serves reads its status page before and after: the time per
request in each phase.  Then what the timing of those phases costs: 3
rounds of /db, 3 s each, with the responder's --timing off and on
(--timing-rounds, 0 for none); and what slow FastCGI peers cost: 2
rounds of /plaintext, 3 s each, without and with 100 connections to the
pool's socket that send one byte and stop (--slow-rounds, --slow-peers).

Every option has an environment variable (given in brackets), so that
`make bench BENCH_ROUTES=db` works; options win over variables, and
--file FILE reads BENCH_*=VALUE lines (a config file) under both.

  FULL=1 / --full      all 7 routes, every front x socket x db mode at every
                       worker count (keepalive 32), nginx/unix/persistent at
                       every keepalive and pinned at every worker count,
                       pgbench at every worker count; 3 s per point, 2 s
                       warm-up, 3 repetitions, 5 rounds of the timing's
                       cost (hours; --dry-run estimates)

Configurations, two ways:
  --configs LIST       exact list: FRONT/SOCKET/DBMODE[/keepN][/pinned][@W:W:...],
                       comma separated, e.g. nginx/unix/persistent/keep0@2,
                       nginx/tcp/persistent@8 (no @: every --workers count;
                       no /keepN: every --keepalives value, 32 unless given;
                       /pinned: tfb-spawn --cpu-affinity slot)
  --fronts, --sockets, --db-modes, --keepalives, --cpu-affinity LIST
                       every combination of these at every --workers count
                       (unnamed axes: nginx, unix, persistent, 32, none)
  --keepalives, --cpu-affinity alone shape the quick sweep: the main line
                       at every worker count runs at keepalive 32 if listed
                       (else the last one), the other keepalives at
                       workers = cores; each placement after the first
                       adds the main line again with that placement.

lighttpd keeps no FastCGI connections: its configurations ignore the
keepalive axis (their labels carry no /keepN).  /pinned configurations
run tfb-spawn with TFB_SPAWN_CPU_AFFINITY=slot (worker i on CPU i mod n);
the others with none.

Routes: plaintext json db queries[:N] fortunes updates[:N] cached[:N], or
paths such as /queries?queries=5.  N defaults to 20.  per-request
configurations run only the routes that touch the database.

Output: var/bench/<timestamp>/ (--out): results.csv, results.json,
chart-<route>.png, report.md, bench.log, pgbench/*.sql.
The stack's state (PostgreSQL's cluster, configs, logs) lives in --var,
var/bench-stack by default; PostgreSQL is started once for the sweep and
stopped at the end; the pool is restarted per configuration (and stopped
after it, to read how many requests each worker served from app.log),
the front server when the front, socket type or keepalive changes.
Ctrl-C stops everything and still writes what was measured.  It refuses
to start when --port or (with a TCP configuration) --fcgi-port is taken.
PGHOST set: that PostgreSQL is used instead of the embedded one (it must
already hold the hello_world data).
"""


def env_default(name, fallback):
    return os.environ.get(name, fallback)


def parse_args(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--file", default=os.environ.get("BENCH_FILE"))
    known, _ = pre.parse_known_args(argv)
    if known.file:
        host.read_file_settings(known.file)

    full = bool(os.environ.get("FULL", "").strip() not in ("", "0"))
    ap = argparse.ArgumentParser(
        prog="tests/bench/scaling", description="Process-count scaling "
        "experiments for tfb-fcgi, anchors measured in the same run.",
        epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", help="read BENCH_*=VALUE settings from FILE [BENCH_FILE]")
    ap.add_argument("--full", action="store_true", default=full,
                    help="the full sweep [FULL=1]")
    ap.add_argument("--routes", default=os.environ.get("BENCH_ROUTES"),
                    help=f"routes [BENCH_ROUTES; {QUICK['routes']}]")
    ap.add_argument("--workers", default=os.environ.get("BENCH_WORKERS"),
                    help=f"worker counts [BENCH_WORKERS; {QUICK['workers']}]")
    ap.add_argument("--configs", default=os.environ.get("BENCH_CONFIGS"),
                    help="exact configuration list [BENCH_CONFIGS]")
    ap.add_argument("--fronts", default=os.environ.get("BENCH_FRONTS"),
                    help="nginx,lighttpd [BENCH_FRONTS]")
    ap.add_argument("--sockets", default=os.environ.get("BENCH_SOCKETS"),
                    help="unix,tcp [BENCH_SOCKETS]")
    ap.add_argument("--db-modes", default=os.environ.get("BENCH_DB_MODES"),
                    help="persistent,per-request [BENCH_DB_MODES]")
    ap.add_argument("--concurrency", default=os.environ.get("BENCH_CONCURRENCY"),
                    help="wrk connections, a list [BENCH_CONCURRENCY; 64]")
    ap.add_argument("--duration", type=int, default=env_default("BENCH_DURATION", None),
                    help="seconds measured per point [BENCH_DURATION; 1, full 3]")
    ap.add_argument("--warmup", type=int, default=env_default("BENCH_WARMUP", None),
                    help="seconds of warm-up per configuration and anchor "
                         "[BENCH_WARMUP; 1, full 2]")
    ap.add_argument("--reps", type=int, default=env_default("BENCH_REPS", None),
                    help="repetitions [BENCH_REPS; 2, full 3]")
    ap.add_argument("--threads", type=int, default=int(env_default("BENCH_THREADS", 1)),
                    help="wrk threads [BENCH_THREADS; 1]")
    ap.add_argument("--pgbench-clients", default=os.environ.get("BENCH_PGBENCH_CLIENTS"),
                    help="pgbench client counts, a list of numbers, wrk (as many "
                         "as wrk's connections; 0 says the same), workers (as "
                         "many as each anchored configuration's workers), cores "
                         "[BENCH_PGBENCH_CLIENTS; wrk,cores, full wrk,workers]")
    ap.add_argument("--keepalives", default=os.environ.get("BENCH_KEEPALIVES"),
                    help="nginx upstream keepalive values, deploy/stack's "
                         "KEEPALIVE, 0 = no keep-conn [BENCH_KEEPALIVES; "
                         f"{QUICK['keepalives']}]")
    # The single value of earlier versions, kept so that their reproduce
    # lines still run: the same as --keepalives N.
    ap.add_argument("--keepalive", default=os.environ.get("BENCH_KEEPALIVE"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--sequential-anchors", choices=("0", "1"),
                    default=os.environ.get("BENCH_SEQUENTIAL_ANCHORS"),
                    help="1: pgbench also sends the selects of /queries and "
                         "/updates one after the other, besides pipelined "
                         "[BENCH_SEQUENTIAL_ANCHORS; 0, full 1]")
    ap.add_argument("--probe", default=os.environ.get("BENCH_PROBE"),
                    help="wrk connections of the light-load probe, /plaintext "
                         "on a fresh pool of each persistent configuration "
                         "without kept connections (nginx keep0, lighttpd) and "
                         "with more workers than that, to see which workers "
                         "the kernel wakes; 0: none [BENCH_PROBE; cores]")
    ap.add_argument("--timing-rounds", type=int,
                    default=env_default("BENCH_TIMING_ROUNDS", None),
                    help="rounds of what the timing costs: /db on nginx/unix, "
                         "keepalive 32, a worker per core, with the responder's "
                         "--timing off, then on (the order swapped every "
                         "round); 0: none [BENCH_TIMING_ROUNDS; 3, full 5]")
    ap.add_argument("--timing-duration", type=int,
                    default=env_default("BENCH_TIMING_DURATION", None),
                    help="seconds measured per point of those rounds "
                         "[BENCH_TIMING_DURATION; 3]")
    ap.add_argument("--slow-rounds", type=int,
                    default=env_default("BENCH_SLOW_ROUNDS", None),
                    help="rounds of what slow FastCGI peers cost: /plaintext on "
                         "nginx/unix, keepalive 32, a worker per core, without "
                         "and with --slow-peers connections that send one byte "
                         "and stop, each point --timing-duration seconds; 0: "
                         "none [BENCH_SLOW_ROUNDS; 2, full 3]")
    ap.add_argument("--slow-peers", type=int,
                    default=env_default("BENCH_SLOW_PEERS", None),
                    help="the slow peers held open in those rounds "
                         "[BENCH_SLOW_PEERS; 100]")
    ap.add_argument("--cpu-affinity", default=os.environ.get("BENCH_CPU_AFFINITY"),
                    help="worker placement, tfb-spawn's --cpu-affinity: none, "
                         "slot (a list) [BENCH_CPU_AFFINITY; none, full none,slot]")
    ap.add_argument("--port", type=int, default=int(env_default("BENCH_PORT", 8090)),
                    help="HTTP port on 127.0.0.1 [BENCH_PORT; 8090]")
    ap.add_argument("--fcgi-port", type=int,
                    default=int(env_default("BENCH_FCGI_PORT", 9090)),
                    help="FastCGI port for TCP configurations [BENCH_FCGI_PORT; 9090]")
    ap.add_argument("--var", default=env_default("BENCH_VAR", str(REPO / "var" / "bench-stack")),
                    help="the stack's state directory [BENCH_VAR; var/bench-stack]")
    ap.add_argument("--out", default=os.environ.get("BENCH_OUT"),
                    help="output directory [BENCH_OUT; var/bench/<timestamp>]")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the plan and its estimated time, run nothing")
    ap.add_argument("--report", metavar="DIR",
                    help="write DIR's report.md, CSV and charts again from its "
                    "results.json with this checkout's report code, measure nothing")
    a = ap.parse_args(argv)

    base = FULL if a.full else QUICK
    try:
        routes = [planlib.parse_route(s)
                  for s in re.split(r"[,\s]+", a.routes or base["routes"]) if s]
        routes = list(dict.fromkeys(routes))
        workers = planlib.parse_int_list(a.workers or base["workers"], "--workers")
        conc = planlib.parse_int_list(a.concurrency or base["concurrency"],
                                      "--concurrency")
        keep_text = a.keepalives or a.keepalive
        keeps = planlib.parse_keepalives(keep_text or base["keepalives"])
        affs = parse_choices(a.cpu_affinity or base["cpu_affinity"],
                             planlib.AFFINITIES, "--cpu-affinity")
        pg_clients = planlib.parse_pgbench_clients(
            a.pgbench_clients or base["pgbench_clients"])
        if a.configs:
            # A list without /keepN runs at deploy/stack's keepalive
            # unless the keepalives are named.
            configs = planlib.parse_configs(
                a.configs, workers,
                keeps if keep_text else [planlib.DEFAULT_KEEPALIVE],
                affs if a.cpu_affinity else ["none"])
        elif a.fronts or a.sockets or a.db_modes or a.full:
            axes = []
            for text, allowed, dflt, what in (
                    (a.fronts, planlib.FRONTS, ["nginx"], "--fronts"),
                    (a.sockets, planlib.SOCKETS, ["unix"], "--sockets"),
                    (a.db_modes, planlib.DB_MODES, ["persistent"], "--db-modes")):
                axes.append(parse_choices(text, allowed, what) if text
                            else list(allowed) if a.full else dflt)
            main = planlib.main_keepalive(keeps)
            if a.full:
                configs = full_configs(axes, workers, keeps, affs, keep_text,
                                       a.cpu_affinity)
            else:
                configs = planlib.product(
                    *axes, workers, keeps if keep_text else [main],
                    affs if a.cpu_affinity else ["none"])
        else:
            configs = quick_configs(workers, keeps, affs)
    except ValueError as e:
        ap.error(str(e))
    duration = a.duration if a.duration is not None else base["duration"]
    warmup = a.warmup if a.warmup is not None else base["warmup"]
    reps = a.reps if a.reps is not None else base["reps"]
    timing_rounds = a.timing_rounds if a.timing_rounds is not None \
        else base["timing_rounds"]
    timing_duration = a.timing_duration if a.timing_duration is not None \
        else base["timing_duration"]
    slow_rounds = a.slow_rounds if a.slow_rounds is not None else base["slow_rounds"]
    slow_peers = a.slow_peers if a.slow_peers is not None else base["slow_peers"]
    probe = a.probe or base["probe"]
    if probe == "cores":
        probe = os.cpu_count() or 1
    elif probe.isdigit():
        probe = int(probe)
    else:
        ap.error("--probe: want a number or cores")
    for name, v, lo in (("--duration", duration, 1), ("--warmup", warmup, 0),
                        ("--reps", reps, 1), ("--threads", a.threads, 1),
                        ("--timing-rounds", timing_rounds, 0),
                        ("--timing-duration", timing_duration, 1),
                        ("--slow-rounds", slow_rounds, 0),
                        ("--slow-peers", slow_peers, 1)):
        if v < lo:
            ap.error(f"{name}: at least {lo}")
    if not any(c.routes(routes) for c in configs):
        ap.error("no configuration has a route to run (per-request "
                 "configurations run database routes only)")
    p = planlib.Plan(routes=routes, configs=configs, concurrency=conc,
                     duration=duration, warmup=warmup, reps=reps,
                     threads=a.threads, pgbench_clients=tuple(pg_clients),
                     sequential=(a.sequential_anchors == "1"
                                 if a.sequential_anchors else base["sequential"]),
                     probe=probe, timing_rounds=timing_rounds,
                     timing_duration=timing_duration, slow_rounds=slow_rounds,
                     slow_peers=slow_peers)
    return a, p


def parse_choices(text, allowed, what):
    vals = [v for v in re.split(r"[,\s]+", text or "") if v]
    for v in vals:
        if v not in allowed:
            raise ValueError(f"{what}: {v!r}: want one of {', '.join(allowed)}")
    if not vals:
        raise ValueError(f"{what}: empty list")
    return list(dict.fromkeys(vals))


def quick_configs(workers, keepalives, affinities):
    """The main line at every worker count, the other axes at a few."""
    C = planlib.Config
    cores = os.cpu_count() or 1
    main = planlib.main_keepalive(keepalives)
    first = affinities[0]
    # One worker count for the other axes: 8 if the sweep has it.  (The
    # per-request mode at 2 workers costs another 20 s and says the same
    # thing: PostgreSQL's backend start-up is the limit, not the workers.)
    one = [w for w in (8,) if w in workers] or workers[len(workers) // 2:][:1]
    out = [C("nginx", "unix", "persistent", w, main, first) for w in workers]
    # Another placement is a whole line of its own: pinning matters most
    # where the workers outnumber the cores.
    for aff in affinities[1:]:
        out += [C("nginx", "unix", "persistent", w, main, aff) for w in workers]
    # Keep-conn against none where it should pay most: one worker per
    # core, each of which then holds several of nginx's connections.
    for k in keepalives:
        out.append(C("nginx", "unix", "persistent", cores, k, first))
        # And no keep-conn at the most workers: every request then wakes
        # one of many idle workers, so its light-load probe shows the order
        # they are woken in, and keep-conn is compared where workers
        # outnumber cores.
        if k == 0 and max(workers) > cores:
            out.append(C("nginx", "unix", "persistent", max(workers), 0, first))
    out += [C("nginx", "unix", "per-request", w, main, first) for w in one]
    out += [C("lighttpd", "unix", "persistent", w, None, first) for w in one]
    out += [C("nginx", "tcp", "persistent", w, main, first) for w in one]
    return planlib.dedupe(out)


def full_configs(axes, workers, keepalives, affinities, keep_named, aff_named):
    """Every front x socket x db mode at the main keepalive, then
    nginx/unix/persistent at every other keepalive and placement, each at
    every worker count.  Named keepalives or placements join the product
    instead."""
    C = planlib.Config
    main = planlib.main_keepalive(keepalives)
    out = planlib.product(*axes, workers, keepalives if keep_named else [main],
                          affinities if aff_named else [affinities[0]])
    out += [C("nginx", "unix", "persistent", w, k, affinities[0])
            for k in keepalives for w in workers]
    out += [C("nginx", "unix", "persistent", w, main, aff)
            for aff in affinities[1:] for w in workers]
    return planlib.dedupe(out)


def reproduce_command(a, p):
    """The command line that runs this plan again, every setting explicit
    (each label names its keepalive and placement)."""
    by_label = {}
    for c in p.configs:
        by_label.setdefault(c.label, []).append(str(c.workers))
    configs = ",".join(f"{k}@{':'.join(v)}" for k, v in by_label.items())
    routes = ",".join(r.key if not r.n else f"{r.name}:{r.n}" for r in p.routes)
    parts = ["tests/bench/scaling", "--routes", routes, "--configs", configs,
             "--cpu-affinity", "none",
             "--concurrency", ",".join(map(str, p.concurrency)),
             "--duration", str(p.duration), "--warmup", str(p.warmup),
             "--reps", str(p.reps), "--threads", str(p.threads),
             "--pgbench-clients", ",".join(map(str, p.pgbench_clients)),
             "--sequential-anchors", "1" if p.sequential else "0",
             "--probe", str(p.probe),
             "--timing-rounds", str(p.timing_rounds),
             "--timing-duration", str(p.timing_duration),
             "--slow-rounds", str(p.slow_rounds), "--slow-peers", str(p.slow_peers),
             "--port", str(a.port), "--fcgi-port", str(a.fcgi_port)]
    cmd = " ".join(shlex.quote(x) for x in parts)
    if os.environ.get("PGHOST"):
        cmd = f"PGHOST={shlex.quote(os.environ['PGHOST'])} " + cmd
    return cmd


def machine_info():
    info = host.machine_info({"nginx": ["/usr/sbin/nginx", "-v"],
                              "lighttpd": ["/usr/sbin/lighttpd", "-v"],
                              "wrk": ["wrk", "--version"],
                              "pgbench": ["pgbench", "--version"]})
    info["app"] = str(APP)
    return info


def check_ports(a, p):
    taken = []
    if not web.port_is_free(a.port):
        taken.append(f"--port {a.port}")
    if any(c.socket == "tcp" for c in p.configs) and not web.port_is_free(a.fcgi_port):
        taken.append(f"--fcgi-port {a.fcgi_port}")
    return taken


def preflight(a, p):
    problems = []
    if not os.access(APP, os.X_OK):
        problems.append(f"{APP} is missing: run make first")
    for tool in ("wrk", "pgbench", "psql"):
        if not host.on_path(tool):
            if tool == "psql":
                continue  # deploy/stack finds its own
            problems.append(f"{tool} not found: run deploy/deps bench")
    for f in {c.front for c in p.configs} | {"nginx", "lighttpd"}:
        if not os.access(f"/usr/sbin/{f}", os.X_OK):
            problems.append(f"/usr/sbin/{f} not found: run deploy/deps bench")
    # A tfb-spawn that predates --cpu-affinity ignores the variable that
    # asks for it: pinned lines would measure unpinned workers.
    if any(c.affinity != "none" for c in p.configs) and os.access(SPAWN, os.X_OK):
        usage = subprocess.run([str(SPAWN), "--help"], capture_output=True,
                               text=True).stdout
        if "--cpu-affinity" not in usage:
            problems.append(f"{SPAWN} has no --cpu-affinity: pinned "
                            "configurations need a newer build")
    # Found now rather than after the sweep, which may take an hour.
    no_charts = chart.missing()
    if no_charts:
        problems.append(f"{no_charts}: run deploy/deps bench")
    problems += [f"{t} is taken: stop what uses it or choose another port"
                 for t in check_ports(a, p)]
    return problems


def rewrite_report(outdir):
    """The report of an earlier run written again: its plan from the
    command it recorded (every setting explicit), its points as measured."""
    try:
        with open(os.path.join(outdir, "results.json")) as f:
            res = json.load(f)
        words = shlex.split(res["meta"]["command"])
        # Runs of earlier versions recorded "tests/bench/run".
        prog = "tests/bench/scaling" if "tests/bench/scaling" in words else "tests/bench/run"
        _, p = parse_args(words[words.index(prog) + 1:])
    except (OSError, ValueError, KeyError) as e:
        print(f"tests/bench/scaling: {outdir}: no report to rewrite: {e}", file=sys.stderr)
        return 1
    p.cores = res["meta"]["machine"].get("cores") or p.cores
    report.write_all(outdir, res["meta"], p, res["points"])
    print(f"bench: report rewritten: {outdir}/report.md")
    return 0


def main(argv):
    a, p = parse_args(argv)
    if a.report:
        return rewrite_report(a.report)
    if a.dry_run:
        print(f"{len(p.configs)} configurations, routes "
              f"{' '.join(r.path for r in p.routes)}, concurrency {p.concurrency}, "
              f"{p.duration} s per point after {p.warmup} s warm-up, {p.reps} reps")
        for c in p.configs:
            print(f"  {c.label} w={c.workers}: "
                  + (f"probe -c {p.probe}, " if p.probes(c) else "")
                  + " ".join(r.key for r in c.routes(p.routes)))
        if any(c.keepalive is None for c in p.configs):
            print("  (lighttpd keeps no FastCGI connections: the keepalive "
                  "axis does not apply to it)")
        for an in p.anchors():
            cl = p.anchor_clients(an) if an.route else p.concurrency
            print(f"  anchor {an.key} -c {','.join(map(str, cl))}")
        if p.timing_rounds:
            print(f"  timing cost: {p.timing_config('on').label} "
                  f"w={p.cores}: /db --timing off and on, {p.timing_rounds} "
                  f"round(s) of {p.timing_duration} s")
        if p.slow_points():
            print(f"  slow peers: {p.timing_config('on').label} w={p.cores}: "
                  f"/plaintext without and with {p.slow_peers} slow FastCGI "
                  f"peers, {p.slow_rounds} round(s) of {p.timing_duration} s")
        print(f"about {p.estimate_seconds() / 60:.1f} min")
        print(reproduce_command(a, p))
        return 0

    # One sweep at a time per state directory.
    started = host.start("tests/bench/scaling", preflight(a, p), a.var, a.out)
    if started is None:
        return 1
    lockf, out = started

    meta = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": reproduce_command(a, p),
            "argv": sys.argv, "machine": machine_info(),
            "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
            "settings": {"routes": [r.path for r in p.routes],
                         "configs": [f"{c.label}@{c.workers}" for c in p.configs],
                         "concurrency": p.concurrency, "duration_s": p.duration,
                         "warmup_s": p.warmup, "reps": p.reps,
                         "threads": p.threads,
                         "pgbench_clients": list(p.pgbench_clients),
                         "keepalives": sorted({c.keepalive for c in p.configs
                                               if c.keepalive is not None}),
                         "cpu_affinity": sorted({c.affinity for c in p.configs}),
                         "sequential_anchors": p.sequential, "probe": p.probe,
                         "timing_rounds": p.timing_rounds,
                         "timing_duration_s": p.timing_duration,
                         "slow_rounds": p.slow_rounds, "slow_peers": p.slow_peers,
                         "port": a.port,
                         "fcgi_port": a.fcgi_port, "var": a.var}}

    runner = runlib.Runner(a, p, out)

    status = host.guarded(runner.run, runner.stop_all, runner.say, meta)

    if runner.pg_version:
        meta["machine"]["postgresql"] = f"PostgreSQL {runner.pg_version}"
    meta["elapsed_s"] = time.monotonic() - runner.t0
    if runner.points:
        report.write_all(str(out), meta, p, runner.points)
    return host.finish(runner.say, runner.failures, out, meta["elapsed_s"], status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
