"""writeup: a run's points -> results.json, results.csv, the charts and
report.md, every one of them a function of the points and the run's
recorded settings (meta) alone, so that `tests/bench/run --report DIR`
writes them again byte for byte.

report.md opens with the verdict (verdict.py) and the headline chart,
then the targets, the setting (machine, scheduler, placement, the delay
lines), where the CPU goes, the scheduler's and the placement's
comparisons, the open loop, the per-request mode, and the detailed
tables last.
"""

import json
from pathlib import Path

from . import figures, findings as F, host
from .experiment import AUTO, wkey, wlabel
from .subjects import SUBJECTS
from .verdict import Verdict, dlabel, fmt

CSV_COLUMNS = [
    "rep", "part", "subject", "workers", "per_core", "distance", "rtt_asked_us",
    "delay_one_way_us", "route", "path", "load", "mode", "connections", "rate_offered",
    "sched", "placement", "duration_s", "requests", "rps", "p50_ms", "p90_ms", "p99_ms",
    "max_ms", "non2xx", "socket_errors", "err_timeout", "due", "unfinished", "queued_max",
    "cpu_app", "cpu_front", "cpu_pg", "cpu_delay", "cpu_load", "cpu_other",
    "cpu_unaccounted", "cpu_total", "rtt_idle_us", "rtt_loaded_us", "late_p50_us",
    "late_p99_us", "delay_frames", "delay_dropped", "autogroups_app", "workers_alive",
    "checked", "started", "error",
]
# A pool that sized itself (workers "auto"): after the others, so that
# readers of the earlier columns are unaffected, and only in a run that
# has one.
AUTO_COLUMNS = ["auto_settle_s", "auto_turns", "auto_size", "auto_sizes", "auto_idle_s",
                "auto_first_ms"]


def write_all(outdir, meta, points):
    """Every output file of a run from its meta and points; the
    measurements first, so that they are kept whatever happens to the
    charts.  Returns the findings."""
    out = Path(outdir)
    rows = F.summarize(points)
    f = F.Findings(rows, meta["plan"]["routes"][0], meta["plan"]["main_load"],
                   meta["plan"]["scheds"][0], meta["plan"]["placements"][0],
                   meta["machine"]["cores"])
    v = Verdict(f, meta["plan"]["paths"])
    paragraphs = v.paragraphs()
    targets = v.targets(meta.get("elapsed_s"), meta["plan"]["kind"])
    cols = CSV_COLUMNS + (AUTO_COLUMNS if any(p["workers"] == AUTO for p in points) else [])
    host.write_csv(out / "results.csv", cols,
                   [dict(p, workers=wlabel(p["workers"])) for p in points])
    doc = {"meta": meta, "points": points,
           "verdict": {"paragraphs": paragraphs,
                       "numbers": [n.as_dict() for n in v.numbers]},
           "targets": [list(t) for t in targets]}
    text = json.dumps(doc, indent=1, default=str)
    (out / "results.json").write_text(text + "\n")
    charts = draw(out, meta, f)
    (out / "report.md").write_text(report(meta, f, paragraphs, targets, charts))
    return f


BEGIN, END = "<!-- bench-verdict:begin -->", "<!-- bench-verdict:end -->"


def readme_block(res, link):
    """The lines the READMEs quote of a run's results.json (its verdict,
    as report.md prints it), between the markers; link: the path of the
    run's report.md from the README."""
    meta = res["meta"]
    return [BEGIN,
            f"From [the example run]({link}) ({meta['plan']['kind']}: "
            f"{meta['plan']['reps']} repetitions of {meta['plan']['duration']} s per point, "
            f"{meta['machine'].get('cores')} cores, {meta['started'][:10]}):", ""] + \
        [x for t in res["verdict"]["paragraphs"] for x in (t, "")] + [END]


def sync_readme(path, res, link):
    """Write the block between the markers of the README at path again;
    whether it changed.  ValueError when the markers are not there."""
    text = Path(path).read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path}: no {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail_ = rest.split(END, 1)
    new = head + "\n".join(readme_block(res, link)) + tail_
    Path(path).write_text(new)
    return new != text


def footer(meta, load=None):
    m, p = meta["machine"], meta["plan"]
    load = load or f"closed loop, {p['main_load'][1:]} connections"
    return (f"{m.get('cores')} cores, {m.get('virtual', '?')}, {m.get('cpu', '?')}; "
            f"{load}; each point the median of {p['reps']} repetitions of "
            f"{p['duration']} s (bars: min–max), latencies of all their requests; "
            f"{m.get('commit', '?')}, {meta['started']}")


def draw(out, meta, f):
    """The charts: {name: file} of those drawn."""
    made = {}
    cores = f.cores
    path = meta["plan"]["paths"][0]
    panels = []
    for d in f.distances():
        by = {}
        for s in f.subjects():
            if SUBJECTS[s].db_mode != "persistent":
                continue
            line = f.line(s, d)
            pts = [(w, r["rps"], r["rps_min"], r["rps_max"], r["p99_ms"])
                   for w, r in sorted(line.items()) if r["rps"] and w != AUTO]
            if pts:
                by[s] = pts
        if by:
            panels.append((dlabel(d), by))
    if panels:
        figures.headline(out / "chart-headline.png", panels, cores, footer(meta),
                         f"{path}: requests/s and p99 against processes per core, "
                         f"the database at each distance")
        made["headline"] = "chart-headline.png"
    pr = []
    for d in f.distances():
        by = {}
        for s, twin in TWINS.items():
            ws = sorted(w for w in f.line(s, d) if w != AUTO)
            for key in (s, twin):
                pts = [(w, r["rps"], r["rps_min"], r["rps_max"])
                       for w in ws for r in [f.line(key, d).get(w)] if r and r["rps"]]
                if pts and ws:
                    by[key] = pts
        if any(SUBJECTS[s].db_mode == "per-request" for s in by):
            pr.append((dlabel(d), by))
    if pr:
        figures.per_request(out / "chart-per-request.png", pr, footer(meta),
                            f"{path}: a connection per request (solid) against one per "
                            "process (dashed)")
        made["per-request"] = "chart-per-request.png"
    ol = open_rows(f)
    if ol:
        panels = []
        for d in sorted({r["distance"] for r in ol}, key=f.distances().index):
            by = {}
            for r in ol:
                if r["distance"] == d:
                    by.setdefault(r["subject"], []).append(
                        (r["rate_offered"], r["p50_ms"], r["p99_ms"]))
            panels.append((dlabel(d), by))
        figures.open_loop(out / "chart-open-loop.png", panels,
                          footer(meta, "open loop at a fixed rate, each subject at its best "
                                       "process count, 256 connections"),
                          f"{path}, open loop: latency against the offered rate")
        made["open-loop"] = "chart-open-loop.png"
    return made


# Each per-request subject and its persistent twin: the same code with one
# connection per process.
TWINS = {"flask-per-request": "flask", "tfb-fcgi-per-request": "tfb-fcgi"}


def open_rows(f):
    return sorted((r for r in f.rows if r["mode"] == "open" and r["rate_offered"]),
                  key=lambda r: (r["subject"], r["rate_offered"]))


# --- report.md ---------------------------------------------------------------

def n0(v):
    return "—" if v is None else f"{v:,.0f}"


def n2(v):
    return "—" if v is None else (f"{v:.2f}" if v < 10 else f"{v:,.1f}")


def rng(r):
    return "—" if r["rps_min"] is None else f"{r['rps_min']:,.0f}–{r['rps_max']:,.0f}"


def errs(r):
    bad = r["non2xx"] + r["socket_errors"]
    s = f"{r['non2xx']} / {r['socket_errors']}"
    if r.get("unfinished"):
        s += f" ({r['unfinished']} unfinished)"
    if r["errors"]:
        s += " (" + "; ".join(r["errors"])[:120] + ")"
    if not r["checked"]:
        s += " (failed its checks)"
    return f"**{s}**" if bad or r["errors"] or not r["checked"] else s


def cpu_cells(r):
    pct = " / ".join(n0(r.get(f"cpu_{g}")) for g in F.GROUPS[:6])
    us = " / ".join(n0(r.get(f"us_{g}")) for g in F.GROUPS[:5])
    un = r.get("cpu_unaccounted")
    if un:
        pct += f" (+{un:.0f} unaccounted)"
    return pct, us


def report(meta, f, paragraphs, targets, charts):
    L = []
    p = meta["plan"]
    L.append(f"# The article's experiment: tfb-fcgi against Flask and FastAPI, "
             f"{meta['started']}")
    L.append("")
    for note in meta.get("notes", []):
        L.append(f"> {note}")
        L.append("")
    L.append(f"{p['kind'].capitalize()} run, {p['reps']} repetitions of {p['duration']} s "
             f"per point, interleaved; {meta['machine'].get('cores')} cores "
             f"({meta['machine'].get('virtual', '?')}); every tier on this one machine. "
             "How to read it: `tests/bench/README.md`.")
    L.append("")
    L.append("## Verdict")
    L.append("")
    if paragraphs:
        for t in paragraphs:
            L.append(t)
            L.append("")
    else:
        L.append("Not enough clean points for a verdict (see *Failures*).")
        L.append("")
    if "headline" in charts:
        L.append(f"![requests/s and p99 against processes per core]({charts['headline']})")
        L.append("")
    L += section_targets(targets)
    L += section_setting(meta, f)
    L += section_cpu(f)
    L += section_compare(meta, f, "sched", "Scheduler settings", p["scheds"])
    L += section_compare(meta, f, "placement", "CPU placement", p["placements"])
    L += section_open(f, charts)
    L += section_per_request(f, charts)
    L += section_tables(meta, f)
    L += section_failures(meta, f)
    L.append("## Files")
    L.append("")
    L.append("- `results.json`: the settings, every point (each repetition, with its "
             "latency histogram), the verdict's numbers with the cells they come from, "
             "the targets; `tests/bench/run --report DIR` writes everything else again "
             "from it.")
    L.append("- `results.csv`: one line per point, the columns of "
             "`tests/bench/benchlib/writeup.py`.")
    L.append("- " + ", ".join(f"`{v}`" for v in charts.values()) + ": the charts.")
    L.append("- `bench.log`: the run's progress lines, as it printed them (the one file "
             "`--report` does not write).")
    L.append("")
    L.append("Reproduce (from the repository root, on the commit above):")
    L.append("")
    L.append("```sh")
    L.append(meta["command"])
    L.append("```")
    L.append("")
    return "\n".join(L)


def section_targets(targets):
    L = ["## Targets", "",
         "Read from this run, each with its spread (the min–max of the paired "
         "repetitions' ratios): *met* when the whole spread clears the bound, *not met* "
         "when none of it does, *within noise* when it straddles the bound.", "",
         "| measure | target | this run | verdict |", "|---|---|---|---|"]
    for m, t, s, v in targets:
        L.append(f"| {m} | {t} | {s} | " + (f"**{v}**" if v == "not met" else v) + " |")
    L.append("")
    return L


def section_setting(meta, f):
    m, p = meta["machine"], meta["plan"]
    L = ["## The setting", ""]
    for k in ("cores", "virtual", "cpu", "memory", "kernel", "os", "commit", "nginx",
              "postgresql", "python", "wrk"):
        if m.get(k):
            L.append(f"- **{k}**: {m[k]}")
    L.append("- **subjects**: " + "; ".join(
        f"{SUBJECTS[s].label}" + (f" ({meta['subject_versions'][s]})"
                                  if meta.get("subject_versions", {}).get(s) else "")
        for s in p["subjects"]))
    L.append("")
    L.append("Scheduler, as found at the start:")
    L.append("")
    for k, v in meta.get("scheduler", {}).items():
        L.append(f"- `{k}`: {v}")
    L.append("")
    used = meta.get("scheduler_used") or {}
    if used:
        L.append("Settings used (scheduler; placement):")
        L.append("")
        for k, v in sorted(used.items()):
            L.append(f"- {k}: {v}")
        L.append("")
    ag = [r["autogroups_app"] for r in f.rows if r.get("autogroups_app") is not None
          and r["sched"] == "autogroup" and r["workers"] > 1]
    if ag:
        L.append(f"Under autogroup the workers of a pool sat in {min(ag):.0f} to "
                 f"{max(ag):.0f} scheduling group(s) (`/proc/PID/autogroup`), whatever "
                 "their number; every PostgreSQL backend has one of its own.")
        L.append("")
    dl = delay_rows(meta, f)
    if dl:
        L.append("The database's distances: the round trip asked for, what the delay line "
                 "was given each way after calibration, the round trip measured from the "
                 "workers' side at rest (the quietest of three moments, before each block's "
                 "first point there) and under load (probed every 0.1 s during the points; "
                 "medians over the points), and the "
                 "delay line's lateness in the measured windows only (median of the "
                 "windows' p50 and p99, and the worst window's p99).")
        L.append("")
        L.append("| distance | delay each way µs | RTT at rest µs | RTT under load µs | "
                 "late p50 µs | late p99 µs | worst p99 µs |")
        L.append("|---|---|---|---|---|---|---|")
        L += dl
        L.append("")
    L.append(f"Method: {meta['method']}")
    L.append("")
    return L


def delay_rows(meta, f):
    out = []
    cal = meta.get("calibration", {})
    for d in f.distances():
        rs = [r for r in f.rows if r["distance"] == d]
        if d == "local" or not rs:
            continue

        def med(k):
            return F._med([r.get(k) for r in rs])
        c = cal.get(d, {})
        out.append(f"| {dlabel(d)} | {n0(c.get('one_way_us'))} | {n0(med('rtt_idle_us'))} | "
                   f"{n0(med('rtt_loaded_us'))} | {n0(med('late_p50_us'))} | "
                   f"{n0(med('late_p99_us'))} | "
                   f"{n0(max((r['late_p99_max_us'] for r in rs if r.get('late_p99_max_us') is not None), default=None))} |")
    return out


def section_cpu(f):
    L = ["## Where the CPU goes", "",
         "At each subject's best process count: % of one core over the measured window "
         f"({f.cores} cores: {100 * f.cores}% is all of it), then CPU µs per request. "
         "app: the subject's processes; front: nginx; pg: the postmaster and every "
         "backend; delay: the delay line (the test's, not the pool's); load: the load "
         "generator; other: the rest of the machine. Where the groups' own times add "
         "up to more than the machine's busy time over the same window (each counted "
         "in ticks of its own), the excess is shown as *unaccounted* rather than as a "
         "negative share.", "",
         "| subject | distance | processes | req/s | CPU % app / front / pg / delay / load / "
         "other | µs/req app / front / pg / delay / load |", "|---|---|---|---|---|---|"]
    for s in f.subjects():
        for d in f.distances():
            r = f.best(s, d)
            if r is None:
                continue
            pct, us = cpu_cells(r)
            L.append(f"| {s} | {dlabel(d)} | {wlabel(r['workers'])} | {n0(r['rps'])} | {pct} | {us} |")
    L.append("")
    return L


def section_compare(meta, f, axis, title, values):
    """The sched or placement comparison: this pool's rows under each
    other value against the same cell under the first."""
    rows = [r for r in f.rows if r[axis] != values[0] and r["mode"] == "closed"]
    if not rows:
        return []
    L = [f"## {title}", ""]
    if axis == "sched":
        L.append("This pool's rows under another scheduler setting against the same cell "
                 "under the first (paired by repetition). *autogroup*: as the machine is "
                 "(the pool one group, each PostgreSQL backend its own); *flat*: "
                 "`kernel.sched_autogroup_enabled=0`, every process by itself; *tiers*: a "
                 "cgroup per tier.")
    else:
        L.append("This pool's rows with the tiers pinned (*split*: app and front on one "
                 "half of the CPUs, PostgreSQL, the delay line and the load on the other) "
                 "against the same cell unpinned (paired by repetition).")
    L.append("")
    L.append(f"| setting | distance | processes | req/s | p99 ms | against {values[0]} | "
             "CPU % app / front / pg / delay / load / other |")
    L.append("|---|---|---|---|---|---|---|")
    for r in rows:
        key = dict(sched=r["sched"], placement=r["placement"])
        key[axis] = values[0]
        base = f.line(r["subject"], r["distance"], r["route"], r["load"], key["sched"],
                      key["placement"]).get(r["workers"])
        q = F.ratio_number("", r, base) if base else None
        L.append(f"| {r[axis]} | {dlabel(r['distance'])} | {wlabel(r['workers'])} | {n0(r['rps'])} "
                 f"({rng(r)}) | {n2(r['p99_ms'])} | {fmt(q) if q else '—'} | "
                 f"{cpu_cells(r)[0]} |")
    L.append("")
    L += decide(meta, f, axis, values, rows)
    return L


def decide(meta, f, axis, values, rows):
    """What the numbers say to do, for the scheduler or the placement."""
    L = []
    for v in values[1:]:
        qs = compared(f, axis, values, rows, v)
        if not qs:
            continue
        better = [x for x in qs if x[2].lo > 1.0]
        worse = [x for x in qs if x[2].hi < 1.0]
        def where(xs):
            return ", ".join(f"{w} processes at {dlabel(d)} ({fmt(q)})" for w, d, q in xs)
        if better and not worse:
            what = f"*{v}* beats *{values[0]}* beyond the noise at {where(better)}."
        elif worse and not better:
            what = f"*{v}* loses to *{values[0]}* beyond the noise at {where(worse)}."
        elif better and worse:
            what = (f"*{v}* beats *{values[0]}* at {where(better)} and loses at "
                    f"{where(worse)}.")
        else:
            what = f"*{v}* and *{values[0]}* are within the noise of each other everywhere."
        L.append(f"- {what}")
    if L:
        L.append("")
        L += shape(f, axis, values, rows)
        L.append(advice(f, axis, values, rows))
        L.append("")
    return L


def compared(f, axis, values, rows, v):
    """(workers, distance, Number v ÷ the first value) of the clean rows
    under v."""
    out = []
    for r in rows:
        if r[axis] != v or not r["clean"]:
            continue
        key = dict(sched=r["sched"], placement=r["placement"])
        key[axis] = values[0]
        base = f.line(r["subject"], r["distance"], r["route"], r["load"], key["sched"],
                      key["placement"]).get(r["workers"])
        q = F.ratio_number("", r, base, 1.0) if base and base["clean"] else None
        if q:
            out.append((r["workers"], r["distance"], q))
    return out


def shape(f, axis, values, rows):
    """Whether the other value changes the shape: the most processes ÷
    the fewest, under each value, at each distance."""
    L = []
    for v in values[1:]:
        for d in sorted({r["distance"] for r in rows if r[axis] == v}, key=f.distances().index):
            ws = sorted(r["workers"] for r in rows if r[axis] == v and r["distance"] == d)
            if len(ws) < 2:
                continue
            lo, hi = ws[0], ws[-1]
            got = []
            for val in (values[0], v):
                key = {"sched": f.sched0, "placement": f.place0}
                key[axis] = val
                line = f.line("tfb-fcgi", d, sched=key["sched"], place=key["placement"])
                a, b = line.get(hi), line.get(lo)
                got.append(F.ratio_number("", a, b) if a and b and a["clean"] and b["clean"]
                           else None)
            if None in got:
                continue
            apart = got[0].hi < got[1].lo or got[1].hi < got[0].lo
            L.append(f"- The shape at {dlabel(d)}, {hi} processes ÷ {lo}: {fmt(got[0])} under "
                     f"*{values[0]}*, {fmt(got[1])} under *{v}*: "
                     + ("it changes the shape beyond the noise." if apart else
                        "the same shape within the noise."))
    return L + ([""] if L else [])


def advice(f, axis, values, rows):
    """What the numbers say the pool and the bench should do."""
    cores = f.cores
    if axis == "sched":
        # A setting must win in at least half of the cells past the cores,
        # and lose in none, before the pool changes for it: one cell of
        # several is the noise of a shared machine as often as not.
        past = {v: [x for x in compared(f, axis, values, rows, v) if x[0] > cores]
                for v in values[1:]}
        wins = {v: [x for x in past[v] if x[2].lo > 1.0] for v in values[1:]}
        wins = {v: w for v, w in wins.items() if 2 * len(w) >= len(past[v])}
        losses = {v: [x for x in compared(f, axis, values, rows, v) if x[2].hi < 1.0]
                  for v in values[1:]}
        if wins.get("flat") and not losses.get("flat"):
            return ("**What to do**: past the cores the pool gains when its workers are not "
                    "one scheduling group: tfb-spawn should start each worker in a session of "
                    "its own (setsid, as PostgreSQL does for each backend), or the pool be "
                    "run in a cgroup of its own (as systemd runs a service), so that adding "
                    "workers adds CPU share. The bench measures the machine as found "
                    f"(*{values[0]}*) and records its setting in every report.")
        if wins.get("tiers") and not losses.get("tiers"):
            return ("**What to do**: a cgroup per tier (as systemd gives each service) beats "
                    "the machine as found: deploy the pool and PostgreSQL as services of "
                    "their own. The bench measures the machine as found and records its "
                    "setting in every report.")
        return ("**What to do**: no setting beats the machine as found beyond the noise "
                "in most cells past the cores here, so the pool needs no change for it; "
                f"the bench measures with the setting as found (*{values[0]}*) and records "
                "it in every report, and these rows show what another setting would change.")
    qs = [x for v in values[1:] for x in compared(f, axis, values, rows, v)]
    if qs and all(x[2].hi < 1.0 or x[2].lo < 1.0 for x in qs) and \
            any(x[2].hi < 1.0 for x in qs):
        return ("**What to do**: pinning the tiers apart gives each half the machine whatever "
                "it needs, and loses here; the bench runs them unpinned (*shared*) and says "
                "so in every report.")
    return ("**What to do**: the placement does not win beyond the noise; the bench runs "
            "the tiers unpinned (*shared*) and says so in every report.")


def section_open(f, charts):
    rows = open_rows(f)
    if not rows:
        return []
    L = ["## Open loop", "",
         "Each persistent subject at its best process count, requests sent at a fixed "
         "rate on a schedule set in advance (tests/bench/openloop.c), a share of its best "
         "closed-loop rate; latency counted from when each request was due, so that a "
         "request that waited for a connection counts its wait. *unfinished*: due in "
         "the window and not answered 2 s after it (counted at their age then, a lower "
         "bound).", ""]
    if "open-loop" in charts:
        L.append(f"![latency against offered load]({charts['open-loop']})")
        L.append("")
    L.append("| subject | distance | processes | offered req/s | answered req/s | p50 ms | "
             "p99 ms | unfinished | errors |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        L.append(f"| {r['subject']} | {dlabel(r['distance'])} | {wlabel(r['workers'])} | "
                 f"{n0(r['rate_offered'])} | {n0(r['rps'])} | {n2(r['p50_ms'])} | "
                 f"{n2(r['p99_ms'])} | {r['unfinished']} | {errs(r)} |")
    L.append("")
    return L


def section_per_request(f, charts):
    rows = [r for r in f.rows if SUBJECTS[r["subject"]].db_mode == "per-request"]
    if not rows:
        return []
    L = ["## A connection per request", "",
         "The classic mistake the article found in TechEmpower's Flask code, measured: "
         "each per-request row against its persistent twin (the same code with one "
         "connection per process: Flask for Flask, this pool for `--db-mode "
         "per-request`), same processes, distance, route and load.", ""]
    if "per-request" in charts:
        L.append(f"![a connection per request]({charts['per-request']})")
        L.append("")
    L.append("| subject | distance | processes | req/s | p99 ms | ÷ persistent | "
             "CPU µs/req app / pg |")
    L.append("|---|---|---|---|---|---|---|")
    for r in rows:
        base = f.line(TWINS[r["subject"]], r["distance"], r["route"], r["load"], r["sched"],
                      r["placement"]).get(r["workers"])
        q = F.ratio_number("", r, base) if base else None
        L.append(f"| {r['subject']} | {dlabel(r['distance'])} | {wlabel(r['workers'])} | "
                 f"{n0(r['rps'])} ({rng(r)}) | {n2(r['p99_ms'])} | "
                 f"{fmt(q) if q else '—'} | {n0(r.get('us_app'))} / {n0(r.get('us_pg'))} |")
    L.append("")
    return L


def section_tables(meta, f):
    L = ["## Detailed tables", "",
         "Every closed-loop row: median req/s of the repetitions and their min–max, "
         "p50 and p99 of all their requests, errors (non-2xx / socket), CPU in % of "
         "one core and µs per request.", ""]
    rows = [r for r in f.rows if r["mode"] == "closed"]
    groups = {}
    for r in rows:
        groups.setdefault((r["route"], r["load"], r["sched"], r["placement"]), []).append(r)
    paths = dict(zip([r for r in dict.fromkeys(x["route"] for x in f.rows)],
                     [x["path"] for x in {x["route"]: x for x in f.rows}.values()]))
    for (route, load, sc, pl), rs in groups.items():
        L.append(f"### `{paths.get(route, route)}`, {load}, {sc}, {pl}")
        L.append("")
        L.append("| subject | distance | processes | req/s | min–max | p50 ms | p99 ms | "
                 "non-2xx / sock err | CPU % app / front / pg / delay / load / other | "
                 "µs/req app / front / pg / delay / load |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        order = {s: i for i, s in enumerate(SUBJECTS)}
        dist = {d: i for i, d in enumerate(f.distances())}
        for r in sorted(rs, key=lambda r: (order[r["subject"]], dist.get(r["distance"], 99),
                                           wkey(r["workers"]))):
            pct, us = cpu_cells(r)
            L.append(f"| {r['subject']} | {dlabel(r['distance'])} | {wlabel(r['workers'])} | "
                     f"{n0(r['rps'])} | {rng(r)} | {n2(r['p50_ms'])} | {n2(r['p99_ms'])} | "
                     f"{errs(r)} | {pct} | {us} |")
        L.append("")
    return L


def section_failures(meta, f):
    L = []
    for s, checks in sorted((meta.get("checks") or {}).items()):
        for name, problems in checks:
            L.append(f"- {s} failed the check {name}: {'; '.join(problems)[:300]}")
    for r in f.rows:
        if r["errors"]:
            L.append(f"- {r['subject']} {wlabel(r['workers'])} processes {dlabel(r['distance'])} "
                     f"{r['route']} {r['load']}: {'; '.join(r['errors'])[:300]}")
    if not L:
        return []
    return ["## Failures", "", "Not counted in the verdict and the targets:", ""] + L + [""]
