"""report: raw points -> summary, results.csv, results.json, charts,
report.md.

A point is one measurement (one repetition of one configuration, route
and concurrency, or of one anchor at one client count); the summary
groups the repetitions of the same thing and keeps the median, with min
and max beside it for req/s.  Every ratio in report.md is a ratio of two
medians measured in the same run.
"""

import dataclasses
import json
import os
import statistics
from pathlib import Path

from . import chart, host, phases

CSV_COLUMNS = [
    "rep", "kind", "config", "front", "socket", "db_mode", "workers",
    "route", "path", "concurrency", "clients", "duration_s", "requests",
    "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "non2xx",
    "socket_errors", "err_connect", "err_read", "err_write", "err_timeout",
    "cpu_app", "cpu_front", "cpu_pg", "cpu_load", "cpu_other", "cpu_total",
    "rss_worker_kb_mean", "rss_worker_kb_max", "started", "error",
    "keepalive", "cpu_affinity", "cpus_allowed", "cpu_workers_1pct",
    "cpu_top_share", "cswitch_per_req", "pool_requests", "req_workers_1pct",
    "req_top_share", "status_requests", "phase_us_reading",
    "phase_us_database", "phase_us_rendering", "phase_us_writing",
    "listen_queue_max", "listen_queue_max_new", "active_max",
    "active_max_new", "timing", "slow_peers", "slow_closed", "cpu_unaccounted",
]
# cpu_*: % of one core over the measured window (200 = both cores of a
# 2-core machine); cpu_load is wrk's or pgbench's own; cpu_other is the
# rest of the machine (someone else's work); cpu_total the whole machine.
# concurrency: wrk's connections, or a pgbench anchor's clients (= clients).
# keepalive: nginx's upstream keepalive (empty for lighttpd, which keeps
# none); cpu_affinity: tfb-spawn's --cpu-affinity; cpus_allowed: the CPU
# lists the kernel gave the workers.
# cpu_workers_1pct, cpu_top_share: how many workers used at least 1% of the
# pool's CPU time in the window, and the largest share (/proc/PID/schedstat);
# cswitch_per_req: the workers' context switches per request.
# pool_requests, req_workers_1pct, req_top_share: over the configuration's
# whole life (all its routes, warm-up included), from the supervisor's
# "stopped after R requests" lines: the requests, how many workers served
# at least 1% of them, the largest share.  The per-slot counts are in
# results.json (req_per_slot).
# status_requests, phase_us_*: from the pool's status page read before and
# after the window: the requests the workers served in it, and the mean
# µs per request in each phase (empty with --timing off).
# listen_queue_max, active_max: the status page's maxima after the window,
# which run from the pool's start; *_new: 1 when reached in the window
# (then the window's own), else 0 (a bound on it).  timing: the
# responder's --timing, on but in the off rounds of the timing's cost.
# slow_peers, slow_closed: in the rounds of the slow peers' cost, the
# FastCGI connections held open that sent one byte and stopped, and how
# many of them the workers closed in the point (each replaced at once).
# cpu_unaccounted: where the groups' CPU ticks added up to more than the
# machine's busy time over the window, the excess (cpu_other is then 0,
# never negative).

FRONT_ROUTES_ANCHORS = ("nginx-alone", "lighttpd-alone")


def write_csv(points, path):
    host.write_csv(path, CSV_COLUMNS, points)


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
            "db_mode": first.get("db_mode"), "keepalive": first.get("keepalive"),
            "cpu_affinity": first.get("cpu_affinity"),
            "cpus_allowed": first.get("cpus_allowed"), "concurrency": conc,
            "clients": first.get("clients"),
            "reps": len(ps), "reps_ok": len(ok),
            "rps": _median(rps), "rps_min": min(rps) if rps else None,
            "rps_max": max(rps) if rps else None,
            "max_ms": max((p["max_ms"] for p in ok if p.get("max_ms") is not None),
                          default=None),
            "non2xx": sum(p.get("non2xx") or 0 for p in ok),
            "socket_errors": sum(p.get("socket_errors") or 0 for p in ok),
            "err_timeout": sum(p.get("err_timeout") or 0 for p in ok),
            "requests": sum(p.get("requests") or 0 for p in ok),
            "errors": sorted({p["error"] for p in ps if p.get("error")}),
        }
        row.update(summarize_status(ok))
        for f in ("p50_ms", "p90_ms", "p99_ms", "cpu_app", "cpu_front",
                  "cpu_pg", "cpu_load", "cpu_other", "cpu_total",
                  "rss_worker_kb_mean", "rss_worker_kb_max", "cpu_workers_1pct",
                  "cpu_top_share", "cswitch_per_req", "pool_requests",
                  "req_workers_1pct", "req_top_share"):
            row[f] = _median([p.get(f) for p in ok])
        # CPU time per request, in microseconds, from the medians.
        for f in ("cpu_app", "cpu_front", "cpu_pg", "cpu_load"):
            v = us_per_req(row[f], row["rps"])
            if v is not None:
                row[f.replace("cpu_", "us_req_")] = v
        out.append(row)
    return out


def us_per_req(cpu_pct, rps):
    """CPU µs per request from a CPU share (% of one core) and a rate;
    None without both."""
    if cpu_pct is None or not rps:
        return None
    return cpu_pct / 100.0 * 1e6 / rps


def summarize_status(ok):
    """The status page's side of a summary row: the workers' requests
    summed over the repetitions, as wrk's are; each phase's median; each
    maximum's largest, reached in the window only if it was in every
    repetition (else it is a bound)."""
    row = {}
    counts = [p["status_requests"] for p in ok if p.get("status_requests") is not None]
    row["status_requests"] = sum(counts) if counts else None
    for ph in phases.PHASES:
        row[f"phase_us_{ph}"] = _median([p.get(f"phase_us_{ph}") for p in ok])
    for _, name in phases.MAXIMA:
        known = [p for p in ok if p.get(name) is not None]
        row[name] = max((p[name] for p in known), default=None)
        row[f"{name}_new"] = bool(known) and all(p[f"{name}_new"] for p in known)
    return row


def anchor_index(summary):
    """{(anchor name, route key or '*', concurrency): row}; a pgbench
    anchor's concurrency is its client count."""
    idx = {}
    for r in summary:
        if r["kind"] == "anchor":
            idx[(r["config"], r["route"], r["concurrency"])] = r
    return idx


def pg_names(route, rows):
    """The pgbench anchors a database route's rows are compared with, in
    column order; the like-for-like one is last but pgbench-C."""
    names = ["pgbench"]
    if route.name in ("queries", "updates"):
        names.append("pgbench-pipelined")
    if any(r["db_mode"] == "per-request" for r in rows):
        names.append("pgbench-C")
    return names


def like_name(route, row):
    """The anchor row is compared with like for like: the same statements
    sent the way the app sends them."""
    if row.get("db_mode") == "per-request":
        return "pgbench-C"
    return "pgbench-pipelined" if route.name in ("queries", "updates") else "pgbench"


def ratios(row, idx, route, plan):
    """Ratios of an app row to the anchors measured for its route: the
    front servers alone at the row's wrk concurrency; each pgbench anchor
    with as many clients as wrk's connections (key (name, "c")) and as
    many as the row's workers (key (name, "w"))."""
    out = {}
    for name in FRONT_ROUTES_ANCHORS:
        a = idx.get((name, "*", row["concurrency"]))
        if a and a["rps"] and row["rps"]:
            out[name] = row["rps"] / a["rps"]
    if route.kind == "db":
        for a in plan.anchors():
            if a.route != route:
                continue
            # pgbench -C (a connection per transaction) is the anchor of
            # the per-request mode only.
            if a.connect_each and row.get("db_mode") != "per-request":
                continue
            for how, n in (("c", row["concurrency"]), ("w", row["workers"])):
                ar = idx.get((a.name, route.key, plan.pg_cap(n, a)))
                if ar and ar["rps"] and row["rps"]:
                    out[(a.name, how)] = row["rps"] / ar["rps"]
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


def errs(r, timeouts=False):
    """non-2xx / socket errors (and, with timeouts, how many of those
    were timeouts), bold when any."""
    bad = r["non2xx"] + r["socket_errors"]
    s = f"{r['non2xx']} / {r['socket_errors']}"
    if timeouts:
        s += f" ({r.get('err_timeout') or 0} timeouts)"
    if r["errors"]:
        s += " (" + "; ".join(r["errors"])[:120] + ")"
    return f"**{s}**" if bad or r["errors"] else s


def pct(v):
    return "—" if v is None else f"{100 * v:.0f}%"


def req_spread(r):
    """"N of W, X%": workers that served at least 1% of the
    configuration's requests, and the busiest one's share."""
    if r.get("req_workers_1pct") is None:
        return "—"
    return f"{r['req_workers_1pct']:.0f} of {r['workers']}, {pct(r['req_top_share'])}"


def cpu_spread(r):
    if r.get("cpu_workers_1pct") is None:
        return "—"
    return f"{r['cpu_workers_1pct']:.0f}, {pct(r['cpu_top_share'])}"


# --- charts -------------------------------------------------------------

def charts(summary, routes, concurrency, outdir, reps):
    """One chart per route and concurrency, a PNG; returns
    [(route, conc, png name)]."""
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
            if route.kind == "front":
                for name in FRONT_ROUTES_ANCHORS:
                    a = idx.get((name, "*", conc))
                    if a:
                        anchors.append((name, a["rps"]))
            else:
                # Every client count measured: -c as wrk's connections,
                # and -c as a line's workers.
                for r in summary:
                    if r["kind"] == "anchor" and r["route"] == route.key:
                        anchors.append((f"{r['config']} -c {r['clients']}", r["rps"]))
            title = f"{route.path}: requests/s vs worker processes"
            sub = (f"wrk -c {conc}, median of {reps} repetition(s), bars min–max; "
                   f"dashed: anchors measured in the same run")
            base = f"chart-{route.key}" + (f"-c{conc}" if len(concurrency) > 1 else "")
            chart.draw(Path(outdir) / f"{base}.png", title, sub, ser, anchors)
            made.append((route, conc, f"{base}.png"))
    return made


# --- report.md ------------------------------------------------------------

def method(meta, plan, summary):
    """The Method section's lines."""
    L = ["## Method", ""]
    L.append(
        f"- {plan.reps} repetition(s); each runs the anchors, then every "
        f"configuration in the same order (interleaved: a configuration's "
        f"repetitions are spread over the run, not back to back).")
    L.append(
        f"- Per configuration: the pool is restarted (the front server too "
        f"when the front, the socket type or nginx's keepalive changes), then "
        f"one {plan.warmup} s "
        f"warm-up cycles through its routes (none in per-request mode, which "
        f"keeps nothing warm); each route is then measured for {plan.duration} s "
        f"with `wrk -t{plan.threads} -c C` (C = "
        f"{', '.join(map(str, plan.concurrency))}) on loopback. After each "
        f"run the bench sends one more request and waits until the workers "
        f"(and, in per-request mode, PostgreSQL) are idle for 0.1 s, so "
        f"that what wrk left queued does not spill into the next "
        f"measurement. After its last route the pool is stopped.")
    L.append(
        "- Labels: FRONT/SOCKET/DBMODE, then for nginx `/keepN`, the "
        "upstream `keepalive N` with `fastcgi_keep_conn on` (deploy/stack's "
        "KEEPALIVE; `keep0`: a new FastCGI connection per request); lighttpd's "
        "mod_fastcgi keeps no connections, so its labels have no keepalive. "
        "`/pinned`: tfb-spawn ran with `TFB_SPAWN_CPU_AFFINITY=slot` (worker "
        "i on CPU i mod n), the others with `none`; the CPUs the kernel let "
        "the workers use are read back from /proc and shown under "
        "*Wake-up order*.")
    words = {"wrk": "as many as wrk's connections",
             "workers": "as many as the workers of each configuration it "
                        "anchors",
             "cores": "as many as the cores (for routes measured at "
                      "workers = cores)"}
    pgc = "; ".join(words.get(c, f"{c}") for c in plan.pgbench_clients)
    L.append(
        f"- pgbench anchors: `-M prepared -j 1`, clients: {pgc} (the "
        f"`pgbench-C` anchor: a new connection per transaction, unprepared, "
        f"as the app's per-request mode, with at most 2 clients per core). "
        f"An app row is compared with each anchor twice: with as many "
        f"clients as wrk's connections (c) and, like for like, as many as "
        f"its workers (w), each a persistent connection as a worker's is. "
        f"Once its clients are connected, pgbench warms up for {plan.warmup} s "
        f"plus 0.03 s per client (each new backend fills its caches on its "
        f"first transactions), then only the transactions that end in the "
        f"next {plan.duration} s count, from pgbench's per-transaction log, "
        f"between the same two CPU samples.")
    if any(r.name in ("queries", "updates") for r in plan.routes):
        L.append(
            "- `pgbench-pipelined` sends the selects of `/queries` and "
            "`/updates` inside one `\\startpipeline` ... `\\endpipeline`, as "
            "the app sends them in one libpq pipeline, with one difference: "
            "the app puts a Sync after each select (each its own implicit "
            "transaction, one failure failing one statement), pgbench cannot "
            "and sends one Sync at `\\endpipeline` for all of them."
            + (" The plain `pgbench` anchor sends them one after the other "
               "(a round trip each)." if plan.sequential else ""))
    if any(r.name == "updates" for r in plan.routes):
        L.append(
            "- `/updates` anchors: after the selects, the app's statement "
            "`UPDATE world SET randomnumber = v.r FROM unnest(...::int[], "
            "...::int[]) AS v(id, r) WHERE world.id = v.id`, its two arrays "
            "written `ARRAY[:id1, ...]` of the script's `\\set` values (bound "
            "as 2N integers; the app binds two array literals). Id i is drawn "
            "from the i-th of N equal bands of the table, so the ids ascend "
            "as the app's sorted ids do and concurrent transactions lock rows "
            "in one order; `--max-tries 10` retries a deadlock or "
            "serialization failure should one happen.")
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
    L.append(
        "- How the requests spread over the workers: as the supervisor "
        "stops a worker it logs `stopped after R requests`; the bench reads "
        "those lines of app.log written since the pool started. They count "
        "every request of the configuration (its routes, warm-up and the "
        "checks before the runs). Per point, each worker's CPU time in the "
        "window (/proc/PID/schedstat, in ns) gives the same spread for one "
        "route, and the workers' context switches (voluntary and not, "
        "/proc/PID/status) per request what the wake-ups cost.")
    L.append(
        "- Where a request's time goes: where a pool serves, the bench reads "
        "its status page (`tfb-spawn status SOCKET json`, served by a process "
        "of the supervisor's, never by a worker) just before and just after "
        "the window, inside the two CPU samples. The differences are the "
        "requests the workers served and the time those spent in each phase "
        "(reading, database, rendering, writing), set against wrk's count.")
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
    return L


def plan_order(plan):
    """A sort key that puts rows in the plan's order of configurations."""
    order = {(c.label, c.workers): i for i, c in enumerate(plan.configs)}
    return lambda r: order.get((r["config"], r["workers"]), len(order))


def line_key(r):
    """The line a row belongs to: its label and wrk concurrency."""
    return (r["config"], r["concurrency"])


def app_rows(summary, route=None):
    return [r for r in summary if r["kind"] == "app"
            and (route is None or r["route"] == route.key)]


def section_ratios(plan, summary, idx):
    """## Ratios: oversubscription, the front-server ceiling, keep-conn,
    the database like for like."""
    L = ["## Ratios within this run", ""]
    L.append("Each a ratio of two medians of this run. p99 and errors are "
             "the row's own.")
    L.append("")

    # Oversubscription: each worker count against the best of its line.
    L.append("### Workers against the best worker count of the same line")
    L.append("")
    L.append("| route | line | c | workers | req/s | ÷ best | p99 ms | "
             "non-2xx / sock err | CPU µs/req app / front / pg | "
             "context switches / req | workers ≥ 1% of requests, busiest |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    n = 0
    for route in plan.routes:
        lines = {}
        for r in app_rows(summary, route):
            lines.setdefault(line_key(r), []).append(r)
        for (label, conc), rows in lines.items():
            if len(rows) < 2:
                continue
            rows.sort(key=lambda r: r["workers"])
            best = max((r for r in rows if r["rps"]), key=lambda r: r["rps"],
                       default=None)
            for r in rows:
                q = r["rps"] / best["rps"] if best and r["rps"] else None
                mark = " (best)" if r is best else ""
                L.append(f"| {route.path} | {label} | {conc} | {r['workers']} | "
                         f"{n0(r['rps'])} | {ratio(q)}{mark} | {n2(r['p99_ms'])} | "
                         f"{errs(r)} | {us_split(r)} | {n1(r.get('cswitch_per_req'))} | "
                         f"{req_spread(r)} |")
                n += 1
    if not n:
        L.append("| (no line measured at two worker counts or more) |||||||||||")
    L.append("")

    # The front server's ceiling.
    front_routes = [r for r in plan.routes if r.kind == "front"]
    if front_routes:
        L.append("### Best of each line against its front server alone")
        L.append("")
        L.append("| route | line | c | best workers | req/s | front alone | "
                 "req/s | ratio | p99 ms | non-2xx / sock err |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for route in front_routes:
            lines = {}
            for r in app_rows(summary, route):
                lines.setdefault(line_key(r), []).append(r)
            for (label, conc), rows in lines.items():
                best = max((r for r in rows if r["rps"]), key=lambda r: r["rps"],
                           default=None)
                if best is None:
                    continue
                name = f"{best['front']}-alone"
                a = idx.get((name, "*", conc))
                q = best["rps"] / a["rps"] if a and a["rps"] else None
                L.append(f"| {route.path} | {label} | {conc} | {best['workers']} | "
                         f"{n0(best['rps'])} | {name} | {n0(a['rps'] if a else None)} | "
                         f"{ratio(q)} | {n2(best['p99_ms'])} | {errs(best)} |")
        L.append("")

    # Keep-conn against none, same everything else.
    groups = {}
    for r in app_rows(summary):
        if r["front"] == "nginx" and r.get("keepalive") is not None:
            k = (r["route"], r["socket"], r["db_mode"], r.get("cpu_affinity"),
                 r["workers"], r["concurrency"])
            groups.setdefault(k, []).append(r)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if groups:
        L.append("### nginx keep-conn against none")
        L.append("")
        L.append("Same route, socket, db mode, placement and workers; only "
                 "nginx's upstream `keepalive` differs (0: a new FastCGI "
                 "connection per request).")
        L.append("")
        L.append("| route | line | workers | c | keepalive | req/s | ÷ keepalive 0 | "
                 "p50 ms | p99 ms | non-2xx / sock err | CPU µs/req app / front / pg | "
                 "workers ≥ 1% of requests, busiest |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        paths = {r.key: r.path for r in plan.routes}
        order = {r.key: i for i, r in enumerate(plan.routes)}
        for k in sorted(groups, key=lambda k: (order.get(k[0], 99),) + tuple(map(str, k[1:]))):
            rows = sorted(groups[k], key=lambda r: r["keepalive"])
            zero = next((r for r in rows if r["keepalive"] == 0), None)
            line = f"nginx/{k[1]}/{k[2]}" + ("/pinned" if k[3] == "slot" else "")
            for r in rows:
                q = r["rps"] / zero["rps"] if zero and zero["rps"] and r["rps"] else None
                L.append(f"| {paths.get(k[0], k[0])} | {line} | {k[4]} | {k[5]} | "
                         f"{r['keepalive']} | {n0(r['rps'])} | {ratio(q)} | "
                         f"{n2(r['p50_ms'])} | {n2(r['p99_ms'])} | {errs(r, True)} | "
                         f"{us_split(r)} | {req_spread(r)} |")
        L.append("")

    # The database, like for like.
    db_routes = [r for r in plan.routes if r.kind == "db"]
    rows_out = []
    for route in db_routes:
        for r in sorted(app_rows(summary, route), key=plan_order(plan)):
            name = like_name(route, r)
            a = next((x for x in plan.anchors()
                      if x.route == route and x.name == name), None)
            if a is None:
                continue
            ar = idx.get((name, route.key, plan.pg_cap(r["workers"], a)))
            if not ar:
                continue
            q = r["rps"] / ar["rps"] if ar["rps"] and r["rps"] else None
            rows_out.append(
                f"| {route.path} | {r['config']} | {r['workers']} | {r['concurrency']} | "
                f"{n0(r['rps'])} | {name} -c {ar['clients']} | {n0(ar['rps'])} | "
                f"{ratio(q)} | {n2(r['p99_ms'])} / {n2(ar['p99_ms'])} | {errs(r)} |")
    if rows_out:
        L.append("### Against PostgreSQL alone, like for like")
        L.append("")
        L.append("Each row against the pgbench anchor that sends the same "
                 "statements the same way (pipelined for `/queries` and "
                 "`/updates`), with as many clients as the row has workers. "
                 "Rows whose worker count pgbench was not run at are left out "
                 "(`--pgbench-clients workers` runs them all).")
        L.append("")
        L.append("| route | config | workers | c | req/s | anchor | anchor req/s | "
                 "ratio | p99 ms app / anchor | non-2xx / sock err |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        L += rows_out
        L.append("")

    # /queries against /db of the same configuration.
    dbs = {(r["config"], r["workers"], r["concurrency"]): r
           for r in summary if r["kind"] == "app" and r["route"] == "db"}
    pairs = []
    for route in plan.routes:
        if route.name != "queries":
            continue
        for r in app_rows(summary, route):
            d = dbs.get((r["config"], r["workers"], r["concurrency"]))
            if d and d["rps"] and r["rps"]:
                pairs.append((route, r, d))
    if pairs:
        L.append("### `/queries` against `/db` of the same configuration")
        L.append("")
        L.append("| route | config | workers | c | req/s | `/db` req/s | ratio | "
                 "p99 ms | non-2xx / sock err |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        by_plan = plan_order(plan)
        for route, r, d in sorted(pairs, key=lambda x: (x[0].key, by_plan(x[1]))):
            L.append(f"| {route.path} | {r['config']} | {r['workers']} | "
                     f"{r['concurrency']} | {n0(r['rps'])} | {n0(d['rps'])} | "
                     f"{ratio(r['rps'] / d['rps'])} | {n2(r['p99_ms'])} | {errs(r)} |")
        L.append("")
    return L


def order_verdict(rows):
    """"lifo", "fifo", or "mixed": what the request spreads of rows (at 4
    workers or more) say about the order in which idle workers are woken;
    None without such rows."""
    verdicts = []
    for r in rows:
        w, n1w, top = r["workers"], r.get("req_workers_1pct"), r.get("req_top_share")
        if w < 4 or n1w is None:
            continue
        if n1w <= w / 2:
            verdicts.append("lifo")
        elif n1w == w and top <= 2 / w:
            verdicts.append("fifo")
        else:
            verdicts.append("mixed")
    if not verdicts:
        return None
    return verdicts[0] if len(set(verdicts)) == 1 else "mixed"


def spread_line(r, what):
    w = r["workers"]
    return (f"- {what}, {r['config']}, {w} workers: {r['req_workers_1pct']:.0f} "
            f"served at least 1% of the requests, the busiest {pct(r['req_top_share'])} "
            f"(an even spread: {pct(1 / w)} each).")


def wakeup_reading(plan, summary):
    """What the spreads say about the order in which waiting workers are
    woken, and what the wake-ups cost, in sentences.  The light-load probe
    shows the order (fewer connections than workers: someone must choose
    who serves); the sweep's own load shows what that leaves of it when
    there is more work than cores.  Persistent lines only: in per-request
    mode every worker is busy waiting for PostgreSQL, so any order
    spreads the work."""
    out = []
    probes = [r for r in summary if r["kind"] == "probe"
              and r.get("req_workers_1pct") is not None]
    for r in probes:
        if r["workers"] >= 4:
            out.append(spread_line(r, f"Light load (wrk -c {r['concurrency']}, "
                                      f"`/plaintext`)"))
    v = order_verdict(probes)
    if v == "lifo":
        out.append(
            "- So at light load the work goes to a few workers however many "
            "wait: the most recently idle worker is woken first (last in, "
            "first out), as `EPOLLEXCLUSIVE` on the shared listening socket "
            "does, and the others sleep. A first-in-first-out wake-up "
            "(processes blocked in `accept()`) would spread it evenly and "
            "touch every worker and its PostgreSQL backend in turn.")
    elif v == "fifo":
        out.append(
            "- So at light load the work spreads evenly: the workers are "
            "woken first in, first out (round robin), each in turn.")
    elif v == "mixed":
        out.append(
            "- At light load some configurations concentrate the work on a "
            "few workers (last in, first out), others spread it: see each "
            "line above.")
    # The sweep's own load, at the largest worker count of each line.
    lines = {}
    for r in app_rows(summary):
        if r.get("db_mode") == "persistent":
            lines.setdefault(r["config"], {}).setdefault(r["workers"], []).append(r)
    loaded = []
    for label, by_w in lines.items():
        r = by_w[max(by_w)][0]
        if r["workers"] >= 4 and r.get("req_workers_1pct") is not None:
            loaded.append(r)
            out.append(spread_line(r, f"Under wrk -c {r['concurrency']} "
                                      f"(the configuration's whole life)"))
    if loaded and all(r["req_workers_1pct"] >= 0.75 * r["workers"] for r in loaded):
        out.append(
            "- Under the sweep's load nearly every worker gets work whatever "
            "the order: there are more requests in flight than cores, so "
            "whoever is idle is woken. What more workers cost there shows in "
            "their context switches and CPU per request (the worker-count "
            "table under *Ratios within this run*).")
    elif loaded:
        out.append(
            "- Under the sweep's load the work spreads over more workers, "
            "since more requests are in flight than there are cores, but not "
            "evenly: compare each busiest share with the even one. What more "
            "workers cost there shows in their context switches and CPU per "
            "request (the worker-count table under *Ratios within this run*).")
    # The cost: the line with the most worker counts, per route, from its
    # fewest workers to its most.
    if lines:
        label, by_w = max(lines.items(), key=lambda kv: len(kv[1]))
        if len(by_w) >= 2:
            lo, hi = min(by_w), max(by_w)
            order = {r.key: i for i, r in enumerate(plan.routes)}
            for a in sorted(by_w[lo], key=lambda r: order.get(r["route"], 99)):
                b = next((x for x in by_w[hi] if x["route"] == a["route"]
                          and x["concurrency"] == a["concurrency"]), None)
                if b is None or a.get("us_req_app") is None or b.get("us_req_app") is None:
                    continue
                out.append(
                    f"- What it costs, {label}, {a['path']}: the workers' CPU "
                    f"per request {n0(a['us_req_app'])} µs with {lo} worker(s), "
                    f"{n0(b['us_req_app'])} with {hi}; context switches per "
                    f"request {n1(a.get('cswitch_per_req'))} and "
                    f"{n1(b.get('cswitch_per_req'))}; req/s "
                    f"{n0(a['rps'])} and {n0(b['rps'])}.")
    return out


def section_wakeup(plan, summary):
    """## Wake-up order: how the requests spread over the workers, with
    the placement the kernel gave them."""
    rows = [r for r in app_rows(summary)]
    if not any(r.get("req_workers_1pct") is not None or
               r.get("cpu_workers_1pct") is not None for r in rows):
        return []
    L = ["## Wake-up order: how the work spread over the workers", ""]
    L.append(
        "Under the sweep's load, per configuration: the requests the "
        "supervisor counted for each worker (the configuration's routes, "
        "warm-up and checks), how many workers served at least 1% of them "
        "and the busiest one's share (an even spread gives each 1/W); then, "
        "per route, the same spread of the workers' CPU time in the measured "
        "window, their context switches per request and the CPU split. Few "
        "workers doing everything means the most recently idle worker is "
        "woken first (last in, first out); all of them in equal parts, "
        "first in, first out. With keep-conn a worker serves every request "
        "on the connections it accepted, so there the spread also says who "
        "accepted nginx's connections.")
    L.append("")
    L.append("| config | workers | CPUs allowed | requests | workers ≥ 1% of "
             "requests, busiest | per route: workers ≥ 1% of CPU, busiest; "
             "context switches / req; CPU µs/req app / front / pg |")
    L.append("|---|---|---|---|---|---|")
    configs = {}
    for r in rows:
        configs.setdefault((r["config"], r["workers"]), []).append(r)
    order = {r.key: i for i, r in enumerate(plan.routes)}
    by_plan = plan_order(plan)
    for (label, w), rs in sorted(configs.items(), key=lambda kv: by_plan(kv[1][0])):
        rs.sort(key=lambda r: (order.get(r["route"], 99), r["concurrency"]))
        first = rs[0]
        per = "; ".join(
            f"{r['route']}" + (f" c={r['concurrency']}" if len(plan.concurrency) > 1 else "")
            + f": {cpu_spread(r)}, {n1(r.get('cswitch_per_req'))} cs, {us_split(r)}"
            for r in rs)
        L.append(f"| {label} | {w} | {first.get('cpus_allowed') or '—'} | "
                 f"{n0(first.get('pool_requests'))} | {req_spread(first)} | {per} |")
    L.append("")
    probes = [r for r in summary if r["kind"] == "probe"]
    if probes:
        L.append(f"At light load: `/plaintext` with wrk -c {plan.probe}, fewer "
                 "connections than workers, on a pool started for it alone "
                 "(its request counts are its own), before the configuration's "
                 "routes run on a fresh one. Only where every request comes "
                 "on a new FastCGI connection (nginx `keep0`, lighttpd), so "
                 "that each one wakes a worker: a kept connection's requests "
                 "go to the worker that holds it, whatever the order.")
        L.append("")
        L.append("| config | workers | req/s | p99 ms | non-2xx / sock err | "
                 "workers ≥ 1% of requests, busiest | workers ≥ 1% of CPU, "
                 "busiest | context switches / req | CPU µs/req app / front / pg |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in sorted(probes, key=by_plan):
            L.append(f"| {r['config']} | {r['workers']} | {n0(r['rps'])} | "
                     f"{n2(r['p99_ms'])} | {errs(r)} | {req_spread(r)} | "
                     f"{cpu_spread(r)} | {n1(r.get('cswitch_per_req'))} | "
                     f"{us_split(r)} |")
        L.append("")
    reading = wakeup_reading(plan, summary)
    if reading:
        L.append("What it shows about the wake-up order:")
        L.append("")
        L += reading
        L.append("")

    # Pinned against unpinned, same everything else.
    free = {(r["route"], r["front"], r["socket"], r["db_mode"], r.get("keepalive"),
             r["workers"], r["concurrency"]): r
            for r in rows if r.get("cpu_affinity") == "none"}
    pinned = []
    for r in rows:
        if r.get("cpu_affinity") != "slot":
            continue
        twin = free.get((r["route"], r["front"], r["socket"], r["db_mode"],
                         r.get("keepalive"), r["workers"], r["concurrency"]))
        if twin:
            pinned.append((r, twin))
    if pinned:
        L.append("### Pinned against free placement")
        L.append("")
        L.append("| route | config | workers | c | free req/s | pinned req/s | "
                 "pinned ÷ free | p99 ms free / pinned | CPU µs/req app free / "
                 "pinned | errors pinned |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r, t in sorted(pinned, key=lambda x: (order.get(x[0]["route"], 99),
                                                  by_plan(x[0]))):
            q = r["rps"] / t["rps"] if r["rps"] and t["rps"] else None
            L.append(f"| {r['path']} | {r['config']} | {r['workers']} | "
                     f"{r['concurrency']} | {n0(t['rps'])} | {n0(r['rps'])} | "
                     f"{ratio(q)} | {n2(t['p99_ms'])} / {n2(r['p99_ms'])} | "
                     f"{n0(t.get('us_req_app'))} / {n0(r.get('us_req_app'))} | "
                     f"{errs(r)} |")
        L.append("")
    return L


def us(v):
    """µs: one decimal below 100."""
    if v is None:
        return "—"
    return f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def counted(r):
    """"wrk's requests / the workers' (+x%)": the status page's count
    against the load generator's."""
    n, m = r.get("requests"), r.get("status_requests")
    if m is None:
        return f"{n0(n)} / —"
    diff = f" ({100 * (m - n) / n:+.1f}%)" if n else ""
    return f"{n0(n)} / {n0(m)}{diff}"


def maximum(r, name):
    """A status page maximum: "N" when reached in the window, "≤ N" when
    reached before it (the pool's start, the warm-up, an earlier route)."""
    if r.get(name) is None:
        return "—"
    return f"{r[name]}" if r.get(f"{name}_new") else f"≤ {r[name]}"


def phase_cells(r):
    """The phases' cells of a row: µs per request in each, their sum,
    their shares."""
    sh = phases.shares(r)
    return (" | ".join(us(r.get(f"phase_us_{p}")) for p in phases.PHASES)
            + f" | {us(phases.total_us(r))} | "
            + (" / ".join(f"{100 * x:.0f}" for x in sh) if sh else "—"))


def phase_table(plan, summary, route):
    """### Where a request's time goes: per row of the route (and the
    light-load probe on /plaintext), the status page's phases beside the
    CPU split from /proc."""
    rows = [r for r in summary if r["kind"] in ("app", "probe")
            and r["route"] == route.key]
    if not any(r.get("status_requests") is not None for r in rows):
        return []
    by_plan = plan_order(plan)
    rows.sort(key=lambda r: (r["kind"] != "app", r["concurrency"], by_plan(r)))
    L = [f"### `{route.path}`: where a request's time goes", ""]
    L.append("From the pool's status page, read just before and just after "
             "each measured window: the mean time a request spent in each "
             "phase inside a worker, in µs (reading the request, waiting on "
             "PostgreSQL, rendering, writing), their sum and shares; beside "
             "them the CPU per request from /proc. Requests: wrk's count and "
             "the workers' (the status page is served by the supervisor's own "
             "process, so reading it adds none). Maxima run from the pool's "
             "start: `≤ N` was reached before the window.")
    L.append("")
    L.append("| config | workers | c | requests wrk / workers | reading | "
             "database | rendering | writing | in a worker | shares % r / d / "
             "r / w | CPU µs/req app / front / pg | max listen queue | "
             "max active |")
    L.append("|" + "---|" * 13)
    for r in rows:
        label = r["config"] + (" (probe)" if r["kind"] == "probe" else "")
        L.append(f"| {label} | {r['workers']} | {r['concurrency']} | "
                 f"{counted(r)} | {phase_cells(r)} | {us_split(r)} | "
                 f"{maximum(r, 'listen_queue_max')} | "
                 f"{maximum(r, 'active_max')} |")
    L.append("")
    return L


# The timing's budget: on, a pool may serve at most 3% fewer requests
# than off.
TIMING_BUDGET = 0.03


def timing_verdict(ratios, budget=TIMING_BUDGET):
    """What the rounds' on ÷ off ratios say against the budget: "within
    budget" when every round is, "over budget" when none is, "within
    noise" when the spread straddles it."""
    floor = 1.0 - budget
    if min(ratios) >= floor:
        return "within budget"
    if max(ratios) < floor:
        return "over budget"
    return "within noise"


def paired_rounds(points, kind, side, a, b):
    """[(round, order, the a point, the b point)] of the points of kind, in
    round order; side(point) names its side, order is the sides in the
    order they ran."""
    rounds = {}
    for p in points:
        if p["kind"] == kind:
            rounds.setdefault(p["rep"], []).append(p)
    out = []
    for rnd, ps in sorted(rounds.items()):
        by = {side(p): p for p in ps}
        out.append((rnd, [side(p) for p in ps], by.get(a), by.get(b)))
    return out


def timing_rounds(points):
    """The timing's cost: (round, order, off point, on point)."""
    return paired_rounds(points, "timing", lambda p: p["timing"], "off", "on")


def round_ratio(off, on):
    """on ÷ off of one round's req/s, None unless both were measured."""
    if not off or not on or off.get("error") or on.get("error") \
            or not off.get("rps") or not on.get("rps"):
        return None
    return on["rps"] / off["rps"]


def section_timing(plan, points):
    """## What the timing costs: /db with the responder's --timing off and
    on, round by round, the median ratio with its spread and a verdict
    against the budget."""
    rounds = timing_rounds(points)
    if not rounds:
        return []
    cfg = plan.timing_config("on")
    L = ["## What the timing costs", ""]
    L.append(
        f"`/db` on {cfg.label} with {cfg.workers} workers, `wrk -c "
        f"{max(plan.concurrency)}`, {plan.timing_duration} s per point after "
        f"a {plan.warmup} s warm-up, "
        f"the pool restarted for each point with the responder's `--timing "
        f"off` (request counts only) or `--timing on` (the default: each "
        f"request's phases, for the status page), off first in odd rounds "
        f"and on first in even ones so that a drift favours neither. The "
        f"phases column is what the status page saw: none with `--timing "
        f"off`.")
    L.append("")
    L.append("| round | order | off req/s | on req/s | on ÷ off | CPU µs/req "
             "app off / on | p99 ms off / on | phases µs/req off / on |")
    L.append("|---|---|---|---|---|---|---|---|")
    ratios = []
    for rnd, order, off, on in rounds:
        q = round_ratio(off, on)
        if q is not None:
            ratios.append(q)
        a, b = off or {}, on or {}
        L.append(f"| {rnd} | {', '.join(order)} | {n0(a.get('rps'))} | "
                 f"{n0(b.get('rps'))} | {ratio(q)} | "
                 f"{n0(us_per_req(a.get('cpu_app'), a.get('rps')))} / "
                 f"{n0(us_per_req(b.get('cpu_app'), b.get('rps')))} | "
                 f"{n2(a.get('p99_ms'))} / {n2(b.get('p99_ms'))} | "
                 f"{timing_phases(a)} / {timing_phases(b)} |")
    L.append("")
    if not ratios:
        L.append("No round measured both: no verdict.")
        L.append("")
        return L
    med = statistics.median(ratios)
    verdict = timing_verdict(ratios)
    cost = (f"the timing costs {100 * (1 - med):.1f}% of `/db`'s throughput"
            if med < 1 else "no cost shows: on served as many requests as "
            "off or more")
    L.append(
        f"**on ÷ off: {med:.3f}** (median of {len(ratios)} round(s), min–max "
        f"{min(ratios):.3f}–{max(ratios):.3f}): {cost}. Budget "
        f"{100 * TIMING_BUDGET:.0f}%: **{verdict}**"
        + {"within budget": " (every round is).",
           "over budget": " (no round is).",
           "within noise": f" (the rounds' spread straddles "
                           f"{1 - TIMING_BUDGET:.2f}: more rounds, or a "
                           f"quieter machine, would tell).",
           }[verdict])
    L.append("")
    return L


def slow_rounds(points):
    """The slow peers' cost: (round, order, without point, with point)."""
    return paired_rounds(points, "slow",
                         lambda p: "with" if p.get("slow_peers") else "without",
                         "without", "with")


def slow_ratios(points):
    """with ÷ without of every round that measured both."""
    return [q for _, _, a, b in slow_rounds(points)
            if (q := round_ratio(a, b)) is not None]


def section_slow(plan, points):
    """## What slow FastCGI peers cost: /plaintext without and with
    connections that send one byte and stop, round by round."""
    rounds = slow_rounds(points)
    if not rounds:
        return []
    cfg = plan.timing_config("on")
    L = ["## What slow FastCGI peers cost", ""]
    L.append(
        f"`/plaintext` on {cfg.label} with {cfg.workers} workers, `wrk -c "
        f"{max(plan.concurrency)}`, {plan.timing_duration} s per point after "
        f"a {plan.warmup} s warm-up, the pool restarted for each point; in "
        f"the *with* points {plan.slow_peers} connections to the pool's "
        f"socket each send one byte of a record header and stop, and one the "
        f"workers close (at their read deadline, `--read-timeout`) is "
        f"opened again at once. Without first in odd rounds.")
    L.append("")
    L.append("| round | order | without req/s | with req/s | with ÷ without | "
             "p99 ms without / with | slow peers closed by the workers |")
    L.append("|---|---|---|---|---|---|---|")
    for rnd, order, a, b in rounds:
        q = round_ratio(a, b)
        a, b = a or {}, b or {}
        L.append(f"| {rnd} | {', '.join(order)} | {n0(a.get('rps'))} | "
                 f"{n0(b.get('rps'))} | {ratio(q)} | {n2(a.get('p99_ms'))} / "
                 f"{n2(b.get('p99_ms'))} | {n0(b.get('slow_closed'))} |")
    L.append("")
    qs = slow_ratios(points)
    if qs:
        L.append(f"**with ÷ without: {statistics.median(qs):.3f}** (median of "
                 f"{len(qs)} round(s), min–max {min(qs):.3f}–{max(qs):.3f}).")
        L.append("")
    return L


def timing_phases(p):
    """A point's time in a worker per the status page: its sum of
    phases, "none" when the workers timed none."""
    if p.get("status_requests") is None:
        return "—"
    total = phases.total_us(p)
    return "none" if total is None else us(total)


# --- targets ------------------------------------------------------------

# The performance targets this project holds itself to, read at what
# deploy/stack ships (nginx over a unix socket, keepalive 32, persistent
# database connections) with 64 wrk connections, a worker per core where
# the measure names no worker count.  Each reader gets a Targets and
# returns the value, or raises Missing with what the run lacked.
TARGET_CLIENTS = 64
TARGET_RSS_KB = 8 * 1024
TARGET_P99_MS = 10


class Missing(Exception):
    pass


class Targets:
    """The rows of a run the targets are read from."""

    def __init__(self, plan, summary, idx, points=()):
        self.plan, self.idx, self.points = plan, idx, points
        shipped = plan.timing_config("on")
        self.label, self.cores = shipped.label, plan.cores
        self.conc = (TARGET_CLIENTS if TARGET_CLIENTS in plan.concurrency
                     else max(plan.concurrency))
        self.rows = [r for r in app_rows(summary)
                     if r["concurrency"] == self.conc and r["rps"]]
        self.routes = {r.key: r for r in plan.routes}

    def row(self, route, workers=None, label=None):
        workers = workers or self.cores
        label = label or self.label
        for r in self.rows:
            if (r["route"], r["workers"], r["config"]) == (route, workers, label):
                return r
        raise Missing(f"{route} at {label} w={workers}")

    def line(self, route):
        """The shipped configuration's rows of route, every worker count."""
        rows = [r for r in self.rows if r["route"] == route and r["config"] == self.label]
        if not rows:
            raise Missing(f"{route} at {self.label}")
        return rows

    def like(self, route):
        """route's req/s over its like-for-like pgbench anchor with as many
        clients as workers."""
        r = self.row(route)
        name = like_name(self.routes[route], r)
        v = ratios(r, self.idx, self.routes[route], self.plan).get((name, "w"))
        if v is None:
            raise Missing(f"{name} {route} at {self.cores} clients")
        return v

    def per(self, route, other):
        return self.row(route)["rps"] / self.row(other)["rps"]

    def us(self, route):
        v = self.row(route).get("us_req_app")
        if v is None:
            raise Missing(f"the workers' CPU on {route}")
        return v

    def of_best(self, route, workers):
        rows = self.line(route)
        return self.row(route, workers)["rps"] / max(r["rps"] for r in rows)

    def best_of_front(self, route):
        best = max(self.line(route), key=lambda r: r["rps"])
        a = self.idx.get(("nginx-alone", "*", self.conc))
        if not a or not a["rps"]:
            raise Missing("nginx-alone")
        return best["rps"] / a["rps"], best

    def keep(self, route, k):
        """keepalive k against keepalive 0, workers = cores: the ratio and
        the keepalive-k row."""
        shipped = self.plan.timing_config("on")
        r, zero = (self.row(route, label=dataclasses.replace(shipped, keepalive=n).label)
                   for n in (k, 0))
        return r["rps"] / zero["rps"], r

    def slow(self):
        """The median round of with slow peers ÷ without."""
        qs = slow_ratios(self.points)
        if not qs:
            raise Missing("the slow peers' rounds (--slow-rounds)")
        if self.plan.slow_peers < 100:
            raise Missing(f"100 slow peers (this run held {self.plan.slow_peers})")
        return statistics.median(qs)

    def rss_mib(self):
        kb = [r["rss_worker_kb_max"] for r in self.rows
              if r["config"] == self.label and r.get("rss_worker_kb_max")]
        if not kb:
            raise Missing("a worker RSS")
        return max(kb) / 1024


def _at_least(bound):
    return lambda v: (ratio(v), v >= bound)


def _with_p99(bound):
    """A ratio at least bound from a row with p99 under TARGET_P99_MS and
    no timeout."""
    def judge(got):
        v, r = got
        p99, tmo = r["p99_ms"], r.get("err_timeout") or 0
        ok = v >= bound and p99 is not None and p99 < TARGET_P99_MS and tmo == 0
        return f"{ratio(v)} (p99 {n2(p99)} ms, {tmo} timeouts)", ok
    return judge


# (measure, target, reader, judge): judge(value) -> (shown, met).
TARGETS = (
    ("`/queries?queries=20` ÷ pgbench-pipelined, clients = workers", "≥ 0.6",
     lambda t: t.like("queries20"), _at_least(0.6)),
    ("`/updates?queries=20` ÷ pgbench-pipelined, clients = workers", "≥ 0.5",
     lambda t: t.like("updates20"), _at_least(0.5)),
    ("`/queries?queries=20` ÷ `/db`", "≥ 0.35",
     lambda t: t.per("queries20", "db"), _at_least(0.35)),
    ("the workers' CPU µs per `/plaintext`", "≤ 15",
     lambda t: t.us("plaintext"), lambda v: (n1(v), v <= 15)),
    ("the workers' CPU µs per `/db`", "≤ 25",
     lambda t: t.us("db"), lambda v: (n1(v), v <= 25)),
    ("`/fortunes` ÷ `/db`", "≥ 0.9",
     lambda t: t.per("fortunes", "db"), _at_least(0.9)),
    ("the largest worker RSS, MiB", "< 8",
     lambda t: t.rss_mib(), lambda v: (n1(v), v < TARGET_RSS_KB / 1024)),
    ("`/db`, 16 workers ÷ the best worker count", "≥ 0.9",
     lambda t: t.of_best("db", 16), _at_least(0.9)),
    ("`/db`, 32 workers ÷ the best worker count", "≥ 0.8",
     lambda t: t.of_best("db", 32), _at_least(0.8)),
    ("`/plaintext`, best worker count ÷ nginx alone", f"≥ 0.45, p99 < {TARGET_P99_MS} ms",
     lambda t: t.best_of_front("plaintext"), _with_p99(0.45)),
) + tuple(
    (f"`/plaintext`, keepalive {k} ÷ keepalive 0, workers = cores",
     f"≥ 1.2, p99 < {TARGET_P99_MS} ms, no timeout",
     lambda t, k=k: t.keep("plaintext", k), _with_p99(1.2))
    for k in (1, 8, 64)) + (
    ("`/plaintext` with 100 FastCGI peers that send one byte and stop ÷ "
     "without", "≥ 0.9", lambda t: t.slow(), _at_least(0.9)),
)


def targets(plan, summary, idx, points=()):
    """[(measure, target, shown value or None, verdict)]; verdict is
    "met", "not met" or "not measured: what is missing"."""
    t = Targets(plan, summary, idx, points)
    out = []
    for measure, text, read, judge in TARGETS:
        try:
            shown, met = judge(read(t))
        except Missing as e:
            out.append((measure, text, None, f"not measured: {e}"))
            continue
        out.append((measure, text, shown, "met" if met else "not met"))
    return out


def section_targets(plan, summary, idx, points=()):
    t = Targets(plan, summary, idx, points)
    L = ["## Targets", ""]
    L.append(f"Read at {t.label} ({t.cores} workers, one per core, unless the "
             f"measure names others) with {t.conc} wrk connections"
             + ("" if t.conc == TARGET_CLIENTS else
                f" (the targets are set at {TARGET_CLIENTS}, which this run did "
                "not measure)")
             + ". The default sweep has every point they need.")
    L.append("")
    L.append("| measure | target | this run | verdict |")
    L.append("|---|---|---|---|")
    for measure, text, shown, verdict in targets(plan, summary, idx, points):
        L.append(f"| {measure} | {text} | {shown or '—'} | "
                 + (f"**{verdict}**" if verdict == "not met" else verdict) + " |")
    L.append("")
    L.append("The RSS is the largest any worker of that configuration reached "
             "in this run; `tests/bench/soak` serves 1,000,000 mixed requests "
             "and checks that it stops growing after the first 10,000.")
    L.append("")
    return L


def write_report(path, meta, plan, summary, made, points=()):
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
    L += method(meta, plan, summary)

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

    L += section_targets(plan, summary, idx, points)
    L += section_ratios(plan, summary, idx)
    L += section_timing(plan, points)
    L += section_slow(plan, points)
    L += section_wakeup(plan, summary)

    # Per route.
    for route in plan.routes:
        rows = app_rows(summary, route)
        if not rows:
            continue
        L.append(f"## `{route.path}`")
        L.append("")
        for rt, conc, png in made:
            if rt.key == route.key:
                L.append(f"![{route.path} c={conc}]({png})")
                L.append("")
        rat_cols = [(n, n) for n in FRONT_ROUTES_ANCHORS]
        if route.kind == "db":
            for name in pg_names(route, rows):
                if any(a.route == route and a.name == name for a in plan.anchors()):
                    rat_cols += [((name, "c"), f"{name} (c)"),
                                 ((name, "w"), f"{name} (w)")]
        head = ("| config | workers | c | req/s | min–max | p50 | p90 | p99 | max ms | "
                "non-2xx / sock err | CPU % app / front / pg / load / other | "
                "CPU µs/req app / front / pg | worker RSS MiB | "
                + " | ".join(f"÷ {h}" for _, h in rat_cols) + " |")
        L.append(head)
        L.append("|" + "---|" * (13 + len(rat_cols)))
        by_plan = plan_order(plan)
        rows.sort(key=lambda r: (r["concurrency"], by_plan(r)))
        best = None
        for r in rows:
            rt = ratios(r, idx, route, plan)
            rss = r.get("rss_worker_kb_mean")
            L.append(
                f"| {r['config']} | {r['workers']} | {r['concurrency']} | "
                f"{n0(r['rps'])} | {rng(r)} | {n2(r['p50_ms'])} | "
                f"{n2(r['p90_ms'])} | {n2(r['p99_ms'])} | {n2(r['max_ms'])} | "
                f"{errs(r)} | {cpu_split(r)} | {us_split(r)} | "
                f"{n1(rss / 1024) if rss else '—'} | "
                + " | ".join(ratio(rt.get(k)) for k, _ in rat_cols) + " |")
            if r["rps"] and (best is None or r["rps"] > best["rps"]):
                best = r
        L.append("")
        if route.kind == "db":
            L.append("(c): pgbench with as many clients as wrk's connections; "
                     "(w): as many as the row's workers, — where pgbench did "
                     "not run at that count.")
            L.append("")
        if best:
            rt = ratios(best, idx, route, plan)
            extra = ""
            if route.kind == "db":
                name = like_name(route, best)
                for how, what in (("w", "as many clients as workers"),
                                  ("c", "as many clients as wrk's connections")):
                    if rt.get((name, how)) is not None:
                        extra = f", {rt[(name, how)]:.2f} × {name} ({what})"
                        break
                if rt.get("nginx-alone") is not None:
                    extra += f" ({rt['nginx-alone']:.3f} × nginx-alone)"
            elif rt.get("nginx-alone") is not None:
                extra = f", {rt['nginx-alone']:.2f} × nginx-alone"
            L.append(f"Best: {best['config']} with {best['workers']} workers, "
                     f"{n0(best['rps'])} req/s{extra}.")
            L.append("")
        L += phase_table(plan, summary, route)

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
            # same front, socket, keepalive and placement if measured, else
            # the closest one.
            twins = [x for x in summary if x["kind"] == "app"
                     and x["db_mode"] == "persistent"
                     and x["workers"] == r["workers"] and x["route"] == r["route"]
                     and x["concurrency"] == r["concurrency"]]
            twins.sort(key=lambda x: (x["front"] != r["front"],
                                      x["socket"] != r["socket"],
                                      x.get("keepalive") != r.get("keepalive"),
                                      x.get("cpu_affinity") != r.get("cpu_affinity")))
            if not twins:
                continue
            twin = twins[0]
            q = r["rps"] / twin["rps"] if r["rps"] and twin["rps"] else None
            L.append(
                f"| {r['route']} | {r['config']}"
                + ("" if twin["config"].replace("/persistent", "/per-request") == r["config"]
                   else f" (persistent: {twin['config']})")
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
    L.append("- `results.json`: the same points (with each slot's request "
             "count), the summary and the settings.")
    L.append("- `pgbench/*.sql`: the scripts the pgbench anchors ran.")
    L.append("- `chart-*.png`: one chart per route.")
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
    write_report(os.path.join(outdir, "report.md"), meta, plan, summary, made,
                 points)
    return summary, made
