"""verdict: the few sentences at the top of report.md, and the targets.

Each paragraph is (text, [findings.Number]): every figure in the text is
one of the Numbers, printed by fmt() (a ratio with its spread, a rate
with its repetitions' range), so that the figures can be traced to the
cells they come from and recomputed from results.json.
"""

from . import findings as F


def fmt_ratio(n):
    return f"{n.value:.2f}× ({n.lo:.2f}–{n.hi:.2f})"


def fmt_rate(n):
    return f"{n.value:,.0f} req/s ({n.lo:,.0f}–{n.hi:,.0f})"


def fmt(n):
    return fmt_rate(n) if n.b is None else fmt_ratio(n)


def dlabel(d):
    return "local (unix socket)" if d == "local" else d.replace("ms", " ms")


def where(d):
    """"with the database 1 ms away" or "with the database on its unix
    socket"."""
    return "with the database on its unix socket" if d == "local" else \
        f"with the database {dlabel(d)} away"


def per_core(w, cores):
    return f"{w / cores:g} per core"


def answer(n, yes, level, no):
    return {"met": yes, "within noise": level, "not met": no}.get(n.verdict, level)


class Verdict:
    """The paragraphs and the targets of a run's findings (f), with the
    plan's main route (its path for the text)."""

    def __init__(self, f, paths):
        self.f, self.paths = f, paths
        self.numbers = []

    def num(self, n):
        if n is not None:
            self.numbers.append(n)
        return n

    def main_distance(self):
        ds = self.f.distances()
        return F.TARGET_DISTANCE if F.TARGET_DISTANCE in ds else ds[-1]

    # -- the paragraphs

    def paragraphs(self):
        out = []
        for p in (self.keep_up, self.scaling, self.standing, self.article):
            text = p()
            if text:
                out.append(text)
        return out

    def keep_up(self):
        f, d = self.f, self.main_distance()
        fl, fa, ours = (f.best(s, d) for s in ("flask", "fastapi", "tfb-fcgi"))
        if fl is None or fa is None:
            return None
        q = self.num(F.ratio_number(f"flask/fastapi best at {d}", fl, fa, 1.0))
        text = ("**Does a synchronous pool with persistent connections keep up?** "
                + answer(q, "Yes, and it leads", "Yes, level", "Not here") + ": "
                f"{where(d)}, Flask with one persistent "
                f"connection per process (the article's fix) at its best count "
                f"({fl['workers']} processes, {per_core(fl['workers'], f.cores)}) makes "
                f"{fmt(self.num(F.rate_number(f'flask best at {d}', fl)))}, "
                f"{fmt(q)} FastAPI's best ({fa['workers']} processes)")
        if ours is not None:
            o = self.num(F.ratio_number(f"tfb-fcgi/fastapi best at {d}", ours, fa))
            text += f"; this pool, synchronous too, makes {fmt(o)} FastAPI's"
        others = []
        for d2 in f.distances():
            if d2 == d or d2 == "local":
                continue
            a, b = f.best("flask", d2), f.best("fastapi", d2)
            if a is not None and b is not None:
                n = self.num(F.ratio_number(f"flask/fastapi best at {d2}", a, b, 1.0))
                others.append(f"{fmt(n)} at {dlabel(d2)}")
        if others:
            text += ". Fixed Flask ÷ FastAPI, each at its best: " + ", ".join(others)
        return text + "."

    def scaling(self):
        f = self.f
        ours = "tfb-fcgi"
        parts = []
        for d in f.distances():
            best = f.best(ours, d)
            if best is None:
                continue
            rate = self.num(F.rate_number(f"tfb-fcgi best at {d}", best))
            s = (f"{dlabel(d)}: best at {best['workers']} processes "
                 f"({per_core(best['workers'], f.cores)}), {fmt(rate)}")
            top = max(f.clean(f.line(ours, d)), default=None)
            if top is not None and top != best["workers"]:
                n = self.num(F.ratio_number(f"tfb-fcgi {top}/best at {d}",
                                            f.line(ours, d)[top], best))
                s += f"; {top} processes make {fmt(n)} of it"
            parts.append(s)
        if not parts:
            return None
        text = ("**How this pool's throughput moves with processes per core** "
                f"(`{self.paths[0]}`; the machine has {f.cores} cores): "
                + "; ".join(parts) + ".")
        d = F.TARGET_DISTANCE
        two, sixteen = f.at(ours, d, 2), f.at(ours, d, 16)
        if two is not None and sixteen is not None:
            n = self.num(F.ratio_number(f"tfb-fcgi 16/2 at {d}", sixteen, two, F.T_GROWTH))
            text += (f" {where(d).capitalize()}, processes hide the round "
                     f"trip: 16 processes make {fmt(n)} what 2 make")
            b1, b0 = f.best(ours, d), f.best(ours, "0ms")
            if b1 is not None and b0 is not None:
                h = self.num(F.ratio_number("tfb-fcgi best 1ms/0ms", b1, b0, F.T_HIDE))
                text += f", and the best count reaches {fmt(h)} of the same layout at 0 ms"
            text += "."
            if b1 is not None and b1.get("cpu_delay") is not None and b1.get("us_delay"):
                def us(k):
                    return "—" if b1.get(k) is None else f"{b1[k]:.0f}"
                text += (f" There the delay line, the test's and not the pool's, took "
                         f"{b1['cpu_delay']:.0f}% of a core ({us('us_delay')} µs a "
                         f"request; the pool's workers {us('us_app')}, nginx "
                         f"{us('us_front')}, PostgreSQL {us('us_pg')}).")
        return text

    def standing(self):
        f = self.f
        parts = []
        for route, path in zip(self.route_keys(), self.paths):
            ratios = []
            for d in f.distances():
                ours, them = f.best("tfb-fcgi", d, route), f.best_subject(d, route)
                if ours is None or them is None:
                    continue
                n = F.ratio_number(f"tfb-fcgi/best subject {route} at {d}", ours, them)
                if n is not None:
                    ratios.append((n, d, them["subject"]))
            if not ratios:
                continue
            low = min(ratios, key=lambda x: x[0].value)
            high = max(ratios, key=lambda x: x[0].value)
            s = f"on `{path}` {fmt(self.num(low[0]))} the best of them ({low[2]}) at " \
                f"{dlabel(low[1])}"
            if high is not low:
                s += f", up to {fmt(self.num(high[0]))} ({high[2]}) at {dlabel(high[1])}"
            parts.append(s)
        if not parts:
            return None
        text = ("**Where the article's subjects stand**: this pool, each at its best "
                "count, makes " + "; ".join(parts) + ".")
        pr = self.per_request_sentence()
        return text + (" " + pr if pr else "")

    def per_request_sentence(self):
        f = self.f
        for d in [F.TARGET_DISTANCE] + f.distances():
            line = f.clean(f.line("flask-per-request", d))
            for w in sorted(line):
                fixed = f.at("flask", d, w)
                if fixed is not None:
                    n = self.num(F.ratio_number(f"flask per-request/persistent {w} at {d}",
                                                line[w], fixed))
                    return (f"Flask with a connection per request (TechEmpower's code as "
                            f"the article read it) makes {fmt(n)} of the fixed Flask's "
                            f"rate ({w} processes, {dlabel(d)}).")
        return None

    def article(self):
        f, d = self.f, F.TARGET_DISTANCE
        c = f.cores
        fl, fa = f.best("flask", d), f.best("fastapi", d)
        flc, fac = f.at("flask", d, c), f.at("fastapi", d, c)
        if None in (fl, fa, flc, fac):
            return None
        top = max(f.clean(f.line("flask", d)))
        if fl["workers"] > c:
            g = self.num(F.ratio_number(f"flask best/{c} at {d}", fl, flc, 1.0))
            flask_gains = g.verdict == "met"
            fls = f"best at {fl['workers']} processes, {fmt(g)} its rate at {c}"
        else:
            g = self.num(F.ratio_number(f"flask {top}/{c} at {d}", f.at("flask", d, top),
                                        flc, 1.0))
            flask_gains = False
            fls = f"best at {fl['workers']}, {top} processes make {fmt(g)} its rate at {c}"
        top = max(f.clean(f.line("fastapi", d)))
        ftop = f.at("fastapi", d, top)
        l = self.num(F.ratio_number(f"fastapi {top}/{c} at {d}", ftop, fac, 1.0,
                                    at_least=False))
        fastapi_loses = top > c and fa["workers"] <= c and l.verdict == "met"
        agree = flask_gains and fastapi_loses
        text = (f"**The article's chart, at {dlabel(d)}** ({c} cores here): fixed Flask "
                + ("gains" if flask_gains else "does not gain beyond the noise")
                + f" from processes past the cores ({fls}); FastAPI "
                + ("loses from them" if fastapi_loses else "does not lose beyond the noise")
                + f" (best at {fa['workers']}, {top} processes make {fmt(l)} its rate at "
                f"{c}). " + ("As the article reports." if agree else
                             "The article reports both; this run "
                             + ("agrees on Flask only." if flask_gains else
                                "agrees on FastAPI only." if fastapi_loses else
                                "agrees on neither.")))
        why = self.why(fl, flc, fa, ftop)
        return text + (" " + why if why else "")

    def why(self, fl, flc, fa, ftop):
        """What the CPU says about the shape: each subject's own CPU per
        request at its best and past the cores, and how busy the machine
        was."""
        def us(r):
            return "—" if r.get("us_app") is None else f"{r['us_app']:,.0f}"
        busy = fa.get("cpu_total")
        return (f"The subjects' own CPU per request: Flask {us(flc)} µs at {flc['workers']} "
                f"processes, {us(fl)} µs at {fl['workers']}; FastAPI {us(fa)} µs at "
                f"{fa['workers']}, {us(ftop)} µs at {ftop['workers']}"
                + (f"; the machine was {busy / self.f.cores:.0f}% busy at FastAPI's best"
                   if busy is not None else "") + ".")

    def route_keys(self):
        seen = []
        for r in self.f.rows:
            if r["route"] not in seen:
                seen.append(r["route"])
        return seen

    # -- the targets

    def auto_targets(self):
        """The pool that sizes itself (-w auto), where the run has it:
        auto ÷ the best fixed count and its p99 ÷ theirs on each route
        and distance of the issue, then its settling and its idling."""
        f, out = self.f, []
        rows = f.auto_rows()
        if not rows:
            return out
        paths = dict(zip(self.route_keys(), self.paths))
        for route in F.T_AUTO_ROUTES:
            for d in F.T_AUTO_AT:
                a, best = f.auto("tfb-fcgi", d, route), f.best("tfb-fcgi", d, route)
                if a is None and best is None:
                    continue
                path = paths.get(route, route)
                n = a and best and a["clean"] and F.ratio_number(
                    f"target: auto {route} at {d}", a, best, F.T_AUTO)
                sizes = a and ",".join(str(x) for x in a["auto_sizes"])
                out.append((f"`{path}` at {dlabel(d)}: auto ÷ the best fixed count",
                            f"≥ {F.T_AUTO:g}", n and f"{fmt(n)} (auto settled at "
                            f"{sizes}; best fixed {best['workers']})", n and n.verdict))
                q = a and best and a["clean"] and a["p99_ms"] and best["p99_ms"] and \
                    a["p99_ms"] / best["p99_ms"]
                out.append((f"`{path}` at {dlabel(d)}: auto's p99 ÷ the best fixed "
                            "count's", f"≤ {F.T_AUTO_P99:g}",
                            q and f"{q:.2f} ({a['p99_ms']:.2f} vs {best['p99_ms']:.2f} ms)",
                            q and ("met" if q <= F.T_AUTO_P99 else "not met")))
        settle = [r for r in rows if r["auto_settle_s"] is not None]
        if settle:
            worst = max(settle, key=lambda r: (r["auto_settle_s"], r["auto_turns"]))
            turns = max(r["auto_turns"] for r in settle)
            ok = worst["auto_settle_s"] <= F.T_SETTLE_S and turns <= F.T_TURNS
            out.append(("auto, from a fresh pool or a change of distance, route or load: "
                        "the longest settling, the most changes of direction",
                        f"≤ {F.T_SETTLE_S} s, ≤ {F.T_TURNS}",
                        f"{worst['auto_settle_s']:.0f} s ({worst['route']} at "
                        f"{dlabel(worst['distance'])}), {turns}", "met" if ok else "not met"))
        idle = [r for r in rows if r["auto_idle_s"] is not None or r["auto_first_ms"] is not None]
        if idle:
            down = max((r["auto_idle_s"] for r in idle if r["auto_idle_s"] is not None),
                       default=None)
            first = max((r["auto_first_ms"] for r in idle if r["auto_first_ms"] is not None),
                        default=None)
            ok = down is not None and first is not None and down <= F.T_IDLE_S and \
                first < F.T_FIRST_MS
            out.append(("auto, idle: down to its minimum after the load, and the first "
                        "request after that", f"≤ {F.T_IDLE_S} s, < {F.T_FIRST_MS} ms",
                        f"{'—' if down is None else f'{down:.0f} s'}, "
                        f"{'—' if first is None else f'{first:.1f} ms'}",
                        "met" if ok else "not met"))
        return out

    def targets(self, elapsed_s, kind):
        """[(measure, target, shown, verdict)]: verdict met / not met /
        within noise / not measured."""
        f, d = self.f, F.TARGET_DISTANCE
        out = []
        b1, b0 = f.best("tfb-fcgi", d), f.best("tfb-fcgi", "0ms")
        n = b1 and b0 and F.ratio_number("target: hide", b1, b0, F.T_HIDE)
        out.append((f"this pool at {dlabel(d)}, best count ÷ best at 0 ms (same layout)",
                    f"≥ {F.T_HIDE}", n and f"{fmt(n)} ({b1['workers']} vs "
                    f"{b0['workers']} processes)", n and n.verdict))
        two, sixteen = f.at("tfb-fcgi", d, 2), f.at("tfb-fcgi", d, 16)
        n = two and sixteen and F.ratio_number("target: growth", sixteen, two, F.T_GROWTH)
        out.append((f"this pool at {dlabel(d)}, 16 processes ÷ 2", f"≥ {F.T_GROWTH:g}",
                    n and fmt(n), n and n.verdict))
        for route, path in zip(self.route_keys(), self.paths):
            bound = F.T_OVER.get(route)
            if bound is None:
                continue
            for dist in f.distances():
                ours, them = f.best("tfb-fcgi", dist, route), f.best_subject(dist, route)
                if them is None and (dist == "local" or not any(
                        f.line(s, dist, route) for s in f.subjects())):
                    continue
                n = ours and them and F.ratio_number("target: over", ours, them, bound)
                out.append((f"`{path}` at {dlabel(dist)}: this pool ÷ the best subject, "
                            "each at its best count", f"≥ {bound:g}",
                            n and f"{fmt(n)} ({them['subject']}, {ours['workers']} vs "
                            f"{them['workers']} processes)", n and n.verdict))
        out += self.auto_targets()
        budget = F.BUDGET_S.get(kind)
        if budget and elapsed_s:
            out.append((f"the {kind} run's own time", f"≤ {budget // 60} min",
                        f"{elapsed_s / 60:.1f} min",
                        "met" if elapsed_s <= budget else "not met"))
        return [(m, t, s or "—", v or "not measured") for m, t, s, v in out]
