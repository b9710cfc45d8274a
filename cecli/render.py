"""Renderers: a finished LossResult in, text out. They compute nothing.

JSON is written with ``json.dumps`` straight to the stream (never through rich), so it
is strict and lossless. The table uses rich ``Text`` objects for every data cell and
heading, so column names and values print literally, never as markup.
"""

from __future__ import annotations

import csv
import json
import math

from .errors import printable
from .result import LossResult, cell_text, json_text

TABLE_ROWS = 20


def _number(value, precision: int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and precision is not None and math.isfinite(value):
        return f"{value:.{precision}f}"
    return repr(value) if isinstance(value, float) else str(value)


def _shown(value) -> str:
    """A kept or grouped value in the table, as JSON prints it (``0``, ``0.5``, ``true``, ``null``)."""
    return '""' if value == "" else printable(json_text(value))


def render_json(result: LossResult, stream, *, per_sample: bool = True) -> None:
    """The flat JSON document (DESIGN.md, "JSON output")."""
    stream.write(json.dumps(result.to_dict(per_sample=per_sample), allow_nan=False, default=str) + "\n")


def render_value(result: LossResult, stream, *, precision: int | None = None) -> None:
    """Just the reduced value, or one per-sample value a line for ``--reduction none``."""
    if result.value is not None or result.options.reduction != "none":
        stream.write(_number(result.value, precision) + "\n")
        return
    stream.write("".join(_number(v, precision) + "\n" for v in result.per_sample_list()))


def render_lines(result: LossResult, stream, *, fmt: str) -> None:
    """One line per sample: ``row`` (1-based record), ``loss`` and kept columns."""
    names = list(result.keep)
    values = result.per_sample_list()
    if fmt == "ndjson":
        for i, loss in enumerate(values):
            record = {"row": i + 1, "loss": loss, **{n: result.keep[n][i] for n in names}}
            stream.write(json.dumps(record, allow_nan=False, default=str) + "\n")
        return
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["row", "loss", *names])
    for i, loss in enumerate(values):
        writer.writerow([i + 1, "" if loss is None else repr(loss), *(cell_text(result.keep[n][i]) for n in names)])


def render_table(result: LossResult, console, *, precision: int = 6, per_sample: bool = True) -> None:
    """Per-sample rows (the first :data:`TABLE_ROWS`) and a summary block."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if per_sample and result.per_sample is not None:
        table = Table(box=box.SIMPLE_HEAD, title=Text(f"cecli {result.options.loss}: per-sample loss"))
        table.add_column(Text("row"), justify="right")
        table.add_column(Text(f"loss ({result.options.unit})"), justify="right")
        for name in result.keep:
            table.add_column(Text(printable(name)))
        values = result.per_sample_list()
        for i, loss in enumerate(values[:TABLE_ROWS]):
            kept = [Text(_shown(result.keep[n][i])) for n in result.keep]
            table.add_row(Text(str(i + 1)), Text(_number(loss, precision) if loss is not None else "—"), *kept)
        if len(values) > TABLE_ROWS:
            table.caption = Text(f"… {len(values) - TABLE_ROWS} more rows (use -f json or --out for all)")
        console.print(table)
    document = result.to_dict(per_sample=False)
    if result.groups is not None:
        console.print(
            _breakdown_table(
                "by " + ", ".join(map(printable, result.input.get("by_columns", []))),
                [
                    (", ".join(map(_shown, key.values())), summary)
                    for (key, _), summary in zip(result.groups, document["by"], strict=True)
                ],
                precision,
            )
        )
    if result.per_class is not None:
        console.print(
            _breakdown_table(
                "per true class",
                [
                    (name, summary)
                    for (name, _, _), summary in zip(result.per_class, document["per_class"], strict=True)
                ],
                precision,
                "class",
            )
        )
    if result.top is not None and result.top.rows:
        console.print(_top_table(result, precision))
    if result.histogram is not None and result.partial.count:
        console.print(_histogram_table(result))
    summary = Table(box=box.SIMPLE_HEAD, show_header=False, title=Text("summary"))
    summary.add_column(justify="left")
    summary.add_column(justify="right")
    rows = [
        ("loss", result.options.loss),
        ("value", _number(document["value"], precision)),
        ("reduction", result.options.reduction),
        ("unit", result.options.unit),
        ("count", str(document["count"])),
        ("mean", _number(document["mean"], precision)),
        ("sum", _number(document["sum"], precision)),
        ("weight sum", _number(document["weight_sum"], precision)),
        ("denominator", _number(document["denominator"], precision)),
        ("min", _number(document["min"], precision)),
        ("max", _number(document["max"], precision)),
        *([("accuracy", _number(document["accuracy"], precision))] if document["accuracy"] is not None else []),
        *([("perplexity", _number(document["perplexity"], precision))] if document["perplexity"] is not None else []),
        ("input", f"{printable(result.input['path'] or ', '.join(result.input['paths']))} ({result.input['format']})"),
    ]
    for label, value in rows:
        summary.add_row(Text(label), Text(value))
    console.print(summary)


def _breakdown_table(title: str, rows: list, precision: int, heading: str = "group"):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, title=Text(title))
    names = ("value", "mean", "sum", "min", "max")  # the JSON keys of each row, as in the summary
    for name in (heading, "count", *names):
        table.add_column(Text(name), justify="left" if name == heading else "right")
    for label, summary in rows:
        numbers = [summary[name] for name in names]
        table.add_row(
            Text(printable(label)), Text(str(summary["count"])), *(Text(_number(v, precision)) for v in numbers)
        )
    return table


def _top_table(result: LossResult, precision: int):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    names = list(result.input.get("keep_columns", []))
    table = Table(box=box.SIMPLE_HEAD, title=Text(f"{len(result.top.rows)} largest losses"))
    table.add_column(Text("row"), justify="right")
    table.add_column(Text(f"loss ({result.options.unit})"), justify="right")
    for name in names:
        table.add_column(Text(printable(name)))
    for loss, row, kept in result.top.rows:
        table.add_row(Text(str(row)), Text(_number(loss, precision)), *(Text(_shown(v)) for v in kept))
    return table


def _histogram_table(result: LossResult, width: int = 30):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .reduce import HISTOGRAM_EDGES

    counts = result.histogram.counts
    used = [i for i, c in enumerate(counts) if c]
    table = Table(box=box.SIMPLE_HEAD, title=Text(f"distribution of per-sample loss ({result.options.unit})"))
    table.add_column(Text("from"), justify="right")
    table.add_column(Text("to"), justify="right")
    table.add_column(Text("count"), justify="right")
    table.add_column(Text(""), justify="left")
    nan = result.histogram.nan
    peak = max(*counts, nan)
    for i in range(used[0], used[-1] + 1) if used else ():
        low, high = HISTOGRAM_EDGES[i], HISTOGRAM_EDGES[i + 1]
        bar = "█" * max(1 if counts[i] else 0, round(width * counts[i] / peak))
        table.add_row(Text(f"{low:.3g}"), Text(f"{high:.3g}"), Text(str(counts[i])), Text(bar))
    if nan:  # NaN has no bin; it is counted on its own row so that the counts add up
        table.add_row(Text("NaN"), Text(""), Text(str(nan)), Text("█" * max(1, round(width * nan / peak))))
    return table
