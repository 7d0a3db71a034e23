"""findings: the points of a run -> rows, lines, the best process counts,
the verdict and the targets.

A *row* is one cell over its repetitions: its rate in each (reps), their
median, min and max, the latency percentiles of all its requests (the
repetitions' histograms merged), its errors, the CPU medians.  A row is
*clean* when its subject passed its checks and no repetition had an
error, a non-2xx answer or a socket error (an open-loop point may leave
requests unfinished: that is what saturation looks like, not an error).
Only clean rows count in the verdict and the targets.

A *line* is the rows of one subject, distance, route, load, scheduler
setting and placement, by process count; its best count is
spread.best_count's.  Every number the verdict states is a Number: its
value, its spread, and the cells it was read from, so that a reader (and
tests/bench/test_bench_article.py) can recompute it from the points.
"""

import statistics
from dataclasses import dataclass, field

from . import spread
from .experiment import AUTO
from .subjects import SUBJECTS

GROUPS = ("app", "front", "pg", "delay", "load", "other", "unaccounted")
# The targets (tests/bench/README.md, Targets).
T_HIDE = 0.9          # best at 1 ms / best at 0 ms, this pool
T_GROWTH = 6.0        # 16 processes / 2 at 1 ms
T_OVER = {"db": 4.0, "fortunes": 4.0, "queries20": 5.0}
# The pool that sizes itself (tfb-spawn -w auto): auto ÷ the best fixed count, its
# p99 ÷ theirs, on these routes at these distances; its settling and its
# idling, wherever measured.
T_AUTO = 0.9
T_AUTO_P99 = 1.2
T_AUTO_ROUTES = ("db", "queries20")
T_AUTO_AT = ("local", "1ms")
T_SETTLE_S = 30
T_TURNS = 2
T_IDLE_S = 60
T_FIRST_MS = 50
TARGET_DISTANCE = "1ms"
BUDGET_S = {"quick": 240, "full": 5400}


def _med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def row_key(pt):
    return (pt["subject"], pt["workers"], pt["distance"], pt["route"], pt["load"],
            pt["sched"], pt["placement"])


def summarize(points):
    """One row per cell, in the order the cells were first measured."""
    groups = {}
    for pt in points:
        groups.setdefault(row_key(pt), []).append(pt)
    rows = []
    for key, ps in groups.items():
        ok = [p for p in ps if not p.get("error")]
        first = ps[0]
        r = {k: first.get(k) for k in ("part", "subject", "workers", "per_core", "distance",
                                       "rtt_asked_us", "route", "path", "load", "mode",
                                       "connections", "sched", "placement",
                                       "delay_one_way_us")}
        r["key"] = list(key)
        r["reps"] = {p["rep"]: p["rps"] for p in ok if p.get("rps") is not None}
        vals = list(r["reps"].values())
        r["n"] = len(ps)
        r["rps"] = _med(vals)
        r["rps_min"] = min(vals) if vals else None
        r["rps_max"] = max(vals) if vals else None
        r["rate_offered"] = _med([p.get("rate_offered") for p in ok])
        h = spread.hist_merge(spread.hist_parse(p.get("hist")) for p in ok)
        for q in (50, 90, 99):
            v = spread.hist_percentile(h, q)
            r[f"p{q}_ms"] = None if v is None else v / 1000.0
        r["max_ms"] = max((p["max_ms"] for p in ok if p.get("max_ms") is not None),
                          default=None)
        r["requests"] = sum(p.get("requests") or 0 for p in ok)
        for k in ("non2xx", "socket_errors", "err_timeout", "unfinished"):
            r[k] = sum(p.get(k) or 0 for p in ok)
        r["errors"] = sorted({p["error"] for p in ps if p.get("error")})
        r["checked"] = all(p.get("checked", True) for p in ps)
        r["clean"] = bool(vals) and r["checked"] and not r["errors"] and \
            not r["non2xx"] and not r["socket_errors"]
        for g in GROUPS:
            r[f"cpu_{g}"] = _med([p.get(f"cpu_{g}") for p in ok])
            r[f"us_{g}"] = None if r[f"cpu_{g}"] is None or not r["rps"] else \
                r[f"cpu_{g}"] / 100.0 * 1e6 / r["rps"]
        r["cpu_total"] = _med([p.get("cpu_total") for p in ok])
        for k in ("rtt_idle_us", "rtt_loaded_us", "late_p50_us", "late_p99_us",
                  "autogroups_app"):
            r[k] = _med([p.get(k) for p in ok])
        r["late_p99_max_us"] = max((p["late_p99_us"] for p in ok
                                    if p.get("late_p99_us") is not None), default=None)
        # A pool that sized itself: the worst of its settles and idlings,
        # and where it settled each time.
        for k in ("auto_settle_s", "auto_turns", "auto_idle_s", "auto_first_ms"):
            vals = [p[k] for p in ps if p.get(k) is not None]
            r[k] = max(vals) if vals else None
        r["auto_sizes"] = [p["auto_size"] for p in ps if p.get("auto_size") is not None]
        rows.append(r)
    return rows


@dataclass
class Number:
    """A figure of the verdict: value, spread (lo, hi) and the rows
    (their keys) it comes from: a ratio of a over b, rep by rep, or the
    median rate of a."""
    name: str
    value: float
    lo: float
    hi: float
    a: list
    b: list = None
    verdict: str = None

    def as_dict(self):
        return {"name": self.name, "value": self.value, "lo": self.lo, "hi": self.hi,
                "a": self.a, "b": self.b, "verdict": self.verdict}


def ratio_number(name, ra, rb, bound=None, at_least=True):
    s = spread.ratio(ra["reps"], rb["reps"])
    if s is None:
        return None
    n = Number(name, s[0], s[1], s[2], ra["key"], rb["key"])
    if bound is not None:
        n.verdict = spread.judge(s, bound, at_least)
    return n


def rate_number(name, r):
    return Number(name, r["rps"], r["rps_min"], r["rps_max"], r["key"])


@dataclass
class Findings:
    """What a run found, read from its rows."""
    rows: list
    main_route: str
    main_load: str
    sched0: str
    place0: str
    cores: int
    lines: dict = field(default_factory=dict)

    def __post_init__(self):
        for r in self.rows:
            k = (r["subject"], r["distance"], r["route"], r["load"], r["sched"],
                 r["placement"])
            self.lines.setdefault(k, {})[r["workers"]] = r

    def line(self, subject, distance, route=None, load=None, sched=None, place=None):
        return self.lines.get((subject, distance, route or self.main_route,
                               load or self.main_load, sched or self.sched0,
                               place or self.place0), {})

    def clean(self, line):
        return {w: r for w, r in line.items() if r["clean"]}

    def best(self, subject, distance, route=None, **kw):
        """The best row of a line's fixed counts (its clean rows), or
        None."""
        line = {w: r for w, r in self.clean(self.line(subject, distance, route, **kw)).items()
                if w != AUTO}
        w = spread.best_count({w: r["reps"] for w, r in line.items()})
        return None if w is None else line[w]

    def at(self, subject, distance, workers, route=None, **kw):
        r = self.line(subject, distance, route, **kw).get(workers)
        return r if r is not None and r["clean"] else None

    def auto(self, subject, distance, route=None, **kw):
        """The row of a pool that sized itself on a line, clean or not, or
        None."""
        return self.line(subject, distance, route, **kw).get(AUTO)

    def auto_rows(self):
        """Every row of a pool that sized itself."""
        return [r for r in self.rows if r["workers"] == AUTO]

    def distances(self):
        """The distances of the main route's rows, nearest first."""
        ds = {}
        for r in self.rows:
            if r["route"] == self.main_route:
                ds[r["distance"]] = r["rtt_asked_us"]
        return sorted(ds, key=lambda d: -1 if ds[d] is None else ds[d])

    def subjects(self):
        return [s for s in SUBJECTS if any(r["subject"] == s for r in self.rows)]

    def best_subject(self, distance, route):
        """The article's subject (persistent ones) with the highest best
        rate at distance on route: its best row, or None."""
        best = None
        for s in self.subjects():
            if SUBJECTS[s].ours or SUBJECTS[s].db_mode != "persistent":
                continue
            r = self.best(s, distance, route)
            if r is not None and (best is None or r["rps"] > best["rps"]):
                best = r
        return best
