"""The command line: the Typer app, one command per loss of the registry (:mod:`cecli.losses`) plus
``columns`` and ``schema``, parsed values to ``compute()`` and the renderers, and :func:`main`.

Commands only parse: every option value and combination is checked once, by
:meth:`cecli.plan.Plan.build` (with the table :data:`cecli.plan.CONFLICTS`); every failure is
mapped to one stderr line and an exit code in :func:`cecli.cli.report._report`. Heavy modules
(pyarrow, rich) load lazily.
"""

import inspect
import os
import signal
import sys
from typing import Annotated

import typer

from cecli import __version__
from cecli.errors import ExitCode, printable
from cecli.losses import REGISTRY, Loss

from .group import _EXIT_CODES, _app, _Command, _Commands, _Group
from .params import (
    _COMMON_OPTIONS,
    _LABEL_OPTIONS,
    _LOSS_PARAMETERS,
    Delimiter,
    Header,
    Input,
    InputFormatOpt,
    _parameter,
)
from .process import _standard_streams, _WithoutPandas
from .report import _guarded, _report, _say
from .values import _colour, _loss_options, _plan, _read_settings, _sources

app = _app(
    epilog=_EXIT_CODES,
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


def _register(loss: Loss) -> None:
    """Register ``cecli LOSS`` from its registry entry: its help, its own options, then the shared ones."""
    own = [_parameter(name, *_LOSS_PARAMETERS[name]) for name in loss.options]
    shared = (_LABEL_OPTIONS if loss.has_labels else []) + _COMMON_OPTIONS
    parameters = [_parameter("input", Input, None), *own, *shared]

    def command(**values):
        _guarded(_score, loss.name, values)

    command.__name__ = loss.name
    command.__doc__ = loss.help
    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    app.command(name=loss.name, cls=_Command, epilog=_EXIT_CODES)(command)


class _CompareInfo(typer.models.TyperInfo):
    """The ``compare`` group's registration on :data:`app`, whose sub-app (:mod:`cecli.cli.compare`,
    with one command per loss) is imported and registered when the group is built: by ``cecli compare``,
    ``--help``, a bare ``cecli`` or a typo, never by a one-liner (about 0.7 ms of its start-up)."""

    @property
    def typer_instance(self):
        from .compare import _register_compare, compare_app

        if not compare_app.registered_commands:
            for loss in REGISTRY.values():
                _register_compare(loss)
        return compare_app

    @typer_instance.setter
    def typer_instance(self, placeholder) -> None:
        """``TyperInfo.__init__`` sets the instance; the property above answers instead."""


app.add_typer(typer.Typer(), name="compare")  # Typer's own settings for a group, then the lazy sub-app
app.registered_groups[-1] = _CompareInfo(**vars(app.registered_groups[-1]))
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
    _guarded(_list_columns, {"input": input, "input_format": input_format, "delimiter": delimiter, "header": header})


@app.command("schema", cls=_Command, epilog=_EXIT_CODES)
def schema():
    """Print the JSON Schema (draft 2020-12) of the document that -f json prints.

    Example: cecli schema > cecli-output.schema.json
    """
    from importlib.resources import files

    try:
        sys.stdout.write((files("cecli") / "schema.json").read_text(encoding="utf-8"))
    except BaseException as failure:  # as in _guarded: a closed pipe or a full disk is mapped by _report
        sys.exit(_report(failure))


def _list_columns(values: dict) -> None:
    from cecli.io.expand import expand_partitioned
    from cecli.io.sources import open_input
    from cecli.plan import checked  # imported here: --version and --help need none of it

    values = checked(values)
    path, partitions = expand_partitioned(_sources(values["input"]))[0]
    source = open_input(path, _read_settings(values), partitions)
    try:
        for warning in source.warnings:  # e.g. a header that looks like data
            _say("warning", warning)
        for column in source.describe_types():
            # A type names fields too (struct<name: ...>, a list's item), which come from the data.
            sys.stdout.write(f"{column.position}\t{printable(column.name)}\t{printable(column.type)}\n")
    finally:
        source.close()


def _score(loss: str, values: dict) -> None:
    """Parse the values into `compute()`'s arguments; :meth:`Plan.build` checks them all, once."""
    from cecli.pipeline import compute
    from cecli.plan import delimiter
    from cecli.result import gate_failure

    fmt = values["format"].value if values["format"] else ("table" if sys.stdout.isatty() else "json")
    values = {**values, "delimiter": delimiter(values.get("delimiter"))}  # parsed first, as checked() does
    reduction = values["reduction"].value
    options = _loss_options(values, reduction)
    plan = _plan(loss, values, options, fmt, per_class=values.get("per_class", False))
    per_sample = not values["summary_only"] and (not values["value_only"] or reduction == "none")
    if values["plot"] is not None:
        from cecli.plot import check_plot_path

        check_plot_path(values["plot"])  # a bad name or a missing matplotlib stops before the work
    from cecli.engines.tuning import tune_for_batches

    tune_for_batches()
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
            progress=progress,
            engine=values["engine"].value,
            scheduler=values["scheduler"],
            wait_for_workers=values["wait_for_workers"],
            scheduler_file=values["scheduler_file"],
            plan=plan,
            **options,
        )
    if not values["quiet"]:
        for warning in result.warnings:
            _say("warning", warning)
    _render(result, fmt, values, per_sample)
    if values["plot"] is not None:
        from cecli.plot import write_plot

        write_plot(result, values["plot"])
    failure = gate_failure(result.value, fail_above=values["fail_above"], fail_below=values["fail_below"])
    if failure:
        _say("gate failed", f"{reduction} {result.options.loss} loss {failure}")
        sys.exit(ExitCode.GATE_FAILED)


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


def _render(result, fmt: str, values: dict, per_sample: bool) -> None:
    from cecli import render

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


def _lazy_group() -> _Group:
    """The Click group of :data:`app` as ``typer.main.get_command(app)`` builds it, but with each
    command built only when it is looked up (:class:`~cecli.cli.group._Commands`): the same root
    options, help and command order, about 8 ms less start-up for a one-liner."""
    infos = {info.name or typer.main.get_command_name(info.callback.__name__): info for info in app.registered_commands}
    infos.update((info.name, info) for info in app.registered_groups)  # `compare`, built when used
    registered, app.registered_commands = app.registered_commands, []
    groups, app.registered_groups = app.registered_groups, []
    try:
        group = typer.main.get_command(app)  # the root callback (--version) and the app's settings only
    finally:
        app.registered_commands, app.registered_groups = registered, groups

    def build(info):
        settings = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
        if isinstance(info, typer.models.TyperInfo):
            return typer.main.get_group_from_info(info, suggest_commands=True, **settings)
        return typer.main.get_command_from_info(info, **settings)

    group.commands = _Commands(infos, build)
    return group


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
        # cecli's few BLAS calls (--ci's and --bootstrap's exact dot products) gain nothing from
        # threads, but OpenBLAS starts a thread per core when NumPy is imported, and those threads
        # spin, taking CPU from the reader and the math (about 0.1 s of CPU a run). Set before
        # NumPy loads; a user's own setting wins.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        sys.meta_path.insert(0, _WithoutPandas())
        _lazy_group()()  # _Group.main reports every outcome and raises SystemExit with its code
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
