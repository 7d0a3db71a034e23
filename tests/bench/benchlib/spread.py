"""spread: what the repetitions of a point say, and with what noise.

Latency: each repetition's histogram (buckets 1% wide: bucket b holds the
requests that took between 1.01^b and 1.01^(b+1) microseconds, written
"b:n,b:n,..." as wrk/hist.lua prints it) is merged with the others of the
same point, and the percentiles are read from the whole: a p99 of all
the requests, not a median of p99s.  The error is under 1%.

Throughput: a point's repetitions give one rate each.  A ratio of two
points is taken repetition by repetition (rep i of A over rep i of B:
the sweep interleaves, so the two were measured minutes apart at most,
under the same drift), and carries its spread, the min and max of those
paired ratios, beside their median.  A verdict against a bound reads
"met" when the whole spread clears it, "not met" when none of it does,
"within noise" when the spread straddles it.

The best process count of a line is the lowest count that no other
count beats beyond the noise; A beats B beyond the noise when A is above
B in every repetition (the lowest of their paired ratios above 1; if
they share no repetition, when A's lowest is above B's highest).
"""

import math
import statistics

STEP = 1.01
LOG_STEP = math.log(STEP)


def hist_parse(text):
    """"b:n,b:n" -> {b: n}; {} for None or ""."""
    out = {}
    for part in (text or "").split(","):
        if ":" in part:
            b, n = part.split(":")
            out[int(b)] = out.get(int(b), 0) + int(n)
    return out


def hist_text(h):
    return ",".join("%d:%d" % (b, h[b]) for b in sorted(h) if h[b])


def hist_of(values_us):
    """A histogram of latencies in microseconds (h2load's log)."""
    h = {}
    for v in values_us:
        b = int(math.floor(math.log(v) / LOG_STEP)) if v >= 1 else 0
        h[b] = h.get(b, 0) + 1
    return h


def hist_merge(hists):
    out = {}
    for h in hists:
        for b, n in h.items():
            out[b] = out.get(b, 0) + n
    return out


def hist_percentile(h, p):
    """The latency in µs below which a share p (0..100) of h's requests
    fell: its bucket's geometric middle.  None for an empty h."""
    total = sum(h.values())
    if not total:
        return None
    want = p / 100.0 * total
    seen = 0
    for b in sorted(h):
        seen += h[b]
        if seen >= want:
            return STEP ** (b + 0.5)
    return STEP ** (max(h) + 0.5)


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def paired(a, b):
    """The ratios rep by rep of a over b ({rep: value} each), for the
    repetitions both have with b's value above 0."""
    return [a[r] / b[r] for r in sorted(a) if r in b and a[r] is not None
            and b[r]]


def ratio(a, b):
    """(median, min, max, n) of the paired ratios a / b; None when no
    repetition pairs."""
    qs = paired(a, b)
    if not qs:
        return None
    return (statistics.median(qs), min(qs), max(qs), len(qs))


def judge(spread, bound, at_least=True):
    """"met" | "not met" | "within noise" for a (median, lo, hi, n)
    against bound (at least it, or at most it)."""
    if spread is None:
        return None
    _, lo, hi, _ = spread
    if not at_least:
        lo, hi, bound = -hi, -lo, -bound
    if lo >= bound:
        return "met"
    if hi < bound:
        return "not met"
    return "within noise"


def beats(a, b):
    """Whether rates a beat rates b ({rep: rps} each) beyond the noise: a
    above b in every repetition they share (the lowest paired ratio above
    1), or, sharing none, a's lowest repetition above b's highest."""
    s = ratio(a, b)
    if s is not None:
        return s[1] > 1.0
    av, bv = [v for v in a.values() if v is not None], [v for v in b.values() if v is not None]
    return bool(av and bv) and min(av) > max(bv)


def best_count(line):
    """line: {count: {rep: rps}}.  The lowest count no other beats beyond
    the noise; None for an empty line.  Among several such counts (a
    plateau) the lowest is the one a deployment needs."""
    counts = sorted(c for c, reps in line.items() if any(v for v in reps.values()))
    for c in counts:
        if not any(beats(line[o], line[c]) for o in counts if o != c):
            return c
    return counts[-1] if counts else None
