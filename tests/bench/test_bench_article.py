"""test_bench_article.py: the article's experiment (tests/bench/run), small.

  1. The arithmetic, on made-up numbers: the merged histogram's
     percentiles, the paired spread and its verdict word, the best
     process count (the lowest no other beats beyond the noise).
  2. The plans, as --dry-run prints them: the quick run within 4
     minutes, the full within 90, every part of each; not root, the
     first line says the distance axis is left out.
  3. A smoke run of every subject at one point (2 processes, 1 s, one
     repetition, /db), this pool sizing itself too (auto), with the database 1 ms away as root (local
     otherwise), the open loop at one rate, a cgroup per tier and the
     split placement at the same count: it exits 0; every subject answers
     its checks and has a point without an error; the delay line's round
     trip, measured from the workers' side at rest, is within 10% of the
     1 ms asked for; report.md opens with the verdict and the headline
     chart, whose PNG has a marker of each subject's colour where it says
     it drew its points; every number of the verdict is recomputed from
     the points of results.json, without the bench's code, and found as
     printed in report.md; --report writes every file again byte for
     byte; nothing is left (namespaces, cgroups, the sysctl, the port).
  4. The committed example (tests/bench/example/) is written again byte
     for byte by --report from its results.json, its verdict's numbers
     are recomputed the same way, and the READMEs quote that verdict as
     it is.
  5. Ctrl-C in the middle: exit 130, nothing left.

Prints TAP lines through the kit.  About 60 s.  Ports: free ones in
TFB_TEST_PORTS.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ..kit import REPO, web
from ..kit.cmd import interrupt as interrupt_at, run, tail
from ..kit.tap import main
from . import run as run_mod
from .benchlib import chart, spread, writeup
from .benchlib.subjects import SUBJECTS

RUN = REPO / "tests" / "bench" / "run"
EXAMPLE = REPO / "tests" / "bench" / "example"
ALL = "tfb-fcgi,flask,fastapi,flask-per-request,tfb-fcgi-per-request"
FILES = ("report.md", "results.csv", "results.json", "chart-headline.png")


def env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PG", "BENCH_", "TFB_SPAWN_")) and k != "FULL"}


def body(tap):
    tmp = tempfile.mkdtemp(prefix="tfb-bench-article-", dir="/tmp")
    os.chmod(tmp, 0o755)
    try:
        arithmetic(tap)
        plans(tap, tmp)
        smoke(tap, tmp)
        example(tap, tmp)
        interrupt(tap, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- 1 ------------------------------------------------------------------------

def arithmetic(tap):
    h = spread.hist_merge([spread.hist_of([100] * 90), spread.hist_of([1000] * 10)])
    p50, p99 = spread.hist_percentile(h, 50), spread.hist_percentile(h, 99)
    tap.check(abs(p50 - 100) / 100 < 0.01 and abs(p99 - 1000) / 1000 < 0.01,
              "merged histograms: 90 requests of 100 µs and 10 of 1 ms give p50 100 µs "
              "and p99 1 ms, within 1%", f"p50 {p50}, p99 {p99}")
    a, b = {1: 10.0, 2: 12.0, 3: 11.0}, {1: 5.0, 2: 5.0, 3: 5.0}
    s = spread.ratio(a, b)
    words = (spread.judge(s, 2.0), spread.judge(s, 2.1), spread.judge(s, 2.5),
             spread.judge(s, 2.5, at_least=False))
    tap.check(s[:3] == (2.2, 2.0, 2.4) and words == ("met", "within noise", "not met",
                                                     "met"),
              "paired spread: ratios 2.0, 2.4, 2.2 give 2.2 (2.0–2.4): at least 2 met, "
              "at least 2.1 within noise, at least 2.5 not met, at most 2.5 met",
              f"{s}, {words}")
    line = {2: {1: 100, 2: 110}, 4: {1: 200, 2: 230}, 8: {1: 220, 2: 240},
            16: {1: 150, 2: 160}}
    flat = {2: {1: 100, 2: 120}, 4: {1: 110, 2: 115}, 8: {1: 130, 2: 112}}
    apart = {2: {1: 100}, 4: {2: 120}}
    got = (spread.best_count(line), spread.best_count(flat), spread.best_count(apart))
    tap.check(got == (8, 2, 4),
              "the best count is the lowest no other beats beyond the noise: 8 when it beats "
              "4 in every repetition; 2 when 4 and 8 beat it in one repetition only; with no "
              "repetition shared, the ranges decide", str(got))


# --- 2 ------------------------------------------------------------------------

def dry(args, user=None, tmp=None):
    """RUN --dry-run ARGS; as user, from a copy of tests/ under tmp that
    the user can read (the checkout may be in a home of mode 0700, as
    /root is)."""
    argv, cwd = [str(RUN), "--dry-run"] + args, REPO
    if user:
        cwd = Path(tmp) / "repo"
        shutil.copytree(REPO / "tests", cwd / "tests",
                        ignore=shutil.ignore_patterns("__pycache__", "example"))
        subprocess.run(["chmod", "-R", "a+rX", str(cwd)], check=True)
        argv = ["runuser", "-u", user, "--", str(cwd / RUN.relative_to(REPO))] + argv[1:]
    return run(argv, 60, env=env(), cwd=str(cwd))


def minutes(text):
    m = re.search(r"^about ([\d.]+) min$", text, re.M)
    return float(m.group(1)) if m else None


def plans(tap, tmp):
    q = dry([])
    m = minutes(q.stdout)
    want = ["tfb-fcgi w=2:", "tfb-fcgi w=32:", "flask w=2:", "fastapi w=32:",
            "flask-per-request w=8:"]
    if os.geteuid() == 0:
        want += ["0 ms db c64", "1 ms db c64", "local db c64"]
    tap.check(q.returncode == 0 and m is not None and m <= 4.0 and
              all(w in q.stdout for w in want),
              f"the quick plan: every subject, its estimate {m} min within 4",
              [f"missing: {[w for w in want if w not in q.stdout]}"] + tail(q.stdout, 8))
    e = dict(os.environ, FULL="1")
    f = run([str(RUN), "--dry-run"], 60, env={k: v for k, v in e.items()
                                              if not k.startswith("BENCH_")}, cwd=str(REPO))
    m = minutes(f.stdout)
    want = ["tfb-fcgi-per-request w=", "fortunes c64", "queries20 c64", "c16", "c256",
            "open loop: fastapi at its best count"]
    if os.geteuid() == 0:
        want += ["[flat, shared]", "[tiers, shared]", "[autogroup, split]", "0.2 ms", "5 ms"]
    tap.check(f.returncode == 0 and m is not None and m <= 90.0 and
              all(w in f.stdout for w in want),
              f"the full plan: routes, loads, the per-request mode, the scheduler and "
              f"placement comparisons, the open loop; its estimate {m} min within 90",
              [f"missing: {[w for w in want if w not in f.stdout]}"] + tail(f.stdout, 10))
    a = run([str(RUN), "--dry-run", "--workers", "1,2,4,8,16,32,64,auto", "--few", "4,32,auto"],
            60, env={k: v for k, v in e.items() if not k.startswith("BENCH_")}, cwd=str(REPO))
    autos = [l for l in a.stdout.splitlines() if l.strip().startswith("tfb-fcgi w=auto")]
    tap.check(a.returncode == 0 and autos and "flask w=auto" not in a.stdout and
              all(" db c64" in l for l in autos),
              "auto among the counts: this pool sizing itself on its lines, not the "
              "article's subjects", tail(a.stdout, 12))
    if os.geteuid() == 0 and shutil.which("runuser"):
        u = dry([], user="nobody", tmp=tmp)
        first = (u.stdout or "").splitlines()[:1]
        tap.check(u.returncode == 0 and first and "Not root" in first[0] and
                  "BENCH_DB_RTT" in first[0] and " 1 ms " not in u.stdout,
                  "not root: the first line says the distance axis is left out, and the "
                  "plan has none", tail(u.stdout, 8))


# --- 3 ------------------------------------------------------------------------

def smoke(tap, tmp):
    out, var = Path(tmp) / "out", os.path.join(tmp, "stack")
    port = web.free_port()
    root = os.geteuid() == 0
    argv = [str(RUN), "--subjects", ALL, "--workers", "2,auto", "--few", "2",
            "--db-rtt", "1ms" if root else "local", "--routes", "db",
            "--concurrency", "8", "--reps", "1", "--duration", "1", "--warmup", "0",
            "--open", "0.5", "--port", str(port), "--var", var, "--out", str(out)]
    if root:
        argv += ["--sched", "autogroup,tiers", "--placement", "shared,split"]
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text()
    t0 = time.monotonic()
    p = run(argv, 420, env=env(), cwd=str(REPO))
    ns = namespaces(p.stdout)
    tap.check(p.returncode == 0, f"a smoke run of every subject exits 0 "
              f"({time.monotonic() - t0:.0f} s)", tail(p.stdout, 30))
    missing = [f for f in FILES if not (out / f).is_file()]
    tap.check(not missing, "it writes " + ", ".join(FILES), f"missing: {missing}")
    try:
        res = json.loads((out / "results.json").read_text())
        md = (out / "report.md").read_text()
    except (OSError, ValueError) as e:
        tap.fail("results.json and report.md read", str(e))
        return
    pts = res["points"]
    for s in ALL.split(","):
        good = [x for x in pts if x["subject"] == s and not x.get("error") and x["rps"] > 0
                and x["checked"] and not x["non2xx"] and not x["socket_errors"]]
        tap.check(good, f"{s}: passes its checks and has a point without an error",
                  [json.dumps({k: x.get(k) for k in ("subject", "distance", "rps", "error")})
                   for x in pts if x["subject"] == s][:5] + tail(p.stdout, 5))
    auto = [x for x in pts if x["workers"] == 0]
    tap.check(auto and all(x["subject"] == "tfb-fcgi" and not x.get("error") and
                           x["rps"] > 0 and x["auto_size"] >= 1 and x["auto_sizes"]
                           for x in auto) and
              any(x["auto_idle_s"] is not None and x["auto_first_ms"] is not None
                  for x in auto),
              "auto: this pool sizing itself measured once it held its size, then left "
              "idle down to its minimum and asked once more",
              [json.dumps({k: x.get(k) for k in ("subject", "part", "sched", "placement",
                                                 "distance", "rps", "error", "auto_settle_s",
                                                 "auto_sizes", "auto_idle_s",
                                                 "auto_first_ms")}) for x in auto])
    tap.check("auto ÷ the best fixed count" in md and "auto, idle:" in md,
              "report.md: auto beside the best fixed count, its settling and its idling, "
              "in the targets", [l for l in md.splitlines() if "auto" in l][:6])
    opened = [x for x in pts if x["mode"] == "open" and not x.get("error")]
    tap.check(len(opened) == 3 and all(x["due"] and x["requests"] for x in opened),
              "the open loop measured the three persistent subjects at half their best rate",
              [str({k: x.get(k) for k in ("subject", "rate_offered", "rps", "due")})
               for x in opened])
    if root:
        rtt = [x["rtt_idle_us"] for x in pts if x.get("rtt_idle_us") is not None]
        cal = res["meta"]["calibration"].get("1ms", {})
        med = statistics.median(rtt) if rtt else None
        tap.check(med is not None and abs(med - 1000) <= 100,
                  "the delay line's round trip, from the workers' side at rest (the median "
                  f"of each block's), is within 10% of the 1 ms asked for: {med and round(med)} "
                  f"µs ({cal.get('one_way_us')} µs each way after calibration)",
                  f"each block's: {[round(r) for r in rtt]}")
        late = [x for x in pts if x.get("late_p99_us") is not None and x.get("delay_frames")]
        tap.check(late and all(x["delay_frames"] > 0 for x in late),
                  "the delay line's lateness is read over each measured window",
                  f"{[(x.get('delay_frames'), x.get('late_p99_us')) for x in pts][:6]}")
        tiers = [x for x in pts if x["sched"] == "tiers" and not x.get("error")]
        split = [x for x in pts if x["placement"] == "split" and not x.get("error")]
        tap.check(tiers and split, "a cgroup per tier, and the split placement, measured",
                  f"tiers {len(tiers)}, split {len(split)}")
    heads = [l for l in md.splitlines() if l.startswith("## ")]
    tap.check(heads[:2] == ["## Verdict", "## Targets"] and
              md.index("## Verdict") < md.index("![requests/s and p99") < md.index("## Targets"),
              "report.md opens with the verdict, then the headline chart, then the targets",
              heads)
    check_chart(tap, out / "chart-headline.png")
    check_numbers(tap, res, md, "the smoke run")
    rewrite(tap, out, "the smoke run")
    left = leftovers(var, port, ns)
    now = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text()
    tap.check(not left and now == autogroup, "nothing is left: namespaces, cgroups, "
              "processes, the port; the scheduler's sysctl as it was", [str(left), now])


def check_chart(tap, png):
    """Each subject of the headline: a marker of its colour where the PNG
    says its points are."""
    try:
        drawn, px = chart.points(png), chart.pixels(png)
    except (OSError, ValueError, KeyError, IndexError) as e:
        return tap.fail("chart-headline.png reads", str(e))
    bad = []
    for panel, key, where in drawn:
        want = tuple(int(SUBJECTS[key].color[k:k + 2], 16) for k in (1, 3, 5))
        for col, row in where:
            n = sum(1 for dx in range(-3, 4) for dy in range(-3, 4)
                    if max(abs(v - w) for v, w in zip(px(col + dx, row + dy), want)) < 40)
            if n < 8:
                bad.append((panel, key, col, row, n))
    subjects = {k for _, k, _ in drawn}
    tap.check(drawn and not bad and {"tfb-fcgi", "flask", "fastapi"} <= subjects,
              "chart-headline.png: a marker of each subject's colour at each of its points",
              [f"drawn {[(p, k, len(w)) for p, k, w in drawn]}", f"missing {bad[:8]}"])


def recompute(points, key):
    """{rep: rps} of the cell key, from the points, error-free ones."""
    return {p["rep"]: p["rps"] for p in points
            if [p["subject"], p["workers"], p["distance"], p["route"], p["load"], p["sched"],
                p["placement"]] == key and not p.get("error") and p.get("rps") is not None}


def check_numbers(tap, res, md, what):
    """Every number of the verdict, from the points alone, as printed."""
    verdict = md.split("## Verdict", 1)[-1].split("## Targets", 1)[0]
    bad, n = [], 0
    for num in res["verdict"]["numbers"]:
        a = recompute(res["points"], num["a"])
        if num["b"] is None:
            vals = list(a.values())
            v, lo, hi = statistics.median(vals), min(vals), max(vals)
            text = f"{v:,.0f} req/s ({lo:,.0f}–{hi:,.0f})"
        else:
            b = recompute(res["points"], num["b"])
            qs = [a[r] / b[r] for r in sorted(a) if r in b and b[r]]
            v, lo, hi = statistics.median(qs), min(qs), max(qs)
            text = f"{v:.2f}× ({lo:.2f}–{hi:.2f})"
        n += 1
        if abs(v - num["value"]) > 1e-9 * max(1, abs(v)) or text not in verdict:
            bad.append(f"{num['name']}: recomputed {text}, recorded {num['value']}")
    tap.check(n and not bad, f"{what}: the verdict's {n} numbers, recomputed from the points "
              "of results.json, are the ones report.md prints", bad[:10])


def rewrite(tap, out, what):
    """--report writes every file again, byte for byte."""
    before = {f.name: f.read_bytes() for f in Path(out).iterdir()
              if f.name != "bench.log" and f.is_file()}
    for name in before:
        if name != "results.json":
            (Path(out) / name).unlink()
    p = run([str(RUN), "--report", str(out)], 120, env=env(), cwd=str(REPO))
    after = {f.name: f.read_bytes() for f in Path(out).iterdir()
             if f.name != "bench.log" and f.is_file()}
    diff = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    tap.check(p.returncode == 0 and not diff and "report.md" in after,
              f"{what}: --report writes every file again byte for byte "
              f"({', '.join(sorted(after))})", [f"differ: {diff}"] + tail(p.stdout, 5))


def namespaces(text):
    """The namespace prefix a run announced ("tfbb7-"), or None."""
    m = re.search(r"database host is namespace (tfbb\d+-)db", text or "")
    return m.group(1) if m else None


def leftovers(var, port, ns):
    """What of a run is still there: its namespaces (ns: their prefix),
    cgroups, the stack's pid files, the port."""
    left = []
    listed = run(["ip", "netns", "list"], 10).stdout or "" if ns else ""
    left += [l.split()[0] for l in listed.splitlines() if l.startswith(ns)]
    cg = [d for d in Path("/sys/fs/cgroup/cpu").glob("tfb-bench-*")] \
        if Path("/sys/fs/cgroup/cpu").is_dir() else []
    left += [str(d) for d in cg]
    for name in ("spawn.pid", "nginx.pid"):
        f = Path(var) / "run" / name
        if f.exists():
            left.append(str(f))
    if not web.port_is_free(port):
        left.append(f"port {port}")
    return left


# --- 4 ------------------------------------------------------------------------

def example(tap, tmp):
    ex = Path(tmp) / "example"
    shutil.copytree(EXAMPLE, ex)
    try:
        res = json.loads((ex / "results.json").read_text())
        md = (ex / "report.md").read_text()
    except (OSError, ValueError) as e:
        tap.fail("tests/bench/example: results.json and report.md read", str(e))
        return
    check_numbers(tap, res, md, "tests/bench/example")
    rewrite(tap, ex, "tests/bench/example")
    stale = []
    for path, link in run_mod.READMES:
        text = Path(path).read_text()
        block = "\n".join(writeup.readme_block(res, link))
        if block not in text:
            stale.append(str(path))
    tap.check(not stale, "README.md and tests/bench/README.md quote the example's verdict as "
              "it is (tests/bench/run --sync-readme)", f"stale: {stale}")


# --- 5 ------------------------------------------------------------------------

def interrupt(tap, tmp):
    var, port = os.path.join(tmp, "stack2"), web.free_port()
    argv = [str(RUN), "--subjects", "tfb-fcgi", "--workers", "2", "--routes", "db",
            "--db-rtt", "1ms" if os.geteuid() == 0 else "local", "--reps", "3",
            "--duration", "20", "--warmup", "0", "--port", str(port), "--var", var,
            "--out", os.path.join(tmp, "out2")]
    # Into the first measurement (20 s long), then Ctrl-C.
    first = "bench: the database host" if os.geteuid() == 0 else "bench: 1 cells"
    rc, text = interrupt_at(argv, lambda line: line.startswith(first), 6, 90,
                            env=env(), cwd=str(REPO))
    tap.check(rc == 130, "Ctrl-C in the middle: exits 130", tail(text, 20))
    left = leftovers(var, port, namespaces(text))
    tap.check(not left, "Ctrl-C: nothing is left", [str(left)] + tail(text, 10))


if __name__ == "__main__":
    main(body, deadline=400)
