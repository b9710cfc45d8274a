"""``cecli compare LOSS A [B]``: its parameters, one command per loss of the registry (registered on
:data:`compare_app`, which :mod:`cecli.cli.app` adds as the ``compare`` group), and the command itself:
parsed values to :func:`cecli.compare`, its table or JSON, and the gates."""

import inspect
import sys
from typing import Annotated

import typer

from cecli.errors import ExitCode, OptionError
from cecli.losses import Loss

from .group import _EXIT_CODES, _app, _Command
from .params import _COMMON_OPTIONS, _LABEL_OPTIONS, _LOSS_PARAMETERS, _complete_columns, _parameter
from .report import _guarded, _say
from .values import _colour, _loss_options, _plan, _read_settings, _sources

# cecli compare: two inputs of the same rows, the level of the interval and the test. `--ci`, `--bootstrap` and
# `--seed` are the loss commands' flags; compare declares its own (`--ci` defaults to 95 here, where the interval
# is always given), named Compare* so that the loss commands' declarations keep their names.
_CMP = "Comparison"


InputA = Annotated[
    str,
    typer.Argument(metavar="A", help="The baseline's predictions: a file, folder, glob or URL, or - for stdin."),
]


InputB = Annotated[
    str | None,
    typer.Argument(
        metavar="[B]",
        help="The candidate's predictions of the same rows, in the same order (or --pred-b).",
        show_default=False,
    ),
]


PredB = Annotated[
    str | None,
    typer.Option(
        "--pred-b",
        metavar="COLS",
        autocompletion=_complete_columns,
        help="B's prediction columns in the one INPUT A (-p names A's).",
        rich_help_panel=_CMP,
    ),
]


CompareCi = Annotated[
    float,
    typer.Option(
        "--ci",
        metavar="LEVEL",
        help="Confidence level in percent of the interval and the verdict (default 95).",
        show_default=False,
        rich_help_panel=_CMP,
    ),
]


CompareBootstrap = Annotated[
    int | None,
    typer.Option("--bootstrap", metavar="N", help="Paired Poisson bootstrap with N resamples.", rich_help_panel=_CMP),
]


CompareRandomization = Annotated[
    int | None,
    typer.Option(
        "--randomization",
        metavar="N",
        help="Approximate randomization test with N trials (as sacrebleu --paired-ar).",
        rich_help_panel=_CMP,
    ),
]


CompareSeed = Annotated[
    int | None,
    typer.Option(
        "--seed", metavar="S", help="Key of the resampling draws (default 0).", show_default=False, rich_help_panel=_CMP
    ),
]


FailIfWorse = Annotated[
    bool,
    typer.Option(
        "--fail-if-worse", help="Exit 1 if B is significantly worse than A at the --ci level.", rich_help_panel=_CMP
    ),
]


DifferenceAbove = Annotated[
    float | None,
    typer.Option("--fail-above", metavar="X", help="Exit 1 if the difference B − A is above X.", rich_help_panel=_CMP),
]


DifferenceBelow = Annotated[
    float | None,
    typer.Option("--fail-below", metavar="X", help="Exit 1 if the difference B − A is below X.", rich_help_panel=_CMP),
]


# The shared options compare takes (it has no per-sample output, and it compares means).
_COMPARED = (
    "p", "weight_col", "by", "input_format", "delimiter", "header", "batch_rows", "engine", "scheduler",
    "scheduler_file", "wait_for_workers", "base", "format", "precision", "quiet", "color",
)  # fmt: skip


_COMPARE_OPTIONS = [
    _parameter("pred_b", PredB, None),
    _parameter("ci", CompareCi, 95.0),
    _parameter("bootstrap", CompareBootstrap, None),
    _parameter("randomization", CompareRandomization, None),
    _parameter("seed", CompareSeed, None),
    _parameter("fail_if_worse", FailIfWorse, False),
    _parameter("fail_above", DifferenceAbove, None),
    _parameter("fail_below", DifferenceBelow, None),
]


# compare's gate has one more flag
_COMPARE_EXIT_CODES = _EXIT_CODES.replace("1 a --fail-above or", "1 a --fail-if-worse, --fail-above or")


compare_app = _app(
    epilog=_COMPARE_EXIT_CODES,
    help="Is B better than A? A paired test of two models' losses on the same rows. See `cecli compare LOSS --help`."
    "\n\nExample: cecli compare sparse base.parquet cand.parquet -y label -p 'p_*' --fail-if-worse",
)


def _register_compare(loss: Loss) -> None:
    """Register ``cecli compare LOSS``: the loss's own and column options (as ``cecli LOSS``), then compare's."""
    own = [_parameter(name, *_LOSS_PARAMETERS[name]) for name in loss.options if name != "per_class"]
    shared = (_LABEL_OPTIONS if loss.has_labels else []) + [p for p in _COMMON_OPTIONS if p.name in _COMPARED]
    parameters = [
        _parameter("a", InputA, inspect.Parameter.empty),
        _parameter("b", InputB, None),
        *own,
        *shared,
        *_COMPARE_OPTIONS,
    ]

    def command(**values):
        _guarded(_compare, loss.name, values)

    command.__name__ = f"compare_{loss.name}"
    command.__doc__ = (
        f"Compare candidate B's {loss.name} loss with baseline A's on the same rows: the difference B − A,"
        " its interval and a p-value.\n\n"
        f"Example: cecli compare {loss.name} base.parquet cand.parquet --fail-if-worse"
    )
    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    compare_app.command(name=loss.name, cls=_Command, epilog=_COMPARE_EXIT_CODES)(command)


def _compare(loss: str, values: dict) -> None:
    """``cecli compare LOSS A [B]``: the paired comparison, its table or JSON, and the gates."""
    from cecli.comparison import compare
    from cecli.plan import delimiter
    from cecli.render import verdict_line
    from cecli.result import gate_failure

    fmt = values["format"].value if values["format"] else ("table" if sys.stdout.isatty() else "json")
    if fmt not in ("table", "json"):
        raise OptionError(f"cecli compare prints a table or JSON, not -f {fmt}", hint="use -f table or -f json")
    values = {**values, "delimiter": delimiter(values.get("delimiter"))}  # parsed first, as checked() does
    options = _loss_options(values, "mean")
    plan = _plan(loss, values, options, fmt, randomization=values["randomization"])
    from cecli.engines.tuning import tune_for_batches

    tune_for_batches()
    comparison = compare(
        loss,
        _sources([values["a"]], values.get("labels"))[0],
        values["b"],
        pred_b=values["pred_b"],
        y=values.get("y"),
        p=values["p"],
        labels=values.get("labels"),
        weight=values["weight_col"],
        by=values["by"],
        read=_read_settings(values),
        engine=values["engine"].value,
        scheduler=values["scheduler"],
        wait_for_workers=values["wait_for_workers"],
        scheduler_file=values["scheduler_file"],
        plan=plan,
    )
    if not values["quiet"]:
        for side, warnings in (
            ("A: ", comparison.a.warnings),
            ("B: ", comparison.b.warnings),
            ("", comparison.warnings),
        ):
            for warning in warnings:
                _say("warning", side + warning)
    from cecli import render

    if fmt == "json":
        render.render_compare_json(comparison, sys.stdout)
    else:
        from rich.console import Console

        console = Console(file=sys.stdout, highlight=False, emoji=False, **_colour(values["color"].value))
        render.render_compare_table(
            comparison, console, precision=6 if values["precision"] is None else values["precision"]
        )
    sys.stdout.flush()
    low, high = comparison.interval
    stated = (
        f"difference {comparison.difference!r}, {comparison.level * 100:g}% interval [{low!r}, {high!r}],"
        f" p = {comparison.p_value!r} ({comparison.test} test)"
    )
    failure = None
    if values["fail_if_worse"] and comparison.verdict == "undefined":
        failure = f"the comparison is undefined, so --fail-if-worse cannot pass: {stated}"
    elif values["fail_if_worse"] and comparison.verdict == "worse":
        failure = verdict_line(comparison).removeprefix("verdict: ") + f": {stated} (--fail-if-worse)"
    elif values["fail_above"] is not None or values["fail_below"] is not None:
        failure = gate_failure(comparison.difference, fail_above=values["fail_above"], fail_below=values["fail_below"])
        if failure and failure.startswith("the loss"):
            failure = "the difference is not a number, so the gate cannot pass"
        failure = failure and f"{failure.replace(repr(comparison.difference) + ' ', 'difference ', 1)}; {stated}"
    if failure:
        _say("gate failed", failure)
        sys.exit(ExitCode.GATE_FAILED)
