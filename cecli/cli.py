"""The command line: Typer commands that parse options, call ``compute()`` and render.

This is the only module that imports typer, and nothing imports it. Every failure is
mapped to one stderr line and an exit code in one place, :func:`_report`, called for
what happens inside a command (:func:`_guarded`) and around it (:class:`_Group`);
option combinations are checked against one table, :data:`cecli.plan.CONFLICTS`. Heavy modules
(pyarrow, rich) load lazily.
"""

import errno
import inspect
import io
import os
import signal
import sys
from enum import StrEnum
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .errors import CecliError, ExitCode, OptionError, StdoutError, printable
from .losses import REGISTRY, Loss
from .options import BASES, COLORS, ENGINES, FORMATS, LIKES, OUTPUT_FORMATS, REDUCTIONS
from .plan import checked


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


def _say(kind: str, text: str) -> None:
    """Write ``cecli: KIND: TEXT`` on stderr, with control characters in `text` escaped.

    `text` carries data (column names, paths, values), which must not reach a terminal as
    escape sequences. A stderr that cannot be written (closed, full) is passed over: the
    exit status never depends on whether its message could be written.
    """
    line = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    try:
        sys.stderr.write(f"cecli: {kind}: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # full, closed, or None (fd 2 closed in a test harness)
        pass


def _report(failure: BaseException) -> int:
    """The one place that maps a failure to its stderr line and exit code (README, "Exit codes and errors").

    - ``SystemExit``: an outcome already decided (a failed gate: 1; SIGTERM: 128 + 15); passed on.
    - Ctrl-C (``KeyboardInterrupt``, Click's ``Abort``): "interrupted", 130.
    - stdout closed by its reader (EPIPE): nothing on stderr, 141, and later writes go to /dev/null.
    - :class:`CecliError`: its own line and code (2 usage, 3 bad input, 3 stdout cannot be written).
    - Click's usage errors (unknown option, bad option value): one line, 2.
    - anything else is a bug: the traceback, "internal error", 4.
    """
    if isinstance(failure, SystemExit):
        code = failure.code
        return code if isinstance(code, int) else ExitCode.OK if code is None else ExitCode.INTERNAL
    if isinstance(failure, (KeyboardInterrupt, typer.Abort)):
        _say("error", "interrupted")
        return ExitCode.INTERRUPTED
    if isinstance(failure, BrokenPipeError) or isinstance(failure, StdoutError) and failure.errno == errno.EPIPE:
        _silence_stdout()
        return ExitCode.BROKEN_PIPE
    if isinstance(failure, StdoutError):
        _silence_stdout()  # or the final flush would fail, and be reported, again
    if isinstance(failure, CecliError):
        if os.environ.get("CECLI_DEBUG") == "1":
            _print_traceback(failure)
        _say("error", str(failure))
        return failure.exit_code
    if isinstance(failure, Exception) and hasattr(failure, "format_message") and hasattr(failure, "exit_code"):
        context = getattr(failure, "ctx", None)
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        _say("error", failure.format_message() + where)
        return ExitCode.USAGE
    _print_traceback(failure)
    _say("internal error", "this is a bug in cecli; please report it with the traceback above")
    return ExitCode.INTERNAL


def _print_traceback(failure: BaseException) -> None:
    import traceback

    try:
        traceback.print_exception(failure, file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # stderr closed or full: the exit code still tells
        pass


class _Formatter(typer.Context.formatter_class):
    """Click's help formatter, wrapping only at spaces: Click's breaks after hyphens, which cut
    ``--per-class`` in two at a line end. Words longer than a line stay whole."""

    @staticmethod
    def _wrap(text: str, width: int) -> list[str]:
        import textwrap

        lines = []
        for paragraph in text.split("\n\n"):
            if paragraph.startswith("\b\n"):  # Click's mark for a paragraph kept as written
                lines += paragraph[2:].splitlines()
            else:
                words = " ".join(paragraph.split())
                lines += textwrap.wrap(words, max(width, 10), break_on_hyphens=False, break_long_words=False)
            lines.append("")
        return lines[:-1]

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        for line in self._wrap(text, self.width - self.current_indent):
            self.write(f"{indent}{line}\n" if line else "\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        first_width = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        indent = " " * self.current_indent
        for first, second in rows:
            self.write(f"{indent}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_width - col_spacing:
                self.write(" " * (first_width - len(first)))
            else:  # a long name has its description on the next line, never cut
                self.write("\n" + " " * (first_width + self.current_indent))
            lines = self._wrap(second, self.width - first_width - self.current_indent) or [""]
            self.write(f"{lines[0]}\n")
            for line in lines[1:]:
                self.write(f"{indent}{' ' * first_width}{line}\n" if line else "\n")


class _Context(typer.Context):
    formatter_class = _Formatter


class _Group(TyperGroup):
    """Runs the app without Click's standalone handling, so that :func:`_report` maps every outcome.

    That covers what happens outside a command too: usage errors, ``--version`` and ``--help``
    (whose output can meet a closed pipe or a full disk), and the final flush of stdout.
    """

    def parse_args(self, ctx, args):
        if not args and not ctx.resilient_parsing:  # a bare `cecli`: a usage error like any other, on stderr
            commands = ", ".join(self.list_commands(ctx))
            _say("error", f"missing command, one of: {commands} (see 'cecli --help')")
            raise typer.Exit(ExitCode.USAGE)
        _convert_plainly(self.get_params(ctx))  # --version, --help
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            try:
                code = super().main(args, prog_name or "cecli", complete_var, standalone_mode=False, **extra)
            except SystemExit as exit_:  # a command's outcome, already reported by _guarded
                code = exit_.code
            else:
                if code == ExitCode.INTERRUPTED:  # Typer's own mapping of Ctrl-C outside a command, unreported
                    _say("error", "interrupted")
            sys.stdout.flush()  # the last buffered output can still fail: a closed pipe, a full disk
        except BaseException as failure:
            code = _report(failure)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)

    context_class = _Context  # the app's own help, as the commands'

    def _main_shell_completion(self, *args, **kwargs) -> None:
        """Shell completion for bash, zsh and fish (README, "Options") when ``_CECLI_COMPLETE`` is set.

        Typer registers its shells only along with ``--install-completion``, which cecli leaves
        out; without them it answered "Shell bash not supported". Both Typer's order
        (``source_bash``) and Click's (``bash_source``) are understood.
        """
        value = os.environ.get("_CECLI_COMPLETE")
        if value:
            from typer._completion_classes import completion_init

            completion_init()
            shell, _, action = value.partition("_")
            if shell in ("bash", "zsh", "fish") and action in ("source", "complete"):  # Click's order, bash_source
                os.environ["_CECLI_COMPLETE"] = f"{action}_{shell}"
        super()._main_shell_completion(*args, **kwargs)


# Click's plain help, not rich's: rich boxes give the descriptions a 21-character column at
# 80 columns and cut long flag names at 60; Click's formatter never cuts a name (a long one
# puts its description on the next line), caps the width at 80, prints text literally
# (``[dask]``) and needs no rich import.
_EXIT_CODES = (
    "Exit codes: 0 ok; 1 a --fail-above or --fail-below gate failed (only then); 2 usage error;"
    " 3 bad or unreadable input, or output that cannot be written; 4 internal error (a bug);"
    " 130 interrupted; 141 stdout closed early; 143 terminated."
)


class _Help(TyperCommand):
    """A command whose help lists its options under their panels (Input, Loss, Output) in Click's plain layout."""

    context_class = _Context

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list] = {"Arguments": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                panel = "Arguments" if param.param_type_name == "argument" else param.rich_help_panel or "Options"
                sections.setdefault(panel, []).append(record)
        for panel, records in sections.items():
            if records:
                with formatter.section(panel):
                    # Names up to 30 characters share a line with their description; below 80
                    # columns a third of the width, so that descriptions keep room to read.
                    formatter.write_dl(records, col_max=30 if formatter.width >= 78 else formatter.width // 3)


class _Convert:
    """Converts one parameter's command-line text as Click does, with Click's messages.

    Typer 0.29 converts every value through a pydantic ``TypeAdapter`` that it builds on first
    use: importing pydantic and building an adapter per option costs about 55 ms a run, a third
    of a one-liner's time. cecli's parameters are str, int (with an optional range), float,
    enum and flag values, which need no pydantic, so :class:`_Command` hands them to this class
    instead; the messages are Click's (what Typer 0.28, which converts with Click, prints), so
    an error reads the same under either Typer.
    """

    def __init__(self, kind: type, low: float | None, high: float | None) -> None:
        self.kind, self.low, self.high = kind, low, high

    @classmethod
    def of(cls, param) -> "_Convert | None":
        """The converter for ``param``, or None to leave a type cecli does not use to Typer."""
        described = getattr(param, "type_descriptor", None)
        if described is None:
            return None
        kind = described.annotation
        if getattr(kind, "__origin__", None) is list and kind.__args__ == (str,):
            kind = str
        if not (kind in (str, int, float, bool) or (isinstance(kind, type) and issubclass(kind, StrEnum))):
            return None
        return cls(kind, described.parameter_info.min, described.parameter_info.max)

    def coerce(self, value, param, ctx):  # the signature Typer 0.29 calls
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        if isinstance(value, list | tuple):
            return [self.one(item, param, ctx) for item in value]
        return self.one(value, param, ctx)

    def one(self, value, param, ctx):
        kind = self.kind
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        if issubclass(kind, StrEnum):
            for choice in kind:
                if value == choice.value:
                    return choice
            choices = ", ".join(repr(choice.value) for choice in kind)
            raise typer.BadParameter(f"{value!r} is not one of {choices}.", ctx=ctx, param=param)
        if kind in (str, bool):  # text options, and --header/--no-header, which Click already made a bool
            return value
        ranged = self.low is not None or self.high is not None
        try:
            number = kind(value)
        except (TypeError, ValueError):
            name = kind.__name__ + (" range" if ranged else "")
            raise typer.BadParameter(f"{value!r} is not a valid {name}.", ctx=ctx, param=param) from None
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            if self.low is None:
                bounds = f"x<={self.high}"
            elif self.high is None:
                bounds = f"x>={self.low}"
            else:
                bounds = f"{self.low}<=x<={self.high}"
            raise typer.BadParameter(f"{number} is not in the range {bounds}.", ctx=ctx, param=param)
        return number


class _Command(_Help):
    """A command whose parameters are converted by :class:`_Convert` where Typer (0.29+) would use pydantic.

    Typer 0.29 asks each parameter's ``get_runtime_param()`` for its converter; Typer 0.28 has
    no such hook and converts with Click, which is as fast, so this class changes nothing there.
    """

    def parse_args(self, ctx, args):
        _convert_plainly(self.get_params(ctx))
        return super().parse_args(ctx, args)


def _convert_plainly(params) -> None:
    """Give each parameter a :class:`_Convert` through Typer 0.29's ``get_runtime_param`` hook."""
    for param in params:
        convert = _Convert.of(param) if hasattr(param, "get_runtime_param") else None
        if convert is not None:
            param.get_runtime_param = lambda convert=convert: convert


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    rich_markup_mode=None,
    epilog=_EXIT_CODES,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Cross-entropy losses of predictions in CSV, JSON or Parquet files. See `cecli COMMAND --help`.",
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cecli {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Cross-entropy losses of predictions in CSV, JSON or Parquet files."""


# --------------------------------------------------------------------------- shared options

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
        from .io.expand import expand_sources
        from .io.sources import open_input

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
    typer.Option("--labels", help="Read labels from this second file, aligned by row.", rich_help_panel=_IO),
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
        help="Columns to pass through to per-sample output (e.g. an id).",
        rich_help_panel=_IO,
    ),
]
InputFormatOpt = Annotated[
    InputFormat | None,
    typer.Option("--input-format", help="Force the input format instead of extension/sniffing.", rich_help_panel=_IO),
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
    typer.Option("--batch-rows", min=1, max=MAX_BATCH_ROWS, help="Rows per batch when streaming.", rich_help_panel=_IO),
]
ReductionOpt = Annotated[Reduction, typer.Option("--reduction", help="How to reduce.", rich_help_panel=_MATH)]
BaseOpt = Annotated[
    Base, typer.Option("--base", help="Log base: e (nats), 2 (bits), 10 (bans).", rich_help_panel=_MATH)
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
    typer.Option("--out", help="Write per-sample losses to .csv/.parquet/.ndjson (atomically).", rich_help_panel=_OUT),
]
PlotOpt = Annotated[
    str | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        help="Draw the loss histogram (and --by / --per-class means) to FILE.png or FILE.svg (needs matplotlib).",
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
        help="Dask scheduler address (else DASK_SCHEDULER_ADDRESS, else a local cluster).",
        rich_help_panel=_IO,
    ),
]
SchedulerFile = Annotated[
    str | None,
    typer.Option(
        "--scheduler-file",
        metavar="PATH",
        help="Dask scheduler file (as written by dask scheduler --scheduler-file PATH).",
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
        help="Summarise per group of these columns (e.g. a split).",
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
    typer.Option(
        "--pos-weight", help="Weight of the positive term: W, or one per label column.", rich_help_panel=_MATH
    ),
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
    "per_class": (PerClass, False),
}


def _register(loss: Loss) -> None:
    """Register ``cecli LOSS`` from its registry entry: its help, its own options, then the shared ones."""
    own = [_parameter(name, *_LOSS_PARAMETERS[name]) for name in loss.options]
    shared = (_LABEL_OPTIONS if loss.has_labels else []) + _COMMON_OPTIONS
    parameters = [_parameter("input", Input, None), *own, *shared]

    def command(**values):
        _guarded(loss.name, values)

    command.__name__ = loss.name
    command.__doc__ = loss.help
    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    app.command(name=loss.name, cls=_Command, epilog=_EXIT_CODES)(command)


for _loss in REGISTRY.values():
    _register(_loss)


@app.command("columns", cls=_Command, epilog=_EXIT_CODES)
def columns(
    input: Input = None,
    input_format: InputFormatOpt = None,
    delimiter: Delimiter = None,
    header: Header = None,
):
    """List the position, name and type of every column of INPUT.

    Example: cecli columns sample_data/seed-sparse.csv
    """
    _guarded("columns", {"input": input, "input_format": input_format, "delimiter": delimiter, "header": header})


@app.command("schema", cls=_Command, epilog=_EXIT_CODES)
def schema():
    """Print the JSON Schema (draft 2020-12) of the document that -f json prints.

    Example: cecli schema > cecli-output.schema.json
    """
    from importlib.resources import files

    try:
        sys.stdout.write((files(__package__) / "schema.json").read_text(encoding="utf-8"))
    except BaseException as failure:  # as in _guarded: a closed pipe or a full disk is mapped by _report
        sys.exit(_report(failure))


# --------------------------------------------------------------------------- running


def _guarded(loss: str, values: dict) -> None:
    """Run a command; map every outcome to one stderr line and an exit code (:func:`_report`).

    Inside the command, so that Click never sees the failure: it would turn an ``EPIPE``
    into exit 1, the gate's code.
    """
    try:
        _list_columns(values) if loss == "columns" else _score(loss, values)
    except BaseException as failure:
        sys.exit(_report(failure))


def _silence_stdout() -> None:
    """Discard what is still buffered for stdout, and later writes: it cannot be delivered."""
    raw = getattr(getattr(sys.stdout, "buffer", None), "raw", None)
    if isinstance(raw, _Stdout):
        raw.discard = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file descriptor (in-process test runners)
        pass


def _sources(paths: list[str] | None, labels: str | None = None) -> list[str]:
    """The inputs to read: `paths`, else stdin when it is piped (a terminal or a closed stdin is a usage error)."""
    if sys.stdin is None and "-" in [*(paths or []), labels]:  # `<&-`: Python has no stdin object at all
        raise OptionError("stdin (-) is closed", hint="pipe data into cecli, or give a file path")
    if paths:
        return paths
    if sys.stdin is None:
        raise OptionError("no INPUT given and stdin is closed", hint="give a file path, or pipe data into cecli")
    if sys.stdin.isatty():
        raise OptionError("no INPUT given and stdin is a terminal", hint="give a file path, or pipe data into cecli")
    return ["-"]


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise OptionError(f"{flag} needs numbers separated by commas; received {text!r}") from None


def _read_settings(values: dict):
    from .io.base import ReadSettings

    fmt = values.get("input_format")
    return ReadSettings(
        input_format=fmt.value if fmt else None,
        delimiter=values.get("delimiter"),
        header=values.get("header"),
        batch_rows=values.get("batch_rows") or 1 << 16,
    )


def _list_columns(values: dict) -> None:
    from .io.expand import expand_sources
    from .io.sources import open_input

    values = checked(values)
    source = open_input(expand_sources(_sources(values["input"]))[0], _read_settings(values))
    try:
        for warning in source.warnings:  # e.g. a header that looks like data
            _say("warning", warning)
        for column in source.describe_types():
            # A type names fields too (struct<name: ...>, a list's item), which come from the data.
            sys.stdout.write(f"{column.position}\t{printable(column.name)}\t{printable(column.type)}\n")
    finally:
        source.close()


_LOSS_OPTIONS = ("from_logits", "eps", "label_smoothing", "ignore_index", "temperature")


def _score(loss: str, values: dict) -> None:
    from .pipeline import compute
    from .result import check_gate, gate_failure

    fmt = values["format"].value if values["format"] else ("table" if sys.stdout.isatty() else "json")
    values = checked(values, fmt)
    reduction = values["reduction"].value
    check_gate(fail_above=values["fail_above"], fail_below=values["fail_below"])
    options = {name: values[name] for name in _LOSS_OPTIONS if name in values}
    if values.get("like"):
        options["like"] = values["like"].value
    if "pos_weight" in values:
        options["pos_weight"] = _floats(values["pos_weight"], "--pos-weight")
    if "class_weights" in values:
        options["class_weights"] = _floats(values["class_weights"], "--class-weights")
    per_sample = not values["summary_only"] and (not values["value_only"] or reduction == "none")
    if values["plot"] is not None:
        from .plot import check_plot_path

        check_plot_path(values["plot"])  # a bad name or a missing matplotlib stops before the work
    _tune_for_batches()
    with _progress_bar(enabled=not values["quiet"], colour=values["color"].value) as progress:
        result = compute(
            loss,
            _sources(values["input"], values.get("labels")),
            y=values.get("y"),
            p=values["p"],
            labels=values.get("labels"),
            weight=values["weight_col"],
            keep=values["keep"],
            by=values["by"],
            top=values["top"],
            per_class=values.get("per_class", False),
            extras=not values["value_only"] or values["plot"] is not None,  # else accuracy, histogram unused
            read=_read_settings(values),
            per_sample=per_sample,
            out=values["out"],
            reduction=reduction,
            base=values["base"].value,
            progress=progress,
            engine=values["engine"].value,
            scheduler=values["scheduler"],
            wait_for_workers=values["wait_for_workers"],
            scheduler_file=values["scheduler_file"],
            **options,
        )
    if not values["quiet"]:
        for warning in result.warnings:
            _say("warning", warning)
    _render(result, fmt, values, per_sample)
    if values["plot"] is not None:
        from .plot import write_plot

        write_plot(result, values["plot"])
    failure = gate_failure(result.value, fail_above=values["fail_above"], fail_below=values["fail_below"])
    if failure:
        _say("gate failed", f"{reduction} {result.options.loss} loss {failure}")
        sys.exit(ExitCode.GATE_FAILED)


def _tune_for_batches() -> None:
    """Process-wide settings for streaming batches; the CLI owns its process, the library does not.

    - The reader thread and the math hand the GIL back and forth around every NumPy and
      pyarrow call; with Python's default 5 ms switch interval a thread that wants it may
      wait that long, which made run times vary by half. 0.5 ms keeps both cores busy.
    - glibc hands allocations above a threshold (128 KiB at first) back to the kernel when
      they are freed, so each batch's arrays would be mapped and page-faulted in afresh,
      which doubles the time of the math. Raised thresholds keep them for the next batch,
      so memory stays bounded by the batch size.
    """
    sys.setswitchinterval(0.0005)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library with mallopt
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: 32 MiB, glibc's largest on 64-bit
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: keep up to 64 MiB of free heap


class _progress_bar:
    """A rich progress bar on stderr for long runs, only when stderr is a terminal.

    Yields a callback for ``compute(progress=...)``, or ``None`` when disabled. The bar
    appears after half a second, so one-liners never flash it.
    """

    def __init__(self, *, enabled: bool, colour: str = "auto") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.colour = colour
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        import time

        started = time.monotonic()

        def update(done: int, total: int | None) -> None:
            if self.bar is None:
                if time.monotonic() - started < 0.5:
                    return
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )

                self.bar = Progress(
                    TextColumn("cecli"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=Console(stderr=True, **_colour(self.colour)),
                    transient=True,
                )
                self.bar.start()
                self.task = self.bar.add_task("reading", total=total)
            self.bar.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.stop()
        return False


def _colour(setting: str) -> dict:
    """Console settings for ``--color`` (README, "Options"), for the table on stdout and the progress bar on stderr.

    ``never``, and ``auto`` with ``NO_COLOR`` set (non-empty), mean no escape code at all:
    rich's ``no_color`` alone drops colours but keeps bold and italics, so the colour system
    is switched off. ``always`` gives colour (standard ANSI) even in a pipe, whatever
    ``NO_COLOR`` or ``TERM`` say: the flag is the more specific request.
    """
    if setting == "always":
        return {"force_terminal": True, "color_system": "standard", "no_color": False}
    if setting == "never" or os.environ.get("NO_COLOR"):
        return {"color_system": None, "no_color": True}
    return {}


def _render(result, fmt: str, values: dict, per_sample: bool) -> None:
    from . import render

    out = sys.stdout
    if values["value_only"]:
        render.render_value(result, out, precision=values["precision"])
    elif fmt == "json":
        render.render_json(result, out, per_sample=per_sample)
    elif fmt in ("ndjson", "csv"):
        render.render_lines(result, out, fmt=fmt)
    else:
        from rich.console import Console

        console = Console(file=out, highlight=False, emoji=False, **_colour(values["color"].value))
        render.render_table(
            result, console, precision=6 if values["precision"] is None else values["precision"], per_sample=per_sample
        )
    out.flush()


class _WithoutPandas:
    """An import hook under which pandas looks not installed.

    pyarrow imports pandas, when it is installed, on its first ``pa.array()`` call (``--out``,
    JSON input): about 0.3 s and 40 MiB. cecli never uses pandas, so the CLI's process does
    without it; the library leaves imports alone.
    """

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"cecli runs without {name}", name=name)
        return None


def main() -> None:
    """Console-script entry point: SIGTERM unwinds like an error, a closed pipe ends quietly.

    Ctrl-C from here on raises ``KeyboardInterrupt``, so that ``finally`` blocks remove
    temporary files; :mod:`cecli.__main__` covers the imports before (one line and 130 too).
    When the command has finished (output written, files closed, temporary files removed),
    the process ends with ``os._exit`` after flushing stdout and stderr. Interpreter teardown
    would only free memory, about 30 ms after a large run; and after an interrupt a reader
    thread (ours, or pyarrow's read-ahead) may still block on a pipe while holding the
    stream's lock, which would hang it.
    """
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        _standard_streams()
        # cecli does no linear algebra, but OpenBLAS starts a thread per core when NumPy is
        # imported, and those threads spin, taking CPU from the reader and the math (about
        # 0.1 s of CPU a run). Set before NumPy loads; a user's own setting wins.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        sys.meta_path.insert(0, _WithoutPandas())
        app()  # _Group.main reports every outcome and raises SystemExit with its code
        code = ExitCode.OK
    except BaseException as failure:  # SystemExit, or Ctrl-C before the app took over
        code = _report(failure)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the outcome is decided; a late Ctrl-C must not change it
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # already reported by _Group.main, or stderr that cannot be written
            pass
    os._exit(code)


def _standard_streams() -> None:
    """Make stdin, stdout and stderr safe to use, whatever state the caller left them in.

    - A closed descriptor 0, 1 or 2 (``<&-``, ``>&-``, ``2>&-``) is opened on /dev/null, so
      that no file cecli opens takes its number. Python has set ``sys.stdin`` to ``None``
      (reading stdin is then a usage error); ``sys.stdout`` fails every write with "stdout is
      closed"; messages to a closed stderr are discarded.
    - stdout writes through :class:`_Stdout`, which writes every byte or raises
      :class:`StdoutError`. Python's own stdout reports a pipe closed in the middle of a large
      write as a short count that ``TextIOWrapper`` ignores, so the rest of the output would be
      lost without an error; and an ``OSError`` would be caught by rich or Click as exit 1.
    - Characters the output encoding cannot represent (``PYTHONIOENCODING=ascii``) are written
      as backslash escapes instead of failing. JSON output is ASCII already (``\\uXXXX``).
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:  # in increasing order, so os.open returns `fd` itself; dup2 only as a fallback
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    original = sys.stdout
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Stdout(closed=1 in closed), 1 << 16),
        encoding=getattr(original, "encoding", None) or "utf-8",
        errors="backslashreplace",
        line_buffering=getattr(original, "line_buffering", False),
    )
    if 2 in closed:
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # kept open until the process ends


class _Stdout(io.RawIOBase):
    """File descriptor 1 as a raw stream that writes every byte, or raises :class:`StdoutError`.

    Not an ``OSError``: rich's console turns a ``BrokenPipeError`` into ``SystemExit(1)`` and
    Click any ``EPIPE`` into exit 1, the gate's code; :func:`_report` maps this one.
    """

    def __init__(self, *, closed: bool) -> None:
        super().__init__()
        self.unwritable = closed
        self.discard = False  # set once the output has failed: what is left is dropped

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def isatty(self) -> bool:
        return os.isatty(1)

    def write(self, data) -> int:
        if self.discard:
            return memoryview(data).nbytes
        if self.unwritable:
            raise StdoutError("stdout is closed", errno=errno.EBADF)
        view = memoryview(data).cast("B")
        size = len(view)
        try:
            while view:
                try:
                    view = view[os.write(1, view) :]
                except BlockingIOError:  # another process sharing the pipe made it non-blocking: wait for room
                    import select

                    select.select([], [1], [])
        except OSError as error:
            raise StdoutError(error.strerror or str(error), errno=error.errno) from None
        return size
