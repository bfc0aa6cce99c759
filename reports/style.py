"""Plot style shared by every ``reports/plot_*.py`` module (Agg, house matplotlibrc)."""

from __future__ import annotations

import contextlib
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

RCFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "matplotlibrc")

#: Colour-blind safe (Okabe-Ito) colours, in the order of the rc cycle.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


@contextlib.contextmanager
def style():
    """Context in which the house style is active (the global rc is left untouched)."""
    with matplotlib.rc_context(fname=RCFILE):
        yield


def save(fig, path) -> str:
    """Save ``fig`` as a PNG at ``path`` (directories created) and close it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return str(path)


def steps_axis(ax, steps, *, ar_label=None, ar_x=None):
    """Log2 x axis over step counts, optionally with an extra tick for the AR reference."""
    ax.set_xscale("log", base=2)
    ticks = list(steps)
    labels = [str(s) for s in steps]
    if ar_label is not None:
        ticks.append(ar_x)
        labels.append(ar_label)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    ax.minorticks_off()


def plain_log_labels(ax, axis="y"):
    """Plain number labels (``2.5`` rather than ``2.5x10^0``) on a log axis; minor labels only
    when the axis spans less than one decade."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    a = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    a.set_major_formatter(fmt)
    span = hi / max(lo, 1e-300)
    if span < 10:
        a.set_minor_formatter(fmt)
    elif span < 200:
        a.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    else:
        a.set_minor_formatter(NullFormatter())
