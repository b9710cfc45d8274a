"""The options of the command line, declared once: the choice types (built from the lists of
:mod:`cecli.options`), each option's flags, help text and panel, and the lists of shared options."""

import inspect
import os
from enum import StrEnum
from typing import Annotated

import typer

from cecli.choices import BASES, COLORS, ENGINES, FORMATS, LIKES, OUTPUT_FORMATS, REDUCTIONS

from .values import _read_settings


def _choices(name: str, values) -> type[StrEnum]:
    """A Typer choice type whose values are a choice list of :mod:`cecli.options` (written only there)."""
    return StrEnum(name, {value: value for value in values})


OutputFormat = _choices("OutputFormat", OUTPUT_FORMATS)


InputFormat = _choices("InputFormat", FORMATS)


Reduction = _choices("Reduction", REDUCTIONS)


Base = _choices("Base", BASES)


Framework = _choices("Framework", LIKES)


Color = _choices("Color", COLORS)


Engine = _choices("Engine", ENGINES)


_IO = "Input"


_OUT = "Output"


_MATH = "Loss"


def _complete_columns(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of -y, -p, -w, --keep and --by: the column names of the first INPUT given.

    The command line comes from the shell's variables (``COMP_WORDS`` for bash, Typer's
    ``_TYPER_COMPLETE_ARGS`` for zsh and fish): Click's resilient parsing leaves INPUT out of
    ``ctx.params`` there. A comma-separated list completes its last item. Nothing when there is
    no INPUT yet, it is stdin, or it cannot be read: completion never prints an error.
    """
    import shlex

    line = os.environ.get("_TYPER_COMPLETE_ARGS") or os.environ.get("COMP_WORDS") or ""
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote
        words = line.split()
    takes_value = {name for param in ctx.command.params if not getattr(param, "is_flag", True) for name in param.opts}
    paths, rest = [], iter(words[words.index(ctx.info_name) + 1 :] if ctx.info_name in words else [])
    for word in rest:
        if word in takes_value:
            next(rest, None)
        elif not word.startswith("-") and word != incomplete:
            paths.append(word)
    if not paths:
        return []
    done, comma, part = incomplete.rpartition(",")
    try:
        from cecli.io.expand import expand_sources
        from cecli.io.sources import open_input

        source = open_input(expand_sources(paths[:1])[0], _read_settings({}))
        try:
            names = [column.name for column in source.columns]
        finally:
            source.close()
    except Exception:  # an unreadable input: no suggestions, and no message in the middle of a command line
        return []
    return [done + comma + name for name in names if name.startswith(part)]


Input = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="INPUT",
        help="Files, folders, globs or URLs, or - for stdin (the default when piped). Several inputs are pooled:"
        " their rows are read, in order, as one dataset.",
        show_default=False,
    ),
]


LabelCols = Annotated[
    str | None,
    typer.Option(
        "-y",
        "--y-true",
        autocompletion=_complete_columns,
        help="Label column(s): name, a,b,c, glob 'y_*', position 2 or range 2-5.",
        rich_help_panel=_IO,
    ),
]


PredCols = Annotated[
    str | None,
    typer.Option(
        "-p",
        "--y-pred",
        autocompletion=_complete_columns,
        help="Prediction column(s), same syntax as -y.",
        rich_help_panel=_IO,
    ),
]


LabelsFile = Annotated[
    str | None,
    typer.Option("--labels", help="Labels from a second file, aligned by row.", rich_help_panel=_IO),
]


WeightCol = Annotated[
    str | None,
    typer.Option(
        "-w", "--weight-col", autocompletion=_complete_columns, help="Sample weight column.", rich_help_panel=_IO
    ),
]


Keep = Annotated[
    str | None,
    typer.Option(
        "--keep",
        autocompletion=_complete_columns,
        help="Columns (an id) to pass through to per-sample output.",
        rich_help_panel=_IO,
    ),
]


InputFormatOpt = Annotated[
    InputFormat | None,
    typer.Option(
        "--input-format",
        metavar="FORMAT",  # the choices, spelled out in the help, no longer fit a 60-column line
        help=f"Force the format, one of {', '.join(FORMATS)} (else from extension or content).",
        rich_help_panel=_IO,
    ),
]


Delimiter = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="CSV field delimiter (default from extension): one character, or tab (also '\\t').",
        rich_help_panel=_IO,
    ),
]


Header = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="CSV has a header row (default: yes, unless the first row is all numbers).",
        show_default=False,
        rich_help_panel=_IO,
    ),
]


MAX_BATCH_ROWS = 10_000_000  # a batch's arrays stay in memory; pyarrow's JSON block (64 bytes a row) below 2 GiB


BatchRows = Annotated[
    int,
    typer.Option(
        "--batch-rows",
        min=1,
        max=MAX_BATCH_ROWS,
        help="Rows per batch, fewer for wide rows.",
        rich_help_panel=_IO,
    ),
]


ReductionOpt = Annotated[Reduction, typer.Option("--reduction", help="How to reduce.", rich_help_panel=_MATH)]


BaseOpt = Annotated[
    Base,
    typer.Option("--base", help="e (nats, default), 2 (bits), 10 (bans).", show_default=False, rich_help_panel=_MATH),
]


FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "-f",
        "--format",
        help="Output format (default: table on a terminal, else json).",
        show_default=False,
        rich_help_panel=_OUT,
    ),
]


Out = Annotated[
    str | None,
    typer.Option("--out", help="Per-sample losses to .csv, .parquet, ...", rich_help_panel=_OUT),
]


PlotOpt = Annotated[
    str | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        help="Plot losses (and group means) to .png/.svg.",
        rich_help_panel=_OUT,
    ),
]


SummaryOnly = Annotated[bool, typer.Option("--summary-only", help="Leave out per-sample values.", rich_help_panel=_OUT)]


FailAbove = Annotated[
    float | None,
    typer.Option("--fail-above", metavar="X", help="Exit 1 if the reduced loss is above X.", rich_help_panel=_OUT),
]


FailBelow = Annotated[
    float | None,
    typer.Option("--fail-below", metavar="X", help="Exit 1 if the reduced loss is below X.", rich_help_panel=_OUT),
]


ValueOnly = Annotated[
    bool,
    typer.Option(
        "--value-only", help="Print only the reduced number (skips accuracy and histogram).", rich_help_panel=_OUT
    ),
]


Precision = Annotated[
    int | None,
    typer.Option("--precision", min=0, max=17, help="Decimals in human formats (table: 6).", rich_help_panel=_OUT),
]


Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No warnings on stderr.", rich_help_panel=_OUT)]


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine", help="local streaming, or dask (needs the extra: pip install 'cecli[dask]').", rich_help_panel=_IO
    ),
]


Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Dask scheduler address (else $DASK_SCHEDULER_ADDRESS).",
        rich_help_panel=_IO,
    ),
]


SchedulerFile = Annotated[
    str | None,
    typer.Option(
        "--scheduler-file",
        metavar="PATH",
        help="Dask scheduler file (dask scheduler --scheduler-file).",
        rich_help_panel=_IO,
    ),
]


WaitForWorkers = Annotated[
    float | None,
    typer.Option(
        "--wait-for-workers",
        min=0,
        metavar="SECONDS",
        help="Dask: how long to wait for a first worker, or for one to come back (default 60).",
        rich_help_panel=_IO,
        show_default=False,
    ),
]


ColorOpt = Annotated[Color, typer.Option("--color", help="Colour in the table.", rich_help_panel=_OUT)]


By = Annotated[
    str | None,
    typer.Option(
        "--by",
        autocompletion=_complete_columns,
        help="Summarise per group of these columns.",
        rich_help_panel=_OUT,
    ),
]


Top = Annotated[
    int, typer.Option("--top", min=0, metavar="K", help="List the K largest per-sample losses.", rich_help_panel=_OUT)
]


PerClass = Annotated[
    bool, typer.Option("--per-class", help="Count and mean loss per true class.", rich_help_panel=_OUT)
]


Like = Annotated[
    Framework | None,
    typer.Option(
        "--like",
        help="Give the number this library gives. keras: clip 1e-7, mean divides by the row count, class"
        " weights become sample weights; torch: no clipping (bce clamps each log at -100), weighted bce mean"
        " divides by the row count; sklearn: clip 2.2e-16, rows not renormalised.",
        rich_help_panel=_MATH,
        show_default=False,
    ),
]


FromLogits = Annotated[
    bool, typer.Option("--from-logits", help="Predictions are raw scores (logits).", rich_help_panel=_MATH)
]


Eps = Annotated[
    float | None,
    typer.Option("--eps", help="Clip probabilities to [eps, 1-eps]; 0 disables (default 1e-7).", rich_help_panel=_MATH),
]


Smoothing = Annotated[
    float, typer.Option("--label-smoothing", metavar="S", help="Label smoothing S, in [0, 1].", rich_help_panel=_MATH)
]


PosWeight = Annotated[
    str | None,
    typer.Option("--pos-weight", help="Positive-term weight: W, or one per label.", rich_help_panel=_MATH),
]


ClassWeights = Annotated[
    str | None, typer.Option("--class-weights", help="One weight per class: w0,w1,...", rich_help_panel=_MATH)
]


IgnoreIndex = Annotated[
    int | None, typer.Option("--ignore-index", help="Rows with this label do not count.", rich_help_panel=_MATH)
]


Temperature = Annotated[
    float,
    typer.Option("--temperature", metavar="T", help="Divide scores by T before the softmax.", rich_help_panel=_MATH),
]


FocalGamma = Annotated[
    float | None,
    typer.Option(
        "--focal-gamma",
        metavar="G",
        help="Focal loss, G >= 0.",
        rich_help_panel=_MATH,
    ),
]
FocalAlpha = Annotated[
    float | None,
    typer.Option("--focal-alpha", metavar="A", help="Focal alpha, in [0, 1].", rich_help_panel=_MATH),
]
GceQ = Annotated[
    float | None,
    typer.Option("--gce-q", metavar="Q", help="Generalized cross-entropy, Q in (0, 1].", rich_help_panel=_MATH),
]
ClassBalancing = Annotated[
    bool,
    typer.Option("--class-balancing", help="Focal: alpha_t weights.", rich_help_panel=_MATH),
]


CiLevel = Annotated[
    float | None,
    typer.Option(
        "--ci",
        metavar="LEVEL",
        help="Add stderr and a LEVEL% interval (e.g. 95).",
        rich_help_panel=_OUT,
        show_default=False,
    ),
]


Bootstrap = Annotated[
    int | None,
    typer.Option(
        "--bootstrap",
        metavar="N",
        help="Interval from N bootstrap resamples.",
        rich_help_panel=_OUT,
        show_default=False,
    ),
]


Seed = Annotated[
    int | None,
    typer.Option(
        "--seed",
        metavar="S",
        help="Key of the bootstrap's draws (default 0).",
        rich_help_panel=_OUT,
        show_default=False,
    ),
]


def _parameter(name: str, annotation, default) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_LABEL_OPTIONS = [_parameter("y", LabelCols, None), _parameter("labels", LabelsFile, None)]


_COMMON_OPTIONS = [
    _parameter("p", PredCols, None),
    _parameter("weight_col", WeightCol, None),
    _parameter("keep", Keep, None),
    _parameter("by", By, None),
    _parameter("top", Top, 0),
    _parameter("input_format", InputFormatOpt, None),
    _parameter("delimiter", Delimiter, None),
    _parameter("header", Header, None),
    _parameter("batch_rows", BatchRows, 1 << 16),
    _parameter("engine", EngineOpt, Engine("local")),
    _parameter("scheduler", Scheduler, None),
    _parameter("scheduler_file", SchedulerFile, None),
    _parameter("wait_for_workers", WaitForWorkers, None),
    _parameter("reduction", ReductionOpt, Reduction("mean")),
    _parameter("base", BaseOpt, Base("e")),
    _parameter("format", FormatOpt, None),
    _parameter("out", Out, None),
    _parameter("plot", PlotOpt, None),
    _parameter("summary_only", SummaryOnly, False),
    _parameter("fail_above", FailAbove, None),
    _parameter("fail_below", FailBelow, None),
    _parameter("ci", CiLevel, None),
    _parameter("bootstrap", Bootstrap, None),
    _parameter("seed", Seed, None),
    _parameter("value_only", ValueOnly, False),
    _parameter("precision", Precision, None),
    _parameter("quiet", Quiet, False),
    _parameter("color", ColorOpt, Color("auto")),
]


# The options only some losses take (the `options` of each registry entry), as the CLI declares them.
_LOSS_PARAMETERS = {
    "like": (Like, None),
    "from_logits": (FromLogits, False),
    "eps": (Eps, None),
    "pos_weight": (PosWeight, None),
    "label_smoothing": (Smoothing, 0.0),
    "class_weights": (ClassWeights, None),
    "ignore_index": (IgnoreIndex, None),
    "temperature": (Temperature, 1.0),
    "focal_gamma": (FocalGamma, None),
    "focal_alpha": (FocalAlpha, None),
    "class_balancing": (ClassBalancing, False),
    "gce_q": (GceQ, None),
    "per_class": (PerClass, False),
}
