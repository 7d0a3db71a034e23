"""report: raw points -> summary, results.csv, results.json, charts,
report.md.

A point is one measurement (one repetition of one configuration, route
and concurrency, or of one anchor); the summary groups the repetitions of
the same thing and keeps the median, with min and max beside it for
req/s.  Every ratio in report.md is a ratio of two medians measured in the
same run.
"""

import csv
import json
import os
import statistics
from pathlib import Path

from . import chart

CSV_COLUMNS = [
    "rep", "kind", "config", "front", "socket", "db_mode", "workers",
    "route", "path", "concurrency", "clients", "duration_s", "requests",
    "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "non2xx",
    "socket_errors", "err_connect", "err_read", "err_write", "err_timeout",
    "cpu_app", "cpu_front", "cpu_pg", "cpu_load", "cpu_other", "cpu_total",
    "rss_worker_kb_mean", "rss_worker_kb_max", "started", "error",
]
# cpu_*: % of one core over the measured window (200 = both cores of a
# 2-core machine); cpu_load is wrk's or pgbench's own; cpu_other is the
# rest of the machine (someone else's work); cpu_total the whole machine.

FRONT_ROUTES_ANCHORS = ("nginx-alone", "lighttpd-alone")


def write_csv(points, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for p in points:
            w.writerow({k: _csv_val(p.get(k)) for k in CSV_COLUMNS})


def _csv_val(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    return v


def _median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(points):
    """Group the repetitions; one summary row per
    (kind, config, workers, route, concurrency)."""
    groups = {}
    for p in points:
        k = (p["kind"], p["config"], p.get("workers") or 0, p["route"],
             p["concurrency"])
        groups.setdefault(k, []).append(p)
    out = []
    for (kind, config, workers, route, conc), ps in groups.items():
        ok = [p for p in ps if not p.get("error")]
        rps = [p["rps"] for p in ok if p.get("rps") is not None]
        first = ps[0]
        row = {
            "kind": kind, "config": config, "workers": workers,
            "route": route, "path": first.get("path"),
            "front": first.get("front"), "socket": first.get("socket"),
            "db_mode": first.get("db_mode"), "concurrency": conc,
            "clients": first.get("clients"),
            "reps": len(ps), "reps_ok": len(ok),
            "rps": _median(rps), "rps_min": min(rps) if rps else None,
            "rps_max": max(rps) if rps else None,
            "max_ms": max((p["max_ms"] for p in ok if p.get("max_ms") is not None),
                          default=None),
            "non2xx": sum(p.get("non2xx") or 0 for p in ok),
            "socket_errors": sum(p.get("socket_errors") or 0 for p in ok),
            "requests": sum(p.get("requests") or 0 for p in ok),
            "errors": sorted({p["error"] for p in ps if p.get("error")}),
        }
        for f in ("p50_ms", "p90_ms", "p99_ms", "cpu_app", "cpu_front",
                  "cpu_pg", "cpu_load", "cpu_other", "cpu_total",
                  "rss_worker_kb_mean", "rss_worker_kb_max"):
            row[f] = _median([p.get(f) for p in ok])
        # CPU time per request, in microseconds, from the medians.
        if row["rps"]:
            for f in ("cpu_app", "cpu_front", "cpu_pg", "cpu_load"):
                if row[f] is not None:
                    row[f.replace("cpu_", "us_req_")] = \
                        row[f] / 100.0 * 1e6 / row["rps"]
        out.append(row)
    return out


def anchor_index(summary):
    """{(anchor name, route key or '*', concurrency): row}."""
    idx = {}
    for r in summary:
        if r["kind"] == "anchor":
            idx[(r["config"], r["route"], r["concurrency"])] = r
    return idx


def ratios(row, idx, route_kind):
    """Ratios of an app row to the anchors measured for its route."""
    out = {}
    for name in FRONT_ROUTES_ANCHORS:
        a = idx.get((name, "*", row["concurrency"]))
        if a and a["rps"] and row["rps"]:
            out[name] = row["rps"] / a["rps"]
    if route_kind == "db":
        # pgbench -C (a connection per transaction) is the anchor of the
        # per-request mode only.
        names = ["pgbench", "pgbench-pipelined"]
        if row.get("db_mode") == "per-request":
            names.append("pgbench-C")
        for name in names:
            a = idx.get((name, row["route"], row["concurrency"]))
            if a and a["rps"] and row["rps"]:
                out[name] = row["rps"] / a["rps"]
    return out


# --- formatting -------------------------------------------------------

def n0(v):
    return "—" if v is None else f"{v:,.0f}"


def n1(v):
    return "—" if v is None else f"{v:.1f}"


def n2(v):
    return "—" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}")


def ratio(v):
    if v is None:
        return "—"
    if v < 0.01:
        return f"{v:.2g}"
    return f"{v:.3f}" if v < 0.1 else f"{v:.2f}"


def rng(r):
    if r["rps_min"] is None:
        return "—"
    return f"{r['rps_min']:,.0f}–{r['rps_max']:,.0f}"


def cpu_split(r):
    parts = [n0(r.get(f)) for f in ("cpu_app", "cpu_front", "cpu_pg",
                                     "cpu_load", "cpu_other")]
    return " / ".join(parts)


def us_split(r):
    return " / ".join(n0(r.get(f)) for f in ("us_req_app", "us_req_front",
                                              "us_req_pg"))


def errs(r):
    bad = r["non2xx"] + r["socket_errors"]
    s = f"{r['non2xx']} / {r['socket_errors']}"
    if r["errors"]:
        s += " (" + "; ".join(r["errors"])[:120] + ")"
    return f"**{s}**" if bad or r["errors"] else s


# --- charts -------------------------------------------------------------

def charts(summary, routes, concurrency, outdir, reps):
    """One chart per route and concurrency, as SVG and PNG; returns
    [(route, conc, svg name, png name)]."""
    idx = anchor_index(summary)
    made = []
    for route in routes:
        for conc in concurrency:
            rows = [r for r in summary if r["kind"] == "app"
                    and r["route"] == route.key and r["concurrency"] == conc]
            if not rows:
                continue
            series = {}
            for r in rows:
                if r["rps"] is None:
                    continue
                series.setdefault(r["config"], []).append(
                    (r["workers"], r["rps"], r["rps_min"], r["rps_max"]))
            ser = [{"label": k, "points": v} for k, v in series.items()]
            anchors = []
            names = list(FRONT_ROUTES_ANCHORS) if route.kind == "front" else \
                ["pgbench", "pgbench-pipelined", "pgbench-C"]
            for name in names:
                a = idx.get((name, "*" if route.kind == "front" else route.key,
                             conc))
                if a:
                    label = name
                    if a.get("clients") and route.kind == "db":
                        label += f" (-c {a['clients']})"
                    anchors.append((label, a["rps"]))
            title = f"{route.path}: requests/s vs worker processes"
            sub = (f"wrk -c {conc}, median of {reps} repetition(s), bars min–max; "
                   f"dashed: anchors measured in the same run")
            base = f"chart-{route.key}" + (f"-c{conc}" if len(concurrency) > 1 else "")
            names = (f"{base}.svg", f"{base}.png")
            chart.draw([Path(outdir) / n for n in names], title, sub, ser, anchors)
            made.append((route, conc) + names)
    return made


# --- report.md ------------------------------------------------------------

def write_report(path, meta, plan, summary, made):
    idx = anchor_index(summary)
    L = []
    L.append(f"# tfb-fcgi bench, {meta['started']}")
    L.append("")
    L.append("Reproduce (from the repository root, on the commit below):")
    L.append("")
    L.append("```sh")
    L.append(meta["command"])
    L.append("```")
    L.append("")
    L.append("## Machine and software")
    L.append("")
    for k in ("cores", "cpu", "memory", "kernel", "os", "commit", "app",
              "nginx", "lighttpd", "postgresql", "wrk", "pgbench"):
        if meta["machine"].get(k):
            L.append(f"- **{k}**: {meta['machine'][k]}")
    L.append("")
    L.append("## Method")
    L.append("")
    L.append(
        f"- {plan.reps} repetition(s); each runs the anchors, then every "
        f"configuration in the same order (interleaved: a configuration's "
        f"repetitions are spread over the run, not back to back).")
    L.append(
        f"- Per configuration: the pool is restarted (the front server too "
        f"when the front or the socket type changes), then one {plan.warmup} s "
        f"warm-up cycles through its routes (none in per-request mode, which "
        f"keeps nothing warm); each route is then measured for {plan.duration} s "
        f"with `wrk -t{plan.threads} -c C` (C = "
        f"{', '.join(map(str, plan.concurrency))}) on loopback. After each "
        f"run the bench waits until the requests wrk left queued in the "
        f"pool's listen backlog are served, so they do not spill into the "
        f"next measurement.")
    pgc = plan.pgbench_clients or "the same as wrk's connections"
    L.append(
        f"- pgbench anchors: `-M prepared -j 1`, clients: {pgc} (the "
        f"`pgbench-C` anchor: a new connection per transaction, unprepared, "
        f"as the app's per-request mode, with at most 2 clients per core). "
        f"Once its clients are connected, pgbench warms up for {plan.warmup} s "
        f"plus 0.03 s per client (each new backend fills its caches on its "
        f"first transactions), then only the transactions that end in the "
        f"next {plan.duration} s count, from pgbench's per-transaction log, "
        f"between the same two CPU samples.")
    L.append(
        "- Medians over the repetitions, min–max beside req/s. Latencies "
        "are wrk's (exact histogram percentiles), in ms. Errors: non-2xx "
        "(status >= 400) / socket errors (connect, read, write, timeout).")
    L.append(
        "- CPU: % of one core over the measured window (the machine has "
        f"{meta['machine'].get('cores')} cores, so {100 * int(meta['machine'].get('cores') or 1)} "
        "is all of it), from /proc/PID/stat: app = the pool's workers, front = "
        "nginx/lighttpd (master and workers), pg = the postmaster and all its "
        "backends (those that exited included), load = wrk or pgbench, other = "
        "the rest of the machine. µs/req = CPU time per request of app / "
        "front / pg. RSS: a worker's VmRSS after the point (median of the "
        "workers' mean).")
    other = [r["cpu_other"] for r in summary if r.get("cpu_other") is not None]
    if other:
        mx = max(other)
        med = statistics.median(other)
        L.append(
            f"- **Noise**: the rest of the machine used {med:.0f}% of a core "
            f"(median over points, max {mx:.0f}%) while we measured; load "
            f"average at the start {meta.get('loadavg', '?')}."
            + (" Other work was running: compare the ratios, not the "
               "absolute numbers, and look at the min–max spread."
               if mx > 20 else ""))
    L.append("")

    # Anchors.
    L.append("## Anchors")
    L.append("")
    L.append("| anchor | route | clients | req/s (median) | min–max | p50 ms | "
             "p99 ms | max ms | errors | CPU % front / pg / load / other | what |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    notes = {a.key: a.note for a in plan.anchors()}
    for r in summary:
        if r["kind"] != "anchor":
            continue
        what = {"nginx-alone": "nginx `return 200 \"Hello, World!\"` by itself",
                "lighttpd-alone": "lighttpd serving a 13-byte static file"}.get(
                    r["config"], notes.get(f"{r['config']} {r['route']}", ""))
        cpu = " / ".join(n0(r.get(f)) for f in ("cpu_front", "cpu_pg",
                                                 "cpu_load", "cpu_other"))
        L.append(f"| {r['config']} | {r['route']} | {r['clients'] or r['concurrency']} | "
                 f"{n0(r['rps'])} | {rng(r)} | {n2(r['p50_ms'])} | "
                 f"{n2(r['p99_ms'])} | {n2(r['max_ms'])} | {errs(r)} | {cpu} | "
                 f"{what} |")
    L.append("")

    # Per route.
    by_route = {}
    for route in plan.routes:
        by_route[route.key] = route
    for route in plan.routes:
        rows = [r for r in summary if r["kind"] == "app" and r["route"] == route.key]
        if not rows:
            continue
        L.append(f"## `{route.path}`")
        L.append("")
        for rt, conc, svg, png in made:
            if rt.key == route.key:
                L.append(f"![{route.path} c={conc}]({png})  ")
                L.append(f"Chart: [{svg}]({svg}), [{png}]({png})")
                L.append("")
        rat_cols = ["nginx-alone", "lighttpd-alone"]
        if route.kind == "db":
            rat_cols += ["pgbench"]
            if route.name in ("queries", "updates"):
                rat_cols += ["pgbench-pipelined"]
            if any(r["db_mode"] == "per-request" for r in rows):
                rat_cols += ["pgbench-C"]
        head = ("| config | workers | c | req/s | min–max | p50 | p90 | p99 | max ms | "
                "non-2xx / sock err | CPU % app / front / pg / load / other | "
                "CPU µs/req app / front / pg | worker RSS MiB | "
                + " | ".join(f"÷ {c}" for c in rat_cols) + " |")
        L.append(head)
        L.append("|" + "---|" * (13 + len(rat_cols)))
        rows.sort(key=lambda r: (r["concurrency"], r["config"], r["workers"]))
        best = None
        for r in rows:
            rt = ratios(r, idx, route.kind)
            rss = r.get("rss_worker_kb_mean")
            L.append(
                f"| {r['config']} | {r['workers']} | {r['concurrency']} | "
                f"{n0(r['rps'])} | {rng(r)} | {n2(r['p50_ms'])} | "
                f"{n2(r['p90_ms'])} | {n2(r['p99_ms'])} | {n2(r['max_ms'])} | "
                f"{errs(r)} | {cpu_split(r)} | {us_split(r)} | "
                f"{n1(rss / 1024) if rss else '—'} | "
                + " | ".join(ratio(rt.get(c)) for c in rat_cols) + " |")
            if r["rps"] and (best is None or r["rps"] > best["rps"]):
                best = r
        L.append("")
        if best:
            rt = ratios(best, idx, route.kind)
            ref = "pgbench" if route.kind == "db" else "nginx-alone"
            extra = ""
            if rt.get(ref) is not None:
                extra = f", {rt[ref]:.2f} × {ref}"
                if route.kind == "db" and rt.get("nginx-alone") is not None:
                    extra += f" ({rt['nginx-alone']:.3f} × nginx-alone)"
            L.append(f"Best: {best['config']} with {best['workers']} workers, "
                     f"{n0(best['rps'])} req/s{extra}.")
            L.append("")

    # Per-request cost.
    pr = [r for r in summary if r["kind"] == "app" and r["db_mode"] == "per-request"]
    if pr:
        L.append("## What a connection per request costs")
        L.append("")
        L.append("Same front, socket, workers and route; only `--db-mode` differs. "
                 "CPU µs per request (app / pg) shows where the extra time goes: "
                 "PostgreSQL forks and initialises a backend for every connection.")
        L.append("")
        L.append("| route | config | workers | c | persistent req/s | per-request req/s | "
                 "per-request ÷ persistent | CPU µs/req app / pg persistent | "
                 "per-request | p99 ms persistent / per-request |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in pr:
            # The persistent twin: same workers, route and concurrency, the
            # same front and socket if measured, else the closest one.
            twins = [x for x in summary if x["kind"] == "app"
                     and x["db_mode"] == "persistent"
                     and x["workers"] == r["workers"] and x["route"] == r["route"]
                     and x["concurrency"] == r["concurrency"]]
            twins.sort(key=lambda x: (x["front"] != r["front"],
                                      x["socket"] != r["socket"]))
            if not twins:
                continue
            twin = twins[0]
            q = r["rps"] / twin["rps"] if r["rps"] and twin["rps"] else None
            L.append(
                f"| {r['route']} | {r['front']}/{r['socket']}"
                + ("" if (twin["front"], twin["socket"]) == (r["front"], r["socket"])
                   else f" (persistent: {twin['front']}/{twin['socket']})")
                + f" | {r['workers']} | "
                f"{r['concurrency']} | {n0(twin['rps'])} | {n0(r['rps'])} | "
                f"{ratio(q)} | {n0(twin.get('us_req_app'))} / {n0(twin.get('us_req_pg'))} | "
                f"{n0(r.get('us_req_app'))} / {n0(r.get('us_req_pg'))} | "
                f"{n2(twin['p99_ms'])} / {n2(r['p99_ms'])} |")
        L.append("")

    failed = [r for r in summary if r["errors"]]
    if failed:
        L.append("## Failures")
        L.append("")
        for r in failed:
            L.append(f"- {r['kind']} {r['config']} workers={r['workers']} "
                     f"{r['route']}: {'; '.join(r['errors'])}")
        L.append("")

    L.append("## Files")
    L.append("")
    L.append("- `results.csv`: one line per measurement (every repetition), "
             "columns as in `tests/bench/benchlib/report.py`.")
    L.append("- `results.json`: the same points, the summary and the settings.")
    L.append("- `pgbench/*.sql`: the scripts the pgbench anchors ran.")
    L.append("- `chart-*.svg`, `chart-*.png`: one chart per route.")
    L.append(f"- `bench.log`: the progress lines. Took {meta.get('elapsed_s', 0):.0f} s.")
    L.append("")
    Path(path).write_text("\n".join(L))


def write_all(outdir, meta, plan, points):
    """Every output file; the measurements first, so that they are kept
    whatever happens to the charts."""
    summary = summarize(points)
    write_csv(points, os.path.join(outdir, "results.csv"))
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "points": points, "summary": summary}, f,
                  indent=1, default=str)
    made = charts(summary, plan.routes, plan.concurrency, outdir, plan.reps)
    write_report(os.path.join(outdir, "report.md"), meta, plan, summary, made)
    return summary, made
