"""Renderers: a finished LossResult in, text out. They compute nothing.

JSON is written with ``json.dumps`` straight to the stream (never through rich), so it
is strict and lossless. The table uses rich ``Text`` objects for every data cell and
heading, so column names and values print literally, never as markup.
"""

from __future__ import annotations

import codecs
import math
import os

from .errors import printable
from .lines import csv_header, csv_lines, json_text, ndjson_lines
from .result import LossResult

TABLE_ROWS = 20
_CHUNK_ROWS = 1 << 16  # per-sample lines formatted and written at a time


def _number(value, precision: int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and precision is not None and math.isfinite(value):
        return f"{value:.{precision}f}"
    return repr(value) if isinstance(value, float) else str(value)


def _p_value(value: float | None) -> str:
    """A p-value to three significant digits, as the verdict line gives it: ``4.97e-10``, never ``0.000000``."""
    return "null" if value is None else f"{value:.3g}"


def _shown(value) -> str:
    """A kept or grouped value in the table, as JSON prints it (``0``, ``0.5``, ``true``, ``null``)."""
    return '""' if value == "" else printable(json_text(value))


def render_json(result: LossResult, stream, *, per_sample: bool = True) -> None:
    """The flat JSON document (DESIGN.md, "JSON output")."""
    import json  # here: --value-only and the table write no JSON (json and its regexes, about 1 ms of start-up)

    stream.write(json.dumps(result.to_dict(per_sample=per_sample), allow_nan=False, default=str) + "\n")


def render_value(result: LossResult, stream, *, precision: int | None = None) -> None:
    """Just the reduced value, or one per-sample value a line for ``--reduction none``."""
    if result.value is not None or result.options.reduction != "none":
        stream.write(_number(result.value, precision) + "\n")
        return
    stream.write("".join(word + "\n" for word in result.per_sample_words(precision)))


def render_lines(result: LossResult, stream, *, fmt: str) -> None:
    """One line per sample: ``row`` (1-based record), ``loss`` and kept columns.

    An ignored row has no loss: ``null`` in NDJSON, an empty cell in CSV. A loss that is not
    finite is ``inf``/``nan`` text in CSV; NDJSON (strict JSON) writes ``null`` with
    ``"nonfinite": "inf"`` beside it.
    """
    # In chunks: one write of many lines each, in bounded memory; as bytes to the binary stream under the text
    # one where that writes the same (decoding them to text and encoding them again: 10% of the run).
    lines_of, header = (ndjson_lines, "") if fmt == "ndjson" else (csv_lines, csv_header(list(result.keep)))
    stream.write(header)
    binary = _binary(stream, ascii_only=fmt == "ndjson")
    if binary is not None:
        stream.flush()  # what it holds goes first
    for start in range(0, result.per_sample.size, _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        keep = {name: values[start:stop] for name, values in result.keep.items()}
        lines = lines_of(start + 1, result.per_sample[start:stop], result.counted[start:stop], keep)
        if binary is None:
            stream.write(lines.decode())
        else:
            binary.write(lines)


_ASCII = "".join(map(chr, range(128)))


def _binary(stream, *, ascii_only: bool):
    """The binary stream under text `stream` if writing our UTF-8 bytes there is writing their text to
    `stream`, else ``None``: no newline translation, and an encoding that writes ASCII as ASCII
    (`ascii_only` bytes: NDJSON) or UTF-8 itself (CSV, whose kept text may be any)."""
    binary, encoding = getattr(stream, "buffer", None), getattr(stream, "encoding", None)
    if binary is None or encoding is None or os.linesep != "\n":
        return None
    try:
        if not ascii_only:
            return binary if codecs.lookup(encoding).name == "utf-8" else None
        return binary if _ASCII.encode(encoding) == _ASCII.encode("ascii") else None
    except LookupError:
        return None


def render_table(result: LossResult, console, *, precision: int = 6, per_sample: bool = True) -> None:
    """Per-sample rows (the first :data:`TABLE_ROWS`) and a summary block.

    Every table goes through :func:`_print_table`, which never cuts a number: its title and
    caption are lines of their own, and columns that do not fit the console are left out.
    """
    if per_sample and result.per_sample is not None:
        values = result.per_sample_words(precision, limit=TABLE_ROWS)
        rows = [
            [
                str(i + 1),
                loss,
                *(_shown(result.keep[n][i]) for n in result.keep),
            ]
            for i, loss in enumerate(values[:TABLE_ROWS])
        ]
        more = result.per_sample.size - TABLE_ROWS
        _print_table(
            console,
            f"cecli {result.options.loss}: per-sample loss",
            ["row", f"loss ({result.options.unit})", *map(printable, result.keep)],
            ["number", "number", *("text" for _ in result.keep)],
            rows,
            caption=f"… {more} more rows (-f json or --out for all)" if more > 0 else None,
        )
    part = result.partial  # the numbers themselves: the table shows inf where JSON writes null
    document = result.to_dict(per_sample=False)  # each group's and class's value, reduced as the total is
    if result.groups is not None:
        _breakdown_table(
            console,
            "by " + ", ".join(map(printable, result.input.by_columns)),
            [
                (", ".join(map(_shown, key.values())), summary)
                for (key, _), summary in zip(result.groups, document["by"], strict=True)
            ],
            precision,
        )
    if result.per_class is not None:
        _breakdown_table(
            console,
            "per true class",
            [(name, summary) for (name, _, _), summary in zip(result.per_class, document["per_class"], strict=True)],
            precision,
            "class",
        )
    if result.top is not None and result.top.rows:
        _top_table(console, result, precision)
    if result.histogram is not None and result.partial.count:
        _histogram_table(console, result)
    rows = [
        ("loss", result.options.loss),
        ("value", _number(result.value, precision)),
        *_interval_rows(document, precision),
        ("reduction", result.options.reduction),
        ("unit", result.options.unit),
        ("count", str(part.count)),
        ("mean", _number(part.mean, precision)),
        ("sum", _number(part.sum, precision)),
        ("weight sum", _number(part.weight_sum, precision)),
        ("denominator", _number(result.denominator, precision)),
        ("min", _number(part.min if part.count else None, precision)),
        ("max", _number(part.max if part.count else None, precision)),
        *([("accuracy", _number(result.accuracy, precision))] if result.accuracy is not None else []),
        *([("perplexity", _number(result.perplexity, precision))] if result.perplexity is not None else []),
        ("input", f"{printable(result.input.path or ', '.join(result.input.paths))} ({result.input.format})"),
    ]
    # The values are numbers and words, then the input's path, the one cell long enough to fold.
    _print_table(console, "summary", ["", ""], ["text", "value"], [list(row) for row in rows], header=False)


def _interval_rows(document: dict, precision: int) -> list[tuple[str, str]]:
    """``stderr`` and the ``--ci`` interval as summary lines: ``95% CI  [low, high] (normal)``."""
    ci = document.get("ci")
    if ci is None:
        return []
    method = (
        ci["method"] if ci["resamples"] is None else f"{ci['method']}, {ci['resamples']} resamples, seed {ci['seed']}"
    )
    interval = f"[{_number(ci['low'], precision)}, {_number(ci['high'], precision)}] ({method})"
    return [("stderr", _number(document["stderr"], precision)), (f"{_percent(ci['level'])} CI", interval)]


def _percent(level: float) -> str:
    """0.95 as ``95%``, 0.999 as ``99.9%``: the shortest text of the percentage."""
    return f"{round(level * 100, 10):g}%"


_TEXT_WIDTH = 12  # a text column (kept values, group names) may fold down to this width before columns are left out


# How each kind of column is laid out: (justify, no_wrap). Numbers and bars are never cut or
# wrapped; text (kept values, group names, the input's path) folds onto more lines.
_KINDS = {"number": ("right", True), "bar": ("left", True), "text": ("left", False), "value": ("right", False)}


def _print_table(
    console,
    title: str,
    headings: list[str],
    kinds: list[str],
    rows: list[list[str]],
    *,
    caption: str | None = None,
    header: bool = True,
) -> None:
    """Print a table whose numbers are never cut or wrapped.

    When the table does not fit the console even with its text columns folded to
    :data:`_TEXT_WIDTH`, columns are left out from the right (the first two always stay) and
    a line names them. The title and caption are lines of their own, wrapped to the console,
    not to the (often narrower) table.
    """
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    natural = [max([cell_len(h) if header else 0, *(cell_len(row[i]) for row in rows)]) for i, h in enumerate(headings)]
    needed = [w if _KINDS[kind][1] else min(w, _TEXT_WIDTH) for w, kind in zip(natural, kinds, strict=True)]
    shown = len(headings)
    while shown > 2 and sum(needed[:shown]) + 3 * shown + 1 > console.width:  # padding 2 and a rule 1 a column
        shown -= 1
    table = Table(box=box.SIMPLE_HEAD, show_header=header)
    for heading, kind in zip(headings[:shown], kinds[:shown], strict=True):
        justify, no_wrap = _KINDS[kind]
        table.add_column(Text(heading), justify=justify, no_wrap=no_wrap, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row[:shown]))
    console.print(Text(title, style="bold"))
    console.print(table)
    notes = [f"({', '.join(headings[shown:])} left out at this width; -f json has them)"] if headings[shown:] else []
    notes += [caption] if caption else []
    for note in notes:
        console.print(Text(note))
    if notes:
        console.print()


def _breakdown_table(console, title: str, rows: list, precision: int, heading: str = "group") -> None:
    names = ("value", "mean", "sum", "min", "max")  # the JSON keys of each row, as in the summary
    names += ("perplexity",) if rows and "perplexity" in rows[0][1] else ()
    cells = [
        [printable(label), str(summary["count"]), *(_number(summary[name], precision) for name in names)]
        for label, summary in rows
    ]
    headings = [heading, "count", *names]
    if rows and "ci" in rows[0][1]:
        # stderr and the interval's ends right after the value they belong to (the level and method are in the
        # summary): a narrow console leaves out the columns on the right first
        level = _percent(rows[0][1]["ci"]["level"])
        headings[3:3] = ["stderr", f"{level} low", f"{level} high"]
        for cell, (_, summary) in zip(cells, rows, strict=True):
            cell[3:3] = [_number(summary[key], precision) for key in ("stderr",)] + [
                _number(summary["ci"][end], precision) for end in ("low", "high")
            ]
    _print_table(console, title, headings, ["text", *["number"] * (len(headings) - 1)], cells)


def _top_table(console, result: LossResult, precision: int) -> None:
    names = list(result.input.keep_columns)
    cells = [[str(row), _number(loss, precision), *(_shown(v) for v in kept)] for loss, row, kept in result.top.rows]
    _print_table(
        console,
        f"{len(result.top.rows)} largest losses",
        ["row", f"loss ({result.options.unit})", *map(printable, names)],
        ["number", "number", *("text" for _ in names)],
        cells,
    )


def _histogram_table(console, result: LossResult, width: int = 30) -> None:
    from .numerics.reduce import HISTOGRAM_EDGES

    counts = result.histogram.counts
    used = [i for i, c in enumerate(counts) if c]
    nan = result.histogram.nan
    bins = range(used[0], used[-1] + 1) if used else range(0)
    cells = [[f"{HISTOGRAM_EDGES[i]:.3g}", f"{HISTOGRAM_EDGES[i + 1]:.3g}", str(counts[i])] for i in bins]
    if nan:  # NaN has no bin; it is counted on its own row so that the counts add up
        cells.append(["NaN", "", str(nan)])
    # The bars take what the console leaves, up to `width`: a bar is never cut, only shorter.
    room = console.width - sum(max(len(row[k]) for row in [["from", "to", "count"], *cells]) for k in range(3)) - 13
    width = max(1, min(width, room))
    peak = max(*counts, nan)
    for row, count in zip(cells, [*(counts[i] for i in bins), *([nan] if nan else [])], strict=True):
        row.append("█" * max(1 if count else 0, round(width * count / peak)))
    _print_table(
        console,
        f"distribution of per-sample loss ({result.options.unit})",
        ["from", "to", "count", ""],
        ["number", "number", "number", "bar"],
        cells,
    )


def render_compare_json(comparison, stream) -> None:
    """The JSON document of ``cecli compare`` (``a``, ``b``, the paired statistics)."""
    import json

    stream.write(json.dumps(comparison.to_dict(), allow_nan=False, default=str) + "\n")


def render_compare_table(comparison, console, *, precision: int = 6) -> None:
    """A, B and the difference with its interval (per ``--by`` group too), then the verdict line."""
    document = comparison.to_dict()
    percent = f"{document['ci']['level'] * 100:g}%"
    unit = comparison.a.options.unit

    def paired_cells(entry: dict) -> list[str]:
        ci = entry["ci"]
        return [
            _number(entry["difference"], precision),
            f"[{_number(ci['low'], precision)}, {_number(ci['high'], precision)}]",
            _p_value(entry["p_value"]),
        ]

    headings = ["", f"A ({unit})", f"B ({unit})", "B − A", f"{percent} interval", "p-value"]
    kinds = ["text", "number", "number", "number", "number", "number"]
    rows = [
        [
            "all",
            _number(document["a"]["value"], precision),
            _number(document["b"]["value"], precision),
            *paired_cells(document),
        ]
    ]
    if comparison.groups is not None:
        for (key, _), entry, part_a, part_b in zip(
            comparison.groups, document["groups"], document["a"]["by"], document["b"]["by"], strict=True
        ):
            label = ", ".join(map(_shown, key.values()))
            rows.append([label, _number(part_a["value"], precision), _number(part_b["value"], precision)])
            rows[-1] += paired_cells(entry)
    test = f"{comparison.test} test" + (
        f": {comparison.resamples} resamples, seed {comparison.seed}" if comparison.resamples else ""
    )
    _print_table(console, f"cecli compare {comparison.a.options.loss}: B − A ({test})", headings, kinds, rows)
    from rich.text import Text

    console.print(
        Text(f"rows where B's loss is lower: {comparison.wins}, equal: {comparison.ties}, higher: {comparison.losses}")
    )
    console.print(Text(verdict_line(comparison)))


def verdict_line(comparison) -> str:
    """One sentence: is B better than A, at the interval's level?"""
    verdict = comparison.verdict
    level = f"{comparison.level * 100:g}%"
    if verdict == "undefined":
        return "verdict: undefined (a loss is infinite or NaN, or too few rows)"
    if verdict == "no significant difference":
        return f"verdict: no significant difference at {level} (p = {comparison.p_value:.3g})"
    return f"verdict: B is significantly {verdict} than A at {level} (p = {comparison.p_value:.3g})"
