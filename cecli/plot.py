"""``--plot FILE.png|.svg``: a picture of the losses (optional extra ``cecli[plot]``, matplotlib).

The first panel is the histogram of the per-sample losses on a log axis, drawn from the result's
fixed bins (:data:`cecli.numerics.reduce.HISTOGRAM_EDGES`), so it is the same however the input was split
and needs no per-sample values. With ``--per-class`` and/or ``--by`` a panel per breakdown follows:
a bar per class or group, as high as its mean loss, labelled with its count. matplotlib is imported
only here, and this module only when ``--plot`` is given.
"""

from __future__ import annotations

import math
import os
import tempfile

from .errors import OptionError
from .lines import json_text
from .numerics.reduce import HISTOGRAM_EDGES, Partial
from .result import LossResult

FORMATS = (".png", ".svg")
PANEL_INCHES = (8.0, 3.6)  # width, height of one panel
DPI = 100
MAX_BARS = 40  # more groups than this: the most populous ones are drawn, and the title says so
# The first bin is [0, 1e-6) and the last [1e3, inf]: on a log axis they are drawn one half-decade wide.
_LOW, _HIGH = HISTOGRAM_EDGES[1] / math.sqrt(10.0), HISTOGRAM_EDGES[-2] * math.sqrt(10.0)


def check_plot_path(path: str) -> None:
    """Refuse, before any work, a name that is not ``.png``/``.svg``, a missing folder or a missing matplotlib."""
    extension = os.path.splitext(path.lower())[1]
    if extension not in FORMATS:
        raise OptionError(f"cannot tell the image format of --plot {path}", hint="use a .png or .svg name")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise OptionError(f"the folder of --plot {path} does not exist", hint="create it first")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise OptionError("--plot needs matplotlib, which is not installed", hint="pip install 'cecli[plot]'") from None


def write_plot(result: LossResult, path: str) -> None:
    """Draw the loss histogram and the breakdowns of `result` to `path`, atomically.

    The image is written to a temporary file in the same folder and renamed, so `path` is
    whole or untouched. SVG text stays text (searchable and selectable), not outlines.
    """
    import matplotlib
    from matplotlib.figure import Figure

    breakdowns = []
    if result.per_class:
        breakdowns.append(("true class", "per true class", [(name, part) for name, _, part in result.per_class]))
    if result.groups:
        columns = ", ".join(result.groups[0][0])
        groups = [(", ".join(json_text(value) for value in key.values()), part) for key, part in result.groups]
        breakdowns.append((columns, f"by {columns}", groups))
    panels = 1 + len(breakdowns)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "cecli"}):
        figure = Figure(figsize=(PANEL_INCHES[0], PANEL_INCHES[1] * panels), dpi=DPI, layout="constrained")
        axes = figure.subplots(panels, 1, squeeze=False)[:, 0]
        _histogram(axes[0], result)
        for ax, (label, title, groups) in zip(axes[1:], breakdowns, strict=True):
            _group_means(ax, result, label, title, groups)
        extension = os.path.splitext(path.lower())[1]
        folder = os.path.dirname(os.path.abspath(path))
        fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=extension, dir=folder)
        try:
            with os.fdopen(fd, "wb") as file:
                metadata = {"Date": None} if extension == ".svg" else {"Software": None}
                figure.savefig(file, format=extension[1:], metadata=metadata)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise


def _histogram(ax, result: LossResult) -> None:
    from matplotlib.ticker import MaxNLocator

    unit = result.options.unit
    counts = result.histogram.counts if result.histogram is not None else ()
    used = [i for i, count in enumerate(counts) if count]
    ax.set_title(f"cecli {result.options.loss}: per-sample loss, {sum(counts):,} samples")
    ax.set_ylabel("samples")
    ax.set_xscale("log")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not used:
        ax.set_xlabel(f"loss ({unit}), log scale")
        ax.text(0.5, 0.5, "no per-sample losses", transform=ax.transAxes, ha="center", va="center")
        return
    ends = [
        note
        for note, drawn in (
            ("first bar: below 1e-06", used[0] == 0),
            ("last: 1e+03 and above, inf included", used[-1] == len(counts) - 1),
        )
        if drawn
    ]
    ax.set_xlabel(f"loss ({unit}), log scale" + "".join(f"; {note}" for note in ends))
    for i in range(used[0], used[-1] + 1):
        low = HISTOGRAM_EDGES[i] if i > 0 else _LOW
        high = HISTOGRAM_EDGES[i + 1] if i + 1 < len(HISTOGRAM_EDGES) - 1 else _HIGH
        (bar,) = ax.bar(low, counts[i], width=high - low, align="edge", color="#4c72b0", edgecolor="white")
        bar.set_gid(f"histogram-bar-{i}")


def _group_means(ax, result: LossResult, label: str, title: str, groups: list[tuple[str, Partial]]) -> None:
    unit = result.options.unit
    shown = groups
    if len(groups) > MAX_BARS:
        keep = sorted(range(len(groups)), key=lambda i: -groups[i][1].count)[:MAX_BARS]
        shown = [groups[i] for i in sorted(keep)]
        title = f"{title} ({MAX_BARS} of {len(groups)} groups, those with the most samples)"
    ax.set_title(f"mean loss {title}")
    ax.set_xlabel(label)
    ax.set_ylabel(f"mean loss ({unit})")
    for position, (_, part) in enumerate(shown):
        mean = part.mean
        height = mean if math.isfinite(mean) else 0.0
        (bar,) = ax.bar(position, height, color="#dd8452")
        bar.set_gid(f"group-bar-{position}")
        note = f"n={part.count:,}" if math.isfinite(mean) else f"n={part.count:,}, mean {mean}"
        ax.annotate(note, (position, height), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(shown)), [name for name, _ in shown], rotation=30 if len(shown) > 8 else 0)
    ax.margins(y=0.15)
