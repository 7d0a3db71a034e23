"""figures: the experiment's charts, PNG files drawn with matplotlib's Agg
backend (Debian's python3-matplotlib), one colour per subject in every
one of them (subjects.SUBJECTS).

  headline      requests/s (top row) and p99 (bottom row) against
                processes per core, one column per database distance,
                linear y axes shared along each row, the core count
                marked, a footer naming the machine and the method
  per_request   a connection per request against the persistent twin,
                requests/s on a log axis (they are tens of times apart)
  open_loop     p50 and p99 against the offered rate, per distance

Each PNG says where it drew each series' points: its text chunk
"Series" holds [[panel, label, [[column, row], ...]], ...] in pixels
from the top left, which chart.points() reads back (the tests compare
them with the pixels).  matplotlib is imported only when a chart is
drawn.
"""

import json
import os
import tempfile

from . import chart
from .subjects import SUBJECTS

DPI = 100
GRID = "#e4e4e4"


def cache_dir():
    """matplotlib's cache in a directory of ours when HOME is not ours to
    write (a user such as nobody): else it warns on every run."""
    if not os.access(os.path.expanduser("~"), os.W_OK):
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(
            tempfile.gettempdir(), "tfb-bench-matplotlib-%d" % os.getuid()))


def _mpl():
    cache_dir()
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    return Figure


def _fmt_rate(v, _=None):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def _footer(fig, text, w):
    """The footer, wrapped to the figure's width (about 6 pixels a
    character at 8 points)."""
    import textwrap
    fig.text(0.012, 0.015, "\n".join(textwrap.wrap(text, max(60, (w - 20) // 6))),
             fontsize=8, color="#444444", va="bottom")


def _save(fig, path, drawn, h):
    """Write fig to path, with the pixels of every series' points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    where = []
    for panel, label, ax, pts in drawn:
        xy = ax.transData.transform(pts) if pts else []
        where.append([panel, label, [[round(x), round(h - y)] for x, y in xy]])
    fig.savefig(str(path), dpi=DPI, facecolor="white",
                metadata={"Series": json.dumps(where), "Software": None})


def headline(path, panels, cores, footer, title):
    """panels: [(distance label, {subject: [(processes, rps, lo, hi, p99_ms)]})]."""
    Figure = _mpl()
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    n = max(1, len(panels))
    w, h = max(900, 300 * n + 160), 820
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI, facecolor="white")
    fig.text(0.012, 0.975, title, fontsize=14, fontweight="bold", va="top")
    axes = fig.subplots(2, n, sharex=True, sharey="row", squeeze=False,
                        gridspec_kw={"left": 0.07, "right": 0.99, "top": 0.86,
                                     "bottom": 0.17, "hspace": 0.08, "wspace": 0.06})
    xs = sorted({p[0] / cores for _, by in panels for pts in by.values() for p in pts}) or [1]
    drawn, handles = [], {}
    for col, (label, by) in enumerate(panels):
        top, bottom = axes[0][col], axes[1][col]
        top.set_title(label, fontsize=11)
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_locator(FixedLocator(xs))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.grid(True, color=GRID, linewidth=0.8)
            ax.set_axisbelow(True)
            ax.axvline(1.0, color="#888888", linewidth=1, linestyle=(0, (4, 3)))
        top.text(1.0, 0.98, f" {cores} processes\n = the cores", transform=top.get_xaxis_transform(),
                 fontsize=7, color="#666666", va="top")
        for key in SUBJECTS:
            pts = sorted(by.get(key, []))
            if not pts:
                continue
            c = SUBJECTS[key].color
            x = [p[0] / cores for p in pts]
            line, = top.plot(x, [p[1] for p in pts], color=c, linewidth=2, marker="o",
                             markersize=5)
            handles[key] = line
            lo = [p[1] - p[2] for p in pts]
            hi = [p[3] - p[1] for p in pts]
            top.errorbar(x, [p[1] for p in pts], yerr=[lo, hi], fmt="none", ecolor=c,
                         elinewidth=1.2, capsize=3)
            p99 = [(xx, p[4]) for xx, p in zip(x, pts) if p[4] is not None]
            bottom.plot([a for a, _ in p99], [b for _, b in p99], color=c, linewidth=2,
                        marker="s", markersize=4)
            drawn.append([label, key, top, [[xx, p[1]] for xx, p in zip(x, pts)]])
        bottom.set_xlabel("processes per core")
    # The limits once every panel is drawn: the rows share them.
    rates = [p[3] or p[1] for _, by in panels for pts in by.values() for p in pts]
    axes[0][0].set_ylim(0, max(rates + [1]) * 1.08)
    lat = [p[4] for _, by in panels for pts in by.values() for p in pts if p[4]]
    if lat:
        lo, hi = min(lat) / 1.5, max(lat) * 1.5
        axes[1][0].set_yscale("log")
        axes[1][0].set_ylim(lo, hi)
        axes[1][0].yaxis.set_major_locator(FixedLocator(chart._y_ticks(lo, hi)))
        axes[1][0].yaxis.set_minor_locator(NullLocator())
        axes[1][0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0][0].set_ylabel("requests/s")
    axes[0][0].yaxis.set_major_formatter(FuncFormatter(_fmt_rate))
    axes[1][0].set_ylabel("p99 latency, ms (log scale)")
    keys = [k for k in SUBJECTS if k in handles]
    fig.legend([handles[k] for k in keys], [SUBJECTS[k].label for k in keys],
               loc="upper left", bbox_to_anchor=(0.07, 0.945), ncol=min(3, len(keys)),
               frameon=False, fontsize=9)
    _footer(fig, footer, w)
    _save(fig, path, drawn, h)


def per_request(path, panels, footer, title):
    """panels: [(distance label, {subject: [(processes, rps, lo, hi)]})],
    the per-request subjects and their persistent twins."""
    Figure = _mpl()
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    n = max(1, len(panels))
    w, h = max(800, 380 * n + 120), 600
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI, facecolor="white")
    fig.text(0.012, 0.975, title, fontsize=13, fontweight="bold", va="top")
    axes = fig.subplots(1, n, sharey=True, squeeze=False,
                        gridspec_kw={"left": 0.09, "right": 0.99, "top": 0.72,
                                     "bottom": 0.2, "wspace": 0.06})[0]
    drawn, handles = [], {}
    for ax, (label, by) in zip(axes, panels):
        ax.set_title(label, fontsize=11)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        xs = sorted({p[0] for pts in by.values() for p in pts}) or [1]
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(_fmt_rate))
        ax.grid(True, color=GRID, linewidth=0.8)
        ax.set_xlabel("processes")
        for key in SUBJECTS:
            pts = sorted(by.get(key, []))
            if not pts:
                continue
            style = (0, (5, 3)) if SUBJECTS[key].db_mode == "persistent" else "solid"
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts],
                            color=SUBJECTS[key].color, linewidth=2, marker="o",
                            markersize=5, linestyle=style)
            handles[key] = line
            drawn.append([label, key, ax, [[p[0], p[1]] for p in pts]])
    vals = [p[1] for _, by in panels for pts in by.values() for p in pts if p[1]]
    if vals:
        lo, hi = min(vals) / 1.3, max(vals) * 1.3
        axes[0].set_ylim(lo, hi)
        axes[0].yaxis.set_major_locator(FixedLocator(chart._y_ticks(lo, hi)))
        axes[0].yaxis.set_minor_locator(NullLocator())
    axes[0].set_ylabel("requests/s (log scale)")
    keys = [k for k in SUBJECTS if k in handles]
    fig.legend([handles[k] for k in keys], [SUBJECTS[k].label for k in keys],
               loc="upper left", bbox_to_anchor=(0.09, 0.92), ncol=2, frameon=False,
               fontsize=9)
    _footer(fig, footer, w)
    _save(fig, path, drawn, h)


def open_loop(path, panels, footer, title):
    """panels: [(distance label, {subject: [(offered, p50_ms, p99_ms)]})]."""
    Figure = _mpl()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    n = max(1, len(panels))
    w, h = max(800, 420 * n + 120), 600
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI, facecolor="white")
    fig.text(0.012, 0.975, title, fontsize=13, fontweight="bold", va="top")
    axes = fig.subplots(1, n, sharey=True, squeeze=False,
                        gridspec_kw={"left": 0.09, "right": 0.99, "top": 0.72,
                                     "bottom": 0.2, "wspace": 0.06})[0]
    drawn, keys = [], []
    for ax, (label, by) in zip(axes, panels):
        ax.set_title(label, fontsize=11)
        ax.set_xscale("log")
        ax.set_yscale("log")
        xs = [p[0] for pts in by.values() for p in pts if p[0]]
        if xs:
            ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)
            ax.xaxis.set_major_locator(FixedLocator(chart._y_ticks(min(xs) / 1.3,
                                                                   max(xs) * 1.3)))
            ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(_fmt_rate))
        ax.grid(True, color=GRID, linewidth=0.8, which="both")
        ax.set_xlabel("offered requests/s (log scale)")
        for key in SUBJECTS:
            pts = sorted(p for p in by.get(key, []) if p[2] is not None)
            if not pts:
                continue
            c = SUBJECTS[key].color
            ax.plot([p[0] for p in pts], [p[2] for p in pts], color=c, linewidth=2,
                    marker="o", markersize=5)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=c, linewidth=1.5,
                    marker=".", linestyle=(0, (4, 3)))
            drawn.append([label, key, ax, [[p[0], p[2]] for p in pts]])
            if key not in keys:
                keys.append(key)
    vals = [v for _, by in panels for pts in by.values() for p in pts for v in p[1:] if v]
    if vals:
        lo, hi = min(vals) / 1.5, max(vals) * 1.5
        axes[0].set_ylim(lo, hi)
        axes[0].yaxis.set_major_locator(FixedLocator(chart._y_ticks(lo, hi)))
        axes[0].yaxis.set_minor_locator(NullLocator())
        axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].set_ylabel("latency, ms (log scale)")
    handles = [Line2D([], [], color=SUBJECTS[k].color, linewidth=2) for k in keys]
    handles += [Line2D([], [], color="#555555", linewidth=2, marker="o"),
                Line2D([], [], color="#555555", linewidth=1.5, linestyle=(0, (4, 3)))]
    fig.legend(handles, [SUBJECTS[k].label for k in keys] + ["p99", "p50"],
               loc="upper left", bbox_to_anchor=(0.09, 0.92), ncol=3, frameon=False,
               fontsize=9)
    _footer(fig, footer, w)
    _save(fig, path, drawn, h)
