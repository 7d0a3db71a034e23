"""chart: req/s against workers, one figure saved as a PNG.

One chart per route: x is the worker count (log2 scale), y is requests/s
(log10 scale, so that a ratio is a distance wherever it sits and the
anchors, often ten times higher, stay on the chart).  One line per
configuration through the medians, a bar from min to max at each point,
the anchors as dashed horizontal lines labelled with their value.

matplotlib (Debian's python3-matplotlib, which deploy/deps installs) draws
the figure on its Agg backend: no display, no converter.  It is imported
only when a chart is drawn, so that reading the rest of benchlib (the
smoke test reads report.CSV_COLUMNS, and a chart's pixels) needs no
matplotlib.
The PNG says where it drew each configuration's points: its text chunk
"Series" holds [[label, [[column, row], ...]], ...] in pixels from the
top left, which a reader of the PNG (the smoke test, with points()) checks
against the pixels themselves.
"""

import importlib.util
import json
import math
import struct
import sys
import zlib

W, H, DPI = 960, 560, 100  # pixels: the PNG's size
LEFT, RIGHT, TOP, BOTTOM = 80, 250, 56, 64  # the plot's margins, pixels
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
ANCHOR_COLORS = ["#444444", "#8a6d00", "#006d6d", "#6d006d", "#6d3500"]
DASHES = (0, (5, 3))  # on, off: in line widths (matplotlib scales dashes)


def missing():
    """None when charts can be drawn; else what is missing, in a
    sentence a user can act on."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"python3-matplotlib is not importable by {sys.executable}"
    return None


def fmt_rate(v):
    if v < 10:
        return f"{v:g}"
    if v >= 10000 or (v >= 1000 and v % 1000 == 0):
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"


def _y_ticks(lo, hi):
    """1, 2, 5 times the powers of ten between lo and hi."""
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
        e += 1
    return ticks


def _limits(series, anchors):
    """(x values, (xlo, xhi), (ylo, yhi)) that hold every point, bar and
    anchor."""
    xs = sorted({p[0] for s in series for p in s["points"]}) or [1]
    vals = [v for s in series for p in s["points"] for v in p[1:] if v]
    vals += [v for _, v in anchors if v]
    vals = vals or [1.0]
    ylo = 10 ** math.floor(math.log10(max(min(vals), 1e-3) / 1.2))
    yhi = max(vals) * 1.25
    if yhi / ylo < 10:
        ylo = yhi / 10
    # Half a doubling of room on each side, so no point sits on the frame.
    xlim = (2 ** (math.log2(min(xs)) - 0.5), 2 ** (math.log2(max(xs)) + 0.5))
    return xs, xlim, (ylo, yhi)


def draw(path, title, subtitle, series, anchors, xlabel="worker processes",
         ylabel="requests/s (log scale)"):
    """series: [{"label", "points": [(x, median, lo, hi), ...]}];
    anchors: [(label, value or None)], None for an anchor that failed.
    Writes the chart to path, a PNG.  Raises ImportError without
    matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    from matplotlib.transforms import blended_transform_factory, offset_copy

    xs, xlim, ylim = _limits(series, anchors)
    fig = Figure(figsize=(W / DPI, H / DPI), dpi=DPI, facecolor="white")
    ax = fig.add_axes([LEFT / W, BOTTOM / H, (W - LEFT - RIGHT) / W,
                       (H - TOP - BOTTOM) / H])
    fig.text(LEFT / W, 1 - 22 / H, title, fontsize=14, fontweight="bold",
             va="baseline")
    fig.text(LEFT / W, 1 - 40 / H, subtitle, fontsize=9, color="#555555",
             va="baseline")

    # Axes: a tick at every measured worker count, 1-2-5 steps for req/s.
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_major_locator(FixedLocator(_y_ticks(*ylim)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_rate(v)))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(NullLocator())
    ax.grid(True, color="#e4e4e4", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)

    # Anchors: dashed lines across the plot, their value at the right end.
    across = blended_transform_factory(ax.transAxes, ax.transData)
    anchor_handles = []
    for i, (label, v) in enumerate(anchors):
        c = ANCHOR_COLORS[i % len(ANCHOR_COLORS)]
        text = f"{label}: {fmt_rate(v)}" if v else f"{label}: failed"
        anchor_handles.append(Line2D([], [], color=c, linewidth=1.5,
                                     linestyle=DASHES, label=text))
        if not v:
            continue
        ax.axhline(v, color=c, linewidth=1.5, linestyle=DASHES)
        ax.text(0.99, v, f"{label} {fmt_rate(v)}", transform=across, ha="right",
                va="bottom", color=c, fontsize=8)

    # Series, each nudged sideways a little (in points, so the same on any
    # scale) so that points measured at the same worker count do not hide
    # each other.
    series_handles, drawn = [], []
    for i, s in enumerate(series):
        c = COLORS[i % len(COLORS)]
        pts = [p for p in sorted(s["points"]) if p[1]]
        dx = (i - (len(series) - 1) / 2) * 3
        shift = offset_copy(ax.transData, fig=fig, x=dx, y=0, units="points")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=c, linewidth=2,
                marker="o", markersize=6, transform=shift)
        drawn.append((s["label"], shift, [p[:2] for p in pts]))
        # A bar only where the repetitions spread.
        spread = [p for p in pts if p[2] and p[3] and p[3] > p[2]]
        if spread:
            ax.errorbar([p[0] for p in spread], [p[1] for p in spread],
                        yerr=[[m - lo for _, m, lo, _ in spread],
                              [hi - m for _, m, _, hi in spread]],
                        fmt="none", ecolor=c, elinewidth=1.5, capsize=4, transform=shift)
        series_handles.append(Line2D([], [], color=c, linewidth=2, marker="o",
                                     markersize=6, label=s["label"]))

    # The legend column: the configurations, and the anchors under them
    # (placed once the first legend's height is known).
    FigureCanvasAgg(fig)
    top = 1.0
    for title, handles in (("configurations", series_handles),
                           ("anchors", anchor_handles)):
        if not handles:
            continue
        legend = Legend(ax, handles, [h.get_label() for h in handles],
                        title=title, loc="upper left", bbox_to_anchor=(1.02, top),
                        borderaxespad=0, frameon=False, fontsize=8,
                        handlelength=2.2, handletextpad=0.6, alignment="left",
                        title_fontproperties={"weight": "bold", "size": 9})
        ax.add_artist(legend)
        box = legend.get_window_extent(fig.canvas.get_renderer())
        top = box.transformed(ax.transAxes.inverted()).y0 - 0.03
    where = [[label, [[round(x), round(H - y)] for x, y in shift.transform(pts)]]
             for label, shift, pts in drawn]
    fig.savefig(str(path), dpi=DPI, facecolor="white",
                metadata={"Series": json.dumps(where)})


def _chunks(path):
    """(type, data) of each chunk of a PNG."""
    with open(path, "rb") as f:
        data = f.read()
    at = 8  # after the signature: chunks of length, type, data, CRC
    while at + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        yield kind, data[at + 8:at + 8 + n]
        at += 12 + n


def points(path):
    """What a chart's PNG says it drew: [[label, [[column, row], ...]], ...]
    from its "Series" text chunk ([] without one)."""
    for kind, data in _chunks(path):
        key, _, text = data.partition(b"\0")
        if kind == b"tEXt" and key == b"Series":
            return json.loads(text.decode("latin-1"))
    return []


def pixels(path):
    """pixel(column, row) -> (r, g, b) of a chart's PNG (8-bit RGB or RGBA,
    not interlaced, as the Agg backend writes it), read without
    matplotlib: the tests' python3 may have none."""
    chunks = list(_chunks(path))
    w, h, depth, ctype = struct.unpack(">IIBB", dict(chunks)[b"IHDR"][:10])
    bpp = {2: 3, 6: 4}[ctype] if depth == 8 else None
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    stride, prev, lines = w * bpp, bytearray(w * bpp), []
    for y in range(h):  # undo each line's filter (PNG's five)
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pred = (0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c)
                    else b if abs(p - b) <= abs(p - c) else c)[f]
            line[i] = (line[i] + pred) & 0xFF
        lines.append(prev := line)
    return lambda col, row: tuple(lines[row][col * bpp:col * bpp + 3])
