"""test_bench_smoke.py: a tiny run of tests/bench/scaling (the pool's own
scaling sweep), checked for shape.

Three routes (/plaintext, /db, /queries?queries=2), 1 s per point, one
repetition, with a PostgreSQL of its own in a temporary directory, over
four configurations that reach every section of the report: no keep-conn
at 1 and 4 workers
(a line to compare worker counts on, and the light-load probe at 4),
keepalive 8 at 1 worker (keep-conn against none) and the same pinned
(pinned against free), pgbench with 1 client (like for like at 1 worker),
then 2 rounds of what the timing costs.
Checks that every output exists and is well-formed (CSV columns, JSON,
a PNG with a marker where it says each point is, report.md with the
anchors and its sections),
that the anchors were measured, that each configuration's request counts
were read back and its placement took effect, that each point has the
status page's phases and request count (the workers' count close to
wrk's), that the timing's cost has its rounds, ratio and verdict (and no
phases with --timing off), that the quick sweep's plan has its keep-conn,
placement and timing lines, that a Ctrl-C stops everything it started,
and that a taken port is refused.  It asserts no timing: a number only
has to be there.  The verdict's and the status page's arithmetic are
checked on made-up numbers.

Prints TAP lines through the kit (tap.main: a deadline, and any
exception a failed check); exits 1 if any check failed.  About 55 s.
Ports: free ones in TFB_TEST_PORTS (28080-28099).

tests/bench/scaling is started through its launcher, so that it runs on
the interpreter that names.  (The article's experiment, tests/bench/run,
has its own: test_bench_article.py.)
"""

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from ..kit import REPO, proc, web
from ..kit.cmd import interrupt, tail
from ..kit.tap import main
from .benchlib import chart, phases, plan, report

RUN = REPO / "tests" / "bench" / "scaling"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONFIGS = ("nginx/unix/persistent/keep0@1:4,nginx/unix/persistent/keep8@1,"
           "nginx/unix/persistent/keep8/pinned@1")
# (label, workers) of every configuration, and the routes each runs.
EXPECTED = {("nginx/unix/persistent/keep0", 1), ("nginx/unix/persistent/keep0", 4),
            ("nginx/unix/persistent/keep8", 1),
            ("nginx/unix/persistent/keep8/pinned", 1)}
ROUTES = {"plaintext", "db", "queries2"}
CONCURRENCY = 8
TIMING_ROUNDS = 2
SLOW_PEERS = 20


def leftovers(var):
    """What of the stack, or of an anchor (var/anchor), still runs from
    var: pid files and live pids."""
    left = []
    for name in ("spawn.pid", "pool.pid", "nginx.pid", "lighttpd.pid",
                 "../anchor/run/nginx.pid", "../anchor/run/lighttpd.pid"):
        f = Path(var) / "run" / name
        if f.exists():
            pids = proc.read_pids(f)
            live = [p for p in pids if Path(f"/proc/{p}").exists()]
            left.append(f"{name}: {live or 'stale file'}")
    pm = Path(var) / "pg" / "data" / "postmaster.pid"
    if pm.exists():
        left.append("postmaster.pid")
    return left


def body(tap):
    tmp = tempfile.mkdtemp(prefix="tfb-bench-smoke-", dir="/tmp")
    # PostgreSQL and the front servers run as other users when we are root.
    os.chmod(tmp, 0o755)
    var = os.path.join(tmp, "stack")
    out = os.path.join(tmp, "out")
    port, fport = web.free_port(), web.free_port()
    base = [str(RUN), "--routes", "plaintext,db,queries:2",
            "--configs", CONFIGS, "--concurrency", str(CONCURRENCY),
            "--pgbench-clients", "1", "--probe", "2",
            "--duration", "1", "--warmup", "0", "--reps", "1",
            "--timing-rounds", str(TIMING_ROUNDS), "--timing-duration", "1",
            "--slow-rounds", "1", "--slow-peers", str(SLOW_PEERS),
            "--port", str(port), "--fcgi-port", str(fport), "--var", var]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "BENCH_", "TFB_SPAWN_")) and k != "FULL"}
    try:
        arithmetic(tap)
        plans(tap, env)
        smoke_run(tap, base + ["--out", out], env, out, var, port)
        interrupt_run(tap, base + ["--out", os.path.join(tmp, "out2"),
                                   "--duration", "20"], env, var, port)
        taken_port(tap, base + ["--out", os.path.join(tmp, "out3")], env, port)
    finally:
        subprocess.run(["deploy/stack", "stop"], cwd=REPO, capture_output=True,
                       env=dict(env, VAR=var))
        real = os.path.realpath(var)
        shutil.rmtree(tmp, ignore_errors=True)
        if real != var and real.startswith("/var/tmp/tfb-fcgi-"):
            shutil.rmtree(real, ignore_errors=True)


def plans(tap, env):
    """The quick sweep's plan, as --dry-run prints it: what deploy/stack
    ships at every worker count, the keep-conn comparison at workers =
    cores, lighttpd without a keepalive; and pinned lines on request."""
    cores = os.cpu_count() or 1
    p = subprocess.run([str(RUN), "--dry-run"], env=env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    want = ["nginx/unix/persistent/keep32 w=1:", "nginx/unix/persistent/keep32 w=32:"]
    want += [f"nginx/unix/persistent/keep{k} w={cores}:" for k in (0, 1, 8, 64)]
    want += ["lighttpd/unix/persistent w=8:", "keepalive axis does not apply",
             "anchor pgbench db -c", "about ",
             f"timing cost: nginx/unix/persistent/keep32 w={cores}: /db "
             "--timing off and on, 3 round(s)", "--timing-rounds 3",
             f"slow peers: nginx/unix/persistent/keep32 w={cores}: /plaintext without "
             "and with 100 slow FastCGI peers, 2 round(s)", "--slow-rounds 2"]
    tap.check(p.returncode == 0 and all(w in p.stdout for w in want)
              and "/pinned" not in p.stdout,
              "the quick sweep's plan: keepalive 32 at every worker count, "
              "0, 1, 8, 64 at workers = cores, nothing pinned, 3 rounds of "
              "the timing's cost",
              [f"missing: {[w for w in want if w not in p.stdout]}"]
              + tail(p.stdout + p.stderr, 25))
    p = subprocess.run([str(RUN), "--dry-run", "--timing-rounds", "0"], env=env,
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    tap.check(p.returncode == 0 and "timing cost" not in p.stdout,
              "--timing-rounds 0: no timing cost in the plan",
              tail(p.stdout + p.stderr, 25))
    p = subprocess.run([str(RUN), "--dry-run", "--cpu-affinity", "none,slot",
                        "--keepalives", "32"], env=env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    tap.check(p.returncode == 0 and "nginx/unix/persistent/keep32/pinned w=32:" in p.stdout
              and "--configs" in p.stdout,
              "--cpu-affinity none,slot adds the pinned main line",
              tail(p.stdout + p.stderr, 25))


def smoke_run(tap, argv, env, out, var, port):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240,
                       stdin=subprocess.DEVNULL)
    tap.check(p.returncode == 0, "tests/bench/scaling exits 0",
              tail(p.stdout + p.stderr, 30))
    print("\n".join("# " + line for line in p.stdout.splitlines()[-14:]))
    o = Path(out)
    files = ["report.md", "results.csv", "results.json",
             "chart-db.png", "chart-queries2.png", "bench.log",
             "pgbench/pgbench-db.sql", "pgbench/pgbench-pipelined-queries2.sql"]
    missing = [f for f in files if not (o / f).is_file()]
    tap.check(not missing, "every output file is there", f"missing: {missing}")

    rows = []
    try:
        with open(o / "results.csv", newline="") as f:
            r = csv.DictReader(f)
            header = r.fieldnames
            rows = list(r)
        tap.check(header == report.CSV_COLUMNS, "results.csv has the documented columns",
                  f"got {header}")
        bad = [row for row in rows
               if not row["error"] and not all(_is_number(row[c]) for c in
                                               ("rps", "requests", "p50_ms", "p99_ms",
                                                "max_ms", "cpu_pg", "cpu_total"))]
        tap.check(rows and not bad, f"results.csv: {len(rows)} rows, numbers where "
                  "numbers belong", f"bad rows: {bad[:2]}")
    except (OSError, csv.Error) as e:
        tap.check(False, "results.csv reads", str(e))

    try:
        data = json.loads((o / "results.json").read_text())
        ok = (isinstance(data.get("points"), list) and len(data["points"]) == len(rows)
              and isinstance(data.get("summary"), list) and data.get("meta", {}).get("command"))
        tap.check(ok, "results.json parses and holds the same points, a summary, "
                  "the command")
        slots = {(p["config"], p["workers"]): p.get("req_per_slot")
                 for p in data.get("points", []) if p["kind"] == "app"}
        tap.check(all(isinstance(v, list) and len(v) == k[1] and sum(v) > 0
                      for k, v in slots.items()) and set(slots) == EXPECTED,
                  "results.json: each configuration's requests per worker slot",
                  f"got {slots}")
    except (OSError, ValueError) as e:
        tap.check(False, "results.json parses", str(e))

    try:
        head = (o / "chart-db.png").read_bytes()[:8]
    except OSError:
        head = b""
    tap.check(head == PNG_MAGIC, "chart-db.png is a PNG",
              "python3-matplotlib makes it; deploy/deps test installs it")
    check_chart(tap, o / "chart-db.png")

    anchors = {(r["config"], r["route"]): r for r in rows if r["kind"] == "anchor"}
    for name in (("nginx-alone", "*"), ("lighttpd-alone", "*"), ("pgbench", "db"),
                 ("pgbench-pipelined", "queries2")):
        a = anchors.get(name)
        tap.check(a is not None and not a["error"] and _is_number(a["rps"])
                  and float(a["rps"]) > 0 and int(a["requests"]) > 0,
                  f"anchor {' '.join(name)} was measured", f"row: {a}")
    app = [r for r in rows if r["kind"] == "app"]
    got = {(r["config"], int(r["workers"]), r["route"]) for r in app}
    want = {(c, w, rt) for c, w in EXPECTED for rt in ROUTES}
    tap.check(got == want and all(not r["error"] and int(r["requests"]) > 0 for r in app),
              "every route was measured in every configuration",
              "\n".join(str(r) for r in app))
    tap.check(all(_is_number(r["cpu_app"]) and _is_number(r["rss_worker_kb_mean"])
                  and _is_number(r["req_workers_1pct"]) and _is_number(r["req_top_share"])
                  and _is_number(r["cpu_top_share"]) and _is_number(r["cswitch_per_req"])
                  for r in app),
              "app points carry the CPU split, worker RSS and how the work spread")
    tap.check(all(r["keepalive"] == r["config"].split("/keep")[1][:1] for r in app),
              "app points carry their keepalive")
    pinned = [r for r in app if r["config"].endswith("/pinned")]
    tap.check(pinned and all(r["cpu_affinity"] == "slot" and "one each" in r["cpus_allowed"]
                             for r in pinned)
              and all(r["cpu_affinity"] == "none" for r in app if r not in pinned),
              "the pinned configuration's worker runs on one CPU, the others are free",
              [f"{r['config']}: {r['cpu_affinity']} {r['cpus_allowed']}" for r in app])
    probe = [r for r in rows if r["kind"] == "probe"]
    tap.check(len(probe) == 1 and probe[0]["config"] == "nginx/unix/persistent/keep0"
              and probe[0]["workers"] == "4" and not probe[0]["error"]
              and _is_number(probe[0]["req_workers_1pct"]),
              "the light-load probe ran where every request wakes a worker, once",
              [str(r) for r in probe])

    try:
        md = (o / "report.md").read_text()
    except OSError:
        md = ""
    need = ["## Anchors", "| nginx-alone |", "| lighttpd-alone |", "| pgbench |",
            "| pgbench-pipelined |", "## `/db`", "÷ nginx-alone", "÷ pgbench (w)",
            "tests/bench/scaling --routes plaintext,db,queries:2", "## Machine", "**kernel**",
            "**cores**", "chart-db.png", "cannot and sends one Sync"]
    tap.check(all(s in md for s in need), "report.md has the machine, the anchors, "
              "the route table with ratios, the chart and the command",
              f"missing: {[s for s in need if s not in md]}")
    sections = ["## Ratios within this run",
                "### Workers against the best worker count of the same line",
                "### Best of each line against its front server alone",
                "### nginx keep-conn against none",
                "### Against PostgreSQL alone, like for like",
                "### `/queries` against `/db` of the same configuration",
                "## Wake-up order", "At light load", "What it shows about the wake-up order",
                "### Pinned against free placement",
                "| nginx/unix/persistent/keep8/pinned |", "| nginx/unix/persistent/keep0 |",
                "## Targets", "| `/fortunes` ÷ `/db` | ≥ 0.9 | — | not measured: fortunes at "
                "nginx/unix/persistent/keep32 w=%d |" % (os.cpu_count() or 1)]
    tap.check(all(s in md for s in sections), "report.md has the ratios, the "
              "wake-up order with the probe, and pinned against free",
              f"missing: {[s for s in sections if s not in md]}")
    status_page(tap, rows, md)
    timing_cost(tap, rows, md)
    slow_cost(tap, rows, md)
    tap.check(not leftovers(var) and web.port_is_free(port),
              "everything it started is stopped", f"left: {leftovers(var)}")
    rewrite(tap, env, o, md)


def check_chart(tap, png):
    """The first configuration's line in the chart: where the PNG says its
    two points are (chart.points), a marker of its colour in the pixels."""
    try:
        drawn, px = chart.points(png), chart.pixels(png)
    except (OSError, ValueError, KeyError, IndexError) as e:
        return tap.fail("chart-db.png reads", str(e))
    want = tuple(int(chart.COLORS[0][k:k + 2], 16) for k in (1, 3, 5))
    marks = [sum(1 for dx in range(-4, 5) for dy in range(-4, 5)
                 if max(abs(v - w) for v, w in zip(px(col + dx, row + dy), want)) < 26)
             for col, row in (drawn[0][1] if drawn else [])]
    tap.check(len(marks) == 2 and min(marks) >= 20,
              "chart-db.png: the first configuration's line, a marker at each of its 2 "
              "points", ["drawn: %s" % drawn[:1], "pixels of its colour at each: %s" % marks])


def rewrite(tap, env, o, md):
    """--report DIR writes the report again from results.json alone."""
    (o / "report.md").unlink(missing_ok=True)
    (o / "chart-db.png").unlink(missing_ok=True)
    p = subprocess.run([str(RUN), "--report", str(o)], env=env, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    try:
        again = (o / "report.md").read_text()
    except OSError:
        again = ""
    tap.check(p.returncode == 0 and md and again == md and (o / "chart-db.png").is_file(),
              "--report DIR: the same report.md and the charts again from results.json, "
              "nothing measured", tail(p.stdout + p.stderr, 10))


def status_page(tap, rows, md):
    """Each point where a pool served: the workers' request count from
    the status page, close to wrk's (the status page adds none), and the
    time per request in each phase, in the CSV and in report.md."""
    served = [r for r in rows if r["kind"] in ("app", "probe") and not r["error"]]
    far = [r for r in served if not _is_number(r["status_requests"])
           or abs(int(r["status_requests"]) - int(r["requests"]))
           > CONCURRENCY + 0.01 * int(r["requests"])]
    tap.check(served and not far, "the workers' request count (status page) is "
              "wrk's, within the requests in flight",
              [f"{r['config']} {r['route']}: wrk {r['requests']}, workers "
               f"{r['status_requests']}" for r in far])
    cols = [f"phase_us_{p}" for p in phases.PHASES]
    bad = [r for r in served if not all(_is_number(r[c]) for c in cols)
           or float(r["phase_us_writing"]) <= 0
           or (r["route"] != "plaintext") != (float(r["phase_us_database"]) > 0)]
    tap.check(served and not bad, "every point has the time per request in each "
              "phase; the database's only where the route reads it",
              [f"{r['config']} {r['route']}: {[r[c] for c in cols]}" for r in bad])
    row = re.compile(r"^\| nginx/unix/persistent/keep0 \| 4 \| 8 \| [\d,]+ / "
                     r"[\d,]+ \([+-][\d.]+%\) \| [\d.]+ \| [\d.,]+ \| ", re.M)
    need = [f"### `{path}`: where a request's time goes"
            for path in ("/plaintext", "/db", "/queries?queries=2")]
    tap.check(all(s in md for s in need) and row.search(md)
              and "keep0 (probe) | 4 | 2 |" in md,
              "report.md: per route, the phases of each point beside the CPU split",
              f"missing: {[s for s in need if s not in md]}, row: {bool(row.search(md))}")


def timing_cost(tap, rows, md):
    """The rounds of /db with --timing off and on: every point measured,
    the off ones without phases; report.md's section with its numbers."""
    t = [r for r in rows if r["kind"] == "timing"]
    off = [r for r in t if r["timing"] == "off"]
    on = [r for r in t if r["timing"] == "on"]
    tap.check(len(off) == len(on) == TIMING_ROUNDS and all(
        not r["error"] and r["route"] == "db" and int(r["requests"]) > 0 for r in t)
        and [r["timing"] for r in t] == ["off", "on", "on", "off"],
        "timing's cost: /db with --timing off and on, alternately, every point measured",
        [f"{r['rep']} {r['timing']} {r['requests']} {r['error']}" for r in t])
    tap.check(off and on and all(_is_number(r["status_requests"]) and
                                 not r["phase_us_database"] for r in off)
              and all(_is_number(r["phase_us_database"]) for r in on),
              "with --timing off the status page counts requests but times no phase",
              [f"{r['timing']}: {r['status_requests']} {r['phase_us_database']!r}"
               for r in t])
    head = re.search(r"\*\*on ÷ off: (\d+\.\d{3})\*\* \(median of (\d) round\(s\), "
                     r"min–max (\d+\.\d{3})–(\d+\.\d{3})\): .*Budget 3%: "
                     r"\*\*(within budget|over budget|within noise)\*\*", md)
    rounds = re.findall(r"^\| (\d) \| (off, on|on, off) \| [\d,]+ \| [\d,]+ \| "
                        r"[\d.]+ \| [\d,]+ / [\d,]+ \| [\d.]+ / [\d.]+ \| none / [\d.,]+ \|$",
                        md, re.M)
    ok = "## What the timing costs" in md and head and len(rounds) == TIMING_ROUNDS
    if ok:
        med, n, lo, hi = (float(head.group(i)) for i in range(1, 5))
        ok = n == TIMING_ROUNDS and lo <= med <= hi and \
            head.group(5) == report.timing_verdict([lo, hi])
    tap.check(ok, "report.md: what the timing costs, round by round, the ratio "
              "with its spread and the verdict",
              tail(md[md.find("## What the timing"):], 12))


def slow_cost(tap, rows, md):
    """A round of /plaintext without and with slow FastCGI peers: both
    measured, the slow ones held; report.md's section, and the target
    not read from fewer peers than it is set for."""
    t = [r for r in rows if r["kind"] == "slow"]
    tap.check([r["slow_peers"] for r in t] == ["0", str(SLOW_PEERS)] and all(
        not r["error"] and r["route"] == "plaintext" and int(r["requests"]) > 0
        and _is_number(r["slow_closed"]) for r in t),
        "slow peers' cost: /plaintext without, then with %d FastCGI peers that send "
        "one byte and stop, both measured" % SLOW_PEERS,
        [f"{r['rep']} {r['config']} {r['slow_peers']} {r['requests']} {r['error']}"
         for r in t])
    row = re.search(r"^\| 1 \| without, with \| [\d,]+ \| [\d,]+ \| [\d.]+ \| "
                    r"[\d.]+ / [\d.]+ \| \d+ \|$", md, re.M)
    tap.check("## What slow FastCGI peers cost" in md and row
              and re.search(r"\*\*with ÷ without: \d+\.\d{3}\*\* \(median of 1 round", md)
              and "not measured: 100 slow peers (this run held %d)" % SLOW_PEERS in md,
              "report.md: what slow peers cost, the round and its ratio; the target "
              "not read from fewer than 100",
              tail(md[md.find("## What slow"):], 10))


def arithmetic(tap):
    """The verdict and the status page's differences, on made-up numbers."""
    v = report.timing_verdict
    tap.check((v([0.98, 1.02]), v([0.90, 0.96]), v([0.95, 1.01]), v([0.97])) ==
              ("within budget", "over budget", "within noise", "within budget"),
              "the verdict: within budget, over budget, within noise (the spread "
              "straddles 0.97)")

    def page(req, secs, queue, active):
        return {"requests": req, "max listen queue": queue,
                "max active processes": active,
                "phase seconds": dict(zip(phases.PHASES, secs))}
    w = phases.window(page(10, (1, 2, 0, 1), 5, 2),
                      page(1010, (1.01, 2.1, 0.002, 1.004), 5, 3))
    want = {"status_requests": 1000, "phase_us_reading": 10, "phase_us_database": 100,
            "phase_us_rendering": 2, "phase_us_writing": 4, "listen_queue_max": 5,
            "listen_queue_max_new": False, "active_max": 3, "active_max_new": True}
    tap.check(set(w) == set(want) and all(abs(w[k] - want[k]) < 1e-6 for k in want)
              and abs(phases.shares(w)[1] - 100 / 116) < 1e-9,
              "the status page's difference: µs per request in each phase, the "
              "maxima and whether the window reached them", str(w))
    w = phases.window(page(10, (0,) * 4, 0, 0), page(30, (0,) * 4, 0, 0))
    tap.check(w["status_requests"] == 20 and "phase_us_reading" not in w
              and phases.total_us(w) is None,
              "no phases timed (--timing off): requests, no phases", str(w))
    targets(tap)


def targets(tap):
    """The targets' verdicts on made-up rows: met, not met, not measured."""
    p = plan.Plan(routes=[plan.parse_route(r) for r in
                          ("plaintext", "db", "queries:20", "updates:20", "fortunes")],
                  configs=[], concurrency=[8, 64], duration=1, warmup=0, reps=1,
                  cores=2)
    label = p.timing_config("on").label

    def app(route, rps, us=None, rss=None, conc=64, workers=2, config=label, p99=5):
        return {"kind": "app", "config": config, "workers": workers, "route": route,
                "concurrency": conc, "rps": rps, "us_req_app": us, "p99_ms": p99,
                "rss_worker_kb_max": rss, "db_mode": "persistent", "err_timeout": 0}

    def anchor(name, route, rps, conc):
        return {"kind": "anchor", "config": name, "workers": 0,
                "route": route, "concurrency": conc, "rps": rps}
    keep = "nginx/unix/persistent/keep%d"
    rows = [app("plaintext", 40000, 14, 7000), app("db", 10000, 26, 7400),
            app("queries20", 3000, 60, 8000), app("updates20", 1000),
            app("fortunes", 9500), app("db", 99999, conc=8), app("db", 11000, workers=4),
            app("db", 9000, workers=16), app("db", 8000, workers=32),
            app("plaintext", 30000, workers=1, p99=12),
            app("plaintext", 20000, config=keep % 0), app("plaintext", 30000, config=keep % 1),
            app("plaintext", 30000, config=keep % 8, p99=11),
            app("plaintext", 23000, config=keep % 64),
            anchor("pgbench-pipelined", "queries20", 4000, 2),
            anchor("pgbench-pipelined", "updates20", 2500, 2),
            anchor("nginx-alone", "*", 80000, 64)]
    slow = [{"kind": "slow", "rep": 1, "slow_peers": 0, "rps": 20000},
            {"kind": "slow", "rep": 1, "slow_peers": 100, "rps": 19000},
            {"kind": "slow", "rep": 2, "slow_peers": 100, "rps": 15000},
            {"kind": "slow", "rep": 2, "slow_peers": 0, "rps": 20000, "error": "x"}]
    got = [(shown, verdict) for _, _, shown, verdict in
           report.targets(p, rows, report.anchor_index(rows), slow)]
    want = [("0.75", "met"), ("0.40", "not met"), ("0.30", "not met"), ("14.0", "met"),
            ("26.0", "not met"), ("0.95", "met"), ("7.8", "met"),
            ("0.82", "not met"), ("0.73", "not met"),
            ("0.50 (p99 5.00 ms, 0 timeouts)", "met"),
            ("1.50 (p99 5.00 ms, 0 timeouts)", "met"),
            ("1.50 (p99 11.0 ms, 0 timeouts)", "not met"),
            ("1.15 (p99 5.00 ms, 0 timeouts)", "not met"), ("0.95", "met")]
    tap.check(got == want, "targets: each read at the shipped configuration and 64 "
              "connections, a worker per core unless named; met and not met", str(got))
    rows = [r for r in rows if r["route"] not in ("fortunes", "updates20")
            and r["config"] not in ("pgbench-pipelined", keep % 64)]
    got = [verdict for _, _, _, verdict in
           report.targets(p, rows, report.anchor_index(rows))]
    want = ["not measured: pgbench-pipelined queries20 at 2 clients",
            "not measured: updates20 at %s w=2" % label,
            "not met", "met", "not met", "not measured: fortunes at %s w=2" % label, "met",
            "not met", "not met", "met", "met", "not met",
            "not measured: plaintext at %s w=2" % (keep % 64),
            "not measured: the slow peers' rounds (--slow-rounds)"]
    tap.check(got == want, "targets: a measure whose route or anchor did not run is "
              "not measured, and says what is missing", str(got))


def interrupt_run(tap, argv, env, var, port):
    """Ctrl-C in the middle of a measurement: everything stops, exit 130,
    what was measured is still written."""
    # The third point is the first pgbench or app one; interrupt during
    # the point after the first progress line.
    rc, text = interrupt(argv, lambda line: line.startswith("["), 1.5, 120, env=env)
    tap.check(rc == 130, "Ctrl-C: exits 130", tail(text, 30))
    tap.check(not leftovers(var) and web.port_is_free(port),
              "Ctrl-C: everything it started is stopped",
              [f"left: {leftovers(var)}"] + tail(text, 29))


def taken_port(tap, argv, env, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    finally:
        s.close()
    tap.check(p.returncode != 0 and "taken" in p.stderr,
              "refuses to start when its port is taken", tail(p.stdout + p.stderr, 30))


def _is_number(s):
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":
    main(body, deadline=600)
