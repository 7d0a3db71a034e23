"""chart: req/s against workers as SVG, and PNG through rsvg-convert.

One chart per route: x is the worker count (log2 scale), y is requests/s
(log10 scale, so that a ratio is a distance wherever it sits and the
anchors, often ten times higher, stay on the chart).  One line per
configuration through the medians, a bar from min to max at each point,
the anchors as dashed horizontal lines labelled with their value.

No plotting library: the SVG is written by hand and checked to parse as
XML by the smoke test; rsvg-convert (Debian package librsvg2-bin) turns
it into the PNG.
"""

import math
import shutil
import subprocess
from xml.sax.saxutils import escape

W, H = 960, 560
LEFT, RIGHT, TOP, BOTTOM = 80, 250, 56, 64
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
ANCHOR_COLORS = ["#444444", "#8a6d00", "#006d6d", "#6d006d", "#6d3500"]


def fmt_rate(v):
    if v >= 10000 or (v >= 1000 and v % 1000 == 0):
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"


def _y_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
        e += 1
    return ticks


def svg(title, subtitle, series, anchors, xlabel="worker processes",
        ylabel="requests/s (log scale)"):
    """series: [{"label", "points": [(x, median, lo, hi), ...]}];
    anchors: [(label, value)].  Returns the SVG text."""
    xs = sorted({p[0] for s in series for p in s["points"]})
    vals = [v for s in series for p in s["points"] for v in p[1:] if v]
    vals += [a[1] for a in anchors if a[1]]
    if not xs:
        xs = [1]
    if not vals:
        vals = [1.0]
    ylo = 10 ** math.floor(math.log10(max(min(vals), 1e-3) / 1.2))
    yhi = 10 ** (math.log10(max(vals) * 1.25))
    if yhi / ylo < 10:
        ylo = yhi / 10
    # Half a doubling of room on each side, so no point sits on the frame.
    xlo, xhi = math.log2(min(xs)) - 0.5, math.log2(max(xs)) + 0.5
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def X(x):
        return LEFT + (math.log2(x) - xlo) / (xhi - xlo) * pw

    def Y(v):
        v = max(v, ylo)
        return TOP + ph - (math.log10(v) - math.log10(ylo)) / \
            (math.log10(yhi) - math.log10(ylo)) * ph

    o = []
    o.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" font-family="DejaVu Sans, sans-serif" '
             f'font-size="12">')
    o.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    o.append(f'<text x="{LEFT}" y="22" font-size="16" font-weight="bold">'
             f'{escape(title)}</text>')
    o.append(f'<text x="{LEFT}" y="40" fill="#555">{escape(subtitle)}</text>')
    # Grid and axes.
    for v in _y_ticks(ylo, yhi):
        y = Y(v)
        o.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" '
                 f'stroke="#e4e4e4"/>')
        o.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                 f'{fmt_rate(v)}</text>')
    for x in xs:
        px = X(x)
        o.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{TOP + ph}" '
                 f'stroke="#f0f0f0"/>')
        o.append(f'<text x="{px:.1f}" y="{TOP + ph + 18}" text-anchor="middle">'
                 f'{x}</text>')
    o.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" '
             f'fill="none" stroke="#333"/>')
    o.append(f'<text x="{LEFT + pw / 2:.1f}" y="{H - 20}" text-anchor="middle">'
             f'{escape(xlabel)}</text>')
    o.append(f'<text transform="translate(20 {TOP + ph / 2:.1f}) rotate(-90)" '
             f'text-anchor="middle">{escape(ylabel)}</text>')

    # Anchors: dashed lines across the plot, labelled in the legend column.
    ly = TOP + 8
    for i, (label, v) in enumerate(anchors):
        if not v:
            continue
        c = ANCHOR_COLORS[i % len(ANCHOR_COLORS)]
        y = Y(v)
        o.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" '
                 f'stroke="{c}" stroke-width="1.5" stroke-dasharray="7 4"/>')
        o.append(f'<text x="{LEFT + pw - 4}" y="{y - 4:.1f}" text-anchor="end" '
                 f'fill="{c}" font-size="11">{escape(label)} {fmt_rate(v)}</text>')

    # Series, each nudged sideways a little so that points measured at
    # the same worker count do not hide each other.
    for i, s in enumerate(series):
        c = COLORS[i % len(COLORS)]
        pts = sorted(s["points"])
        dx = (i - (len(series) - 1) / 2) * 4
        if len(pts) > 1:
            d = " ".join(f"{X(x) + dx:.1f},{Y(m):.1f}" for x, m, _, _ in pts if m)
            o.append(f'<polyline points="{d}" fill="none" stroke="{c}" '
                     f'stroke-width="2"/>')
        for x, m, lo, hi in pts:
            if not m:
                continue
            px = X(x) + dx
            if lo and hi and hi > lo:
                o.append(f'<line x1="{px:.1f}" y1="{Y(lo):.1f}" x2="{px:.1f}" '
                         f'y2="{Y(hi):.1f}" stroke="{c}" stroke-width="1.5"/>')
                for v in (lo, hi):
                    o.append(f'<line x1="{px - 4:.1f}" y1="{Y(v):.1f}" '
                             f'x2="{px + 4:.1f}" y2="{Y(v):.1f}" stroke="{c}"/>')
            o.append(f'<circle cx="{px:.1f}" cy="{Y(m):.1f}" r="3.5" fill="{c}"/>')
    # Legend.
    lx = LEFT + pw + 16
    o.append(f'<text x="{lx}" y="{ly + 4}" font-weight="bold">configurations</text>')
    ly += 20
    for i, s in enumerate(series):
        c = COLORS[i % len(COLORS)]
        o.append(f'<line x1="{lx}" y1="{ly:.1f}" x2="{lx + 22}" y2="{ly:.1f}" '
                 f'stroke="{c}" stroke-width="2"/>')
        o.append(f'<circle cx="{lx + 11}" cy="{ly:.1f}" r="3.5" fill="{c}"/>')
        o.append(f'<text x="{lx + 28}" y="{ly + 4:.1f}">{escape(s["label"])}</text>')
        ly += 18
    if anchors:
        ly += 10
        o.append(f'<text x="{lx}" y="{ly + 4}" font-weight="bold">anchors</text>')
        ly += 20
        for i, (label, v) in enumerate(anchors):
            c = ANCHOR_COLORS[i % len(ANCHOR_COLORS)]
            o.append(f'<line x1="{lx}" y1="{ly:.1f}" x2="{lx + 22}" y2="{ly:.1f}" '
                     f'stroke="{c}" stroke-width="1.5" stroke-dasharray="7 4"/>')
            text = f"{label}: {fmt_rate(v)}" if v else f"{label}: failed"
            o.append(f'<text x="{lx + 28}" y="{ly + 4:.1f}">{escape(text)}</text>')
            ly += 18
    o.append("</svg>")
    return "\n".join(o) + "\n"


def png_tool():
    return shutil.which("rsvg-convert")


def to_png(svg_path, png_path):
    """Render svg_path to png_path; False (and no file) when rsvg-convert
    is missing or fails."""
    tool = png_tool()
    if tool is None:
        return False
    p = subprocess.run([tool, "-b", "white", "-o", str(png_path), str(svg_path)],
                       capture_output=True)
    return p.returncode == 0
