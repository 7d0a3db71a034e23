#!/usr/bin/env python3
"""test_bench_smoke.py: a tiny run of tests/bench/run, checked for shape.

One route (/db), two worker counts, 1 s per point, one repetition, with a
PostgreSQL of its own in a temporary directory.  Checks that every output
exists and is well-formed (CSV columns, JSON, SVG as XML, PNG signature,
report.md with the anchors), that the anchors were measured, that a
Ctrl-C stops everything it started, and that a taken port is refused.
It asserts no timing: a number only has to be there.

Prints TAP lines through the integration tests' lib.py (lib.main: a
deadline, and any exception a failed check); exits 1 if any check failed.
About 30 s.  Ports: free ones in TFB_TEST_PORTS (28080-28099).

tests/bench/run is started as make bench starts it, through its #! line,
so that it runs on the interpreter it names.
"""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN = HERE / "run"
sys.dont_write_bytecode = True
sys.path[:0] = [str(HERE), str(HERE.parent / "integration")]
import lib  # noqa: E402
import stack  # noqa: E402  (on the path through lib)
from benchlib import report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def leftovers(var):
    """What of the stack still runs from var: pid files and live pids."""
    left = []
    run = Path(var) / "run"
    for name in ("spawn.pid", "pool.pid", "nginx.pid", "lighttpd.pid",
                 "bench-nginx-alone.pid", "bench-lighttpd-alone.pid"):
        f = run / name
        if f.exists():
            pids = stack.read_pids(f)
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
    port, fport = lib.free_port(), lib.free_port()
    base = [str(RUN), "--routes", "db",
            "--configs", "nginx/unix/persistent@1:2", "--concurrency", "8",
            "--duration", "1", "--warmup", "0", "--reps", "1",
            "--port", str(port), "--fcgi-port", str(fport), "--var", var]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "BENCH_")) and k != "FULL"}
    try:
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


def smoke_run(tap, argv, env, out, var, port):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240,
                       stdin=subprocess.DEVNULL)
    tap.check(p.returncode == 0, "tests/bench/run exits 0",
              lib.tail(p.stdout + p.stderr, 30))
    print("\n".join("# " + line for line in p.stdout.splitlines()[-14:]))
    o = Path(out)
    files = ["report.md", "results.csv", "results.json", "chart-db.svg",
             "chart-db.png", "bench.log", "pgbench/pgbench-db.sql"]
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
    except (OSError, ValueError) as e:
        tap.check(False, "results.json parses", str(e))

    try:
        root = ET.parse(o / "chart-db.svg").getroot()
        # The one configuration's line: its path, and a marker (<use>) at
        # each of the two worker counts (chart.py names it series-0).
        line = root.find(f".//{SVG}g[@id='series-0']")
        ok = root.tag == SVG + "svg" and line is not None and \
            line.find(f"{SVG}path") is not None and \
            len(line.findall(f".//{SVG}use")) == 2
        tap.check(ok, "chart-db.svg parses as SVG with a line and its 2 points")
    except (OSError, ET.ParseError) as e:
        tap.check(False, "chart-db.svg parses as XML", str(e))

    try:
        head = (o / "chart-db.png").read_bytes()[:8]
    except OSError:
        head = b""
    tap.check(head == PNG_MAGIC, "chart-db.png is a PNG",
              "python3-matplotlib makes it; deploy/deps test installs it")

    anchors = {r["config"]: r for r in rows if r["kind"] == "anchor"}
    for name in ("nginx-alone", "lighttpd-alone", "pgbench"):
        a = anchors.get(name)
        tap.check(a is not None and not a["error"] and _is_number(a["rps"])
                  and float(a["rps"]) > 0 and int(a["requests"]) > 0,
                  f"anchor {name} was measured", f"row: {a}")
    app = [r for r in rows if r["kind"] == "app"]
    tap.check(sorted(int(r["workers"]) for r in app) == [1, 2]
              and all(not r["error"] and int(r["requests"]) > 0
                      and r["route"] == "db" for r in app),
              "/db was measured with 1 and 2 workers",
              "\n".join(str(r) for r in app))
    tap.check(all(_is_number(r["cpu_app"]) and _is_number(r["rss_worker_kb_mean"])
                  for r in app), "app points carry the CPU split and worker RSS")

    try:
        md = (o / "report.md").read_text()
    except OSError:
        md = ""
    need = ["## Anchors", "| nginx-alone |", "| lighttpd-alone |", "| pgbench |",
            "## `/db`", "÷ nginx-alone", "÷ pgbench", "tests/bench/run --routes db",
            "## Machine", "**kernel**", "**cores**", "chart-db.png"]
    tap.check(all(s in md for s in need), "report.md has the machine, the anchors, "
              "the route table with ratios, the chart and the command",
              f"missing: {[s for s in need if s not in md]}")
    tap.check(not leftovers(var) and lib.port_is_free(port),
              "everything it started is stopped", f"left: {leftovers(var)}")


def interrupt_run(tap, argv, env, var, port):
    """Ctrl-C in the middle of a measurement: everything stops, exit 130,
    what was measured is still written."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    lines = []
    deadline = time.monotonic() + 120
    try:
        # The third point is the first pgbench or app one; interrupt
        # during the point after the first progress line.
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("[") or time.monotonic() > deadline:
                break
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
        lines.append(rest)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    text = "".join(lines)
    tap.check(proc.returncode == 130, "Ctrl-C: exits 130", lib.tail(text, 30))
    tap.check(not leftovers(var) and lib.port_is_free(port),
              "Ctrl-C: everything it started is stopped",
              [f"left: {leftovers(var)}"] + lib.tail(text, 29))


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
              "refuses to start when its port is taken", lib.tail(p.stdout + p.stderr, 30))


def _is_number(s):
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":
    lib.main(body, deadline=600)
