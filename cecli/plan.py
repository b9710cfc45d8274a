"""Every check of option values and combinations, written once and without Typer (issue 14's Plan).

:meth:`Plan.build` is the one place: the CLI's output options against :data:`CONFLICTS` (when
the CLI passes them), the gate's thresholds, every loss option's value and combination (then
:class:`~cecli.options.LossOptions` resolves the presets, checking nothing), a ``--like``
library's equivalent (the registry's `unlike`), the engine and ``--per-class``. It raises the
:class:`~cecli.errors.OptionError` that the CLI maps to exit 2. :func:`cecli.compute` builds a
plan for library callers and takes the CLI's (``plan=``), so the checks run once either way;
:func:`checked` is the table alone, for ``cecli columns``, which computes no loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

from .errors import OptionError, printable
from .losses import REGISTRY
from .options import (
    _FLAGS,
    APPLIES,
    BASES,
    DEFAULT_SEED,
    ENGINES,
    LIKES,
    MAX_RESAMPLES,
    PRESETS,
    REDUCTIONS,
    Interval,
    LossOptions,
)


@dataclass(frozen=True)
class Plan:
    """What one computation will do: its checked loss options, engine and ``--per-class``.

    :meth:`build` checks every rule that needs no input; :meth:`check_paths` the ones that
    need the expanded inputs. Either raises :class:`~cecli.errors.OptionError` (exit 2).
    """

    opts: LossOptions
    engine: str = "local"
    per_class: bool = False
    interval: Interval | None = None  # --ci / --bootstrap: how the confidence interval is computed

    @classmethod
    def build(
        cls,
        loss: str,
        *,
        options: dict | None = None,
        engine: str = "local",
        weight: str | None = None,
        per_class: bool = False,
        dask: dict | None = None,
        given: dict | None = None,
        fmt: str | None = None,
        gate: dict | None = None,
        ci: float | None = None,
        bootstrap: int | None = None,
        seed: int | None = None,
        randomization: int | None = None,
    ) -> Plan:
        """The plan of `loss` with `options` (:class:`~cecli.options.LossOptions` fields).

        `weight` is the ``-w`` column spec, `dask` the Dask-only arguments by name (``None``
        where not given); `ci`, `bootstrap`, `seed` (and, for ``cecli compare``,
        `randomization`) ask for a confidence interval (:func:`_interval`). The CLI also passes its parsed values
        (`given`, checked against :data:`CONFLICTS` first, with `fmt` the output format in effect)
        and its gate (`gate`: ``fail_above``, ``fail_below``). The checks run in that order, then
        the loss options, the interval, then the rest; the first failure is the one reported.
        """
        if given is not None:
            checked(given, fmt)
        if gate:
            _check_gate(**gate)
        opts = _loss_options(loss, options or {}, sample_weights=bool(weight))
        interval = _interval(ci, bootstrap, seed, opts, randomization)
        if engine not in ENGINES:
            raise OptionError(f"unknown engine {engine!r}", hint="use local or dask")
        dask_given = [name for name, value in (dask or {}).items() if value is not None]
        if engine == "local" and dask_given:
            raise OptionError(f"{dask_given[0]} is for engine='dask'; the engine is 'local'", hint="pass engine='dask'")
        wait = (dask or {}).get("wait_for_workers")
        if wait is not None and not (wait >= 0 and math.isfinite(wait)):
            raise OptionError(f"--wait-for-workers must be a number of seconds >= 0; received {wait!r}")
        clusters = [name for name in ("client", "scheduler", "scheduler_file") if name in dask_given]
        if len(clusters) > 1:
            raise OptionError(f"give one of {' and '.join(clusters)}: each names the Dask cluster to use")
        if per_class and not REGISTRY[loss].takes("per_class"):
            *others, last = [name for name, entry in REGISTRY.items() if entry.takes("per_class")]
            raise OptionError(
                f"--per-class does not apply to `cecli {loss}`", hint=f"use it with {', '.join(others)} or {last}"
            )
        return cls(opts, engine, per_class, interval)

    def check_paths(self, paths: list[str], labels: object, *, in_memory: bool = False) -> None:
        """Check the expanded inputs: ``--labels`` (given when `labels` is truthy) pairs with one local
        input; Dask reads neither stdin nor data in memory (`in_memory`: its workers open files)."""
        if labels and (len(paths) > 1 or self.engine == "dask"):
            raise OptionError("--labels needs exactly one INPUT and the local engine", hint="drop --labels")
        if self.engine == "dask" and in_memory:
            raise OptionError(
                "the Dask engine reads files, not data in memory",
                hint="use engine='local', or write the table to Parquet files first",
            )
        if self.engine == "dask" and "-" in paths:
            raise OptionError("the Dask engine reads files, not stdin", hint="give paths or use --engine local")


def _interval(
    ci: float | None, bootstrap: int | None, seed: int | None, opts: LossOptions, randomization: int | None = None
) -> Interval | None:
    """The interval asked for by ``--ci LEVEL`` (a percentage), ``--bootstrap N``,
    ``--randomization N`` (``cecli compare`` only) and ``--seed S``, or None.

    LEVEL is a percentage, at least 1 and below 100 (``--ci 95``). A LEVEL below 1 (``--ci
    0.95``) is refused rather than guessed: read as a percentage it would be a useless 0.95 %
    interval, read as a fraction ``--ci 0.5`` would mean two things. ``--bootstrap`` (or
    ``--randomization``) without ``--ci`` is at 95 %; the two cannot be combined (each is
    the test); ``--seed`` needs one of them (default :data:`~cecli.options.DEFAULT_SEED`).

    The interval is of the number ``value`` reports. A mean over rows (whatever its
    denominator: the weights, the row count, PyTorch's class weights) estimates the mean over
    the population the rows are drawn from; ``--reduction sum`` grows with the number of rows
    and estimates nothing of the kind, and ``none`` has no value: both are refused.
    """
    if bootstrap is not None and randomization is not None:
        raise OptionError("--bootstrap cannot be combined with --randomization (each is the test)", hint="give one")
    draws, method = (bootstrap, "bootstrap") if randomization is None else (randomization, "randomization")
    if seed is not None and draws is None:
        raise OptionError("--seed is for --bootstrap; the normal interval draws nothing", hint="add --bootstrap N")
    if ci is None and draws is None:
        return None
    if ci is None:
        ci = 95.0
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not (1.0 <= ci < 100.0):
        hint = (
            f"give the level as a percentage: --ci {ci * 100:g}"
            if isinstance(ci, (int, float)) and 0.0 < ci < 1.0
            else "give a percentage such as 95"
        )
        raise OptionError(f"--ci must be a percentage from 1 to below 100; received {ci!r}", hint=hint)
    from fractions import Fraction  # here: fractions (and decimal) cost 1.5 ms of every one-liner's start-up

    # the percentage as written: 99.9 gives 0.999, where 99.9 / 100 is 0.9990000000000001
    level = float(Fraction(repr(float(ci))) / 100)
    interval = Interval(level)
    if draws is not None:
        if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= MAX_RESAMPLES:
            raise OptionError(
                f"--{method} needs 1 to {MAX_RESAMPLES:,} resamples; received {draws!r}",
                hint="1000 or more for a 95 % interval",
            )
        seed = DEFAULT_SEED if seed is None else seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise OptionError(f"--seed must be an integer from 0 to 2**64 - 1; received {seed!r}")
        interval = Interval(level, method, draws, seed)
    if opts.reduction == "none":
        raise OptionError("--ci needs a reduced value; --reduction none has none", hint="use --reduction mean")
    if opts.reduction == "sum":
        raise OptionError(
            "--ci is an interval of a mean; a --reduction sum grows with the number of rows",
            hint="use --reduction mean",
        )
    return interval


def _check_gate(*, fail_above: float | None = None, fail_below: float | None = None) -> None:
    """Refuse a gate that can never fail: a NaN threshold compares false with every value.

    Infinite thresholds are legal: ``--fail-above inf`` fails only for a NaN or missing value.
    """
    for flag, threshold in (("--fail-above", fail_above), ("--fail-below", fail_below)):
        if threshold is not None and math.isnan(threshold):
            raise OptionError(
                f"{flag} nan is a gate that can never fail (no value compares with NaN)",
                hint=f"give {flag} a number",
            )


def _loss_options(loss: str, given: dict, *, sample_weights: bool = False) -> LossOptions:
    """Check each loss option's value and every combination, then resolve them (:class:`LossOptions`).

    `sample_weights` is whether -w gives a column (a --like library may have no sample weights).
    """
    if loss not in REGISTRY:
        raise OptionError(f"unknown loss {loss!r}", hint=f"use one of {', '.join(REGISTRY)}")
    entry = REGISTRY[loss]
    defaults = LossOptions.__dataclass_fields__
    for name in given:
        if name not in defaults or not defaults[name].init or name == "loss":  # a typo must not pass unnoticed
            raise TypeError(f"compute() got an unexpected keyword argument {name!r}")
    like = given.get("like")
    if like not in PRESETS:
        raise OptionError(f"unknown --like {like!r}", hint=f"use one of {', '.join(LIKES)}")
    value = {name: given.get(name, field.default) for name, field in defaults.items() if field.init}
    for name, losses in APPLIES.items():
        if loss not in losses and value[name] != defaults[name].default:
            raise OptionError(f"{_FLAGS[name]} does not apply to `cecli {loss}`")
    if like is not None and not entry.takes("like"):
        *others, last = [name for name, other in REGISTRY.items() if other.takes("like")]
        raise OptionError(f"--like {like}: --like applies to {', '.join(others)} and {last}, not `cecli {loss}`")
    if value["gce_q"] is not None and value["eps"] is not None:
        raise OptionError("--eps cannot be combined with --gce-q (GCE is finite at p = 0 and never clips)")
    if value["reduction"] not in REDUCTIONS:
        raise OptionError(f"unknown reduction {value['reduction']!r}", hint=f"use one of {', '.join(REDUCTIONS)}")
    if str(value["base"]) not in BASES:
        raise OptionError(f"unknown base {value['base']!r}", hint="use e (nats), 2 (bits) or 10 (bans)")
    eps = PRESETS[like].eps if value["eps"] is None else value["eps"]
    if not (math.isfinite(eps) and 0 <= eps < 0.5):
        raise OptionError(f"--eps must be in [0, 0.5); received {eps}")
    if not (0 <= value["label_smoothing"] <= 1):
        raise OptionError(f"--label-smoothing must be in [0, 1]; received {value['label_smoothing']}")
    if not (math.isfinite(value["temperature"]) and value["temperature"] > 0):
        raise OptionError(f"--temperature must be positive; received {value['temperature']}")
    for name in ("pos_weight", "class_weights"):
        if value[name] is not None:
            weights = tuple(float(v) for v in value[name])
            if not weights or not all(math.isfinite(v) and v >= 0 for v in weights):
                raise OptionError(f"{_FLAGS[name]} needs finite weights >= 0; received {weights}")
    _check_focal(loss, entry.variant(SimpleNamespace(**value)), value)
    _check_gce(value)
    options = LossOptions(loss, **given)
    unset = {name: field.default for name, field in defaults.items()} | {"sample_weights": False}
    if like is not None and (unlike := entry.unlike_reason(_WithWeights(options, sample_weights), unset)):
        reason, hint = unlike
        raise OptionError(f"--like {like}: {reason}", hint=hint)
    return options


class _WithWeights:
    """The resolved options as the registry's `unlike` conditions read them, with ``sample_weights`` (-w)."""

    def __init__(self, options: LossOptions, sample_weights: bool) -> None:
        self.options, self.sample_weights = options, sample_weights

    def __getattr__(self, name: str):
        return getattr(self.options, name)


def _check_focal(loss: str, variant: str | None, value: dict) -> None:
    """Focal options: ranges, what they need and exclude (see :class:`~cecli.options.LossOptions`)."""
    gamma, alpha = value["focal_gamma"], value["focal_alpha"]
    if gamma is None:
        for name in ("focal_alpha", "class_balancing"):
            if value[name] not in (None, False):
                raise OptionError(f"{_FLAGS[name]} needs --focal-gamma", hint="--focal-gamma 0 is cross-entropy")
        return
    if not (math.isfinite(gamma) and gamma >= 0):
        raise OptionError(f"--focal-gamma must be finite and >= 0; received {gamma}")
    if alpha is not None and not (0 <= alpha <= 1):
        raise OptionError(f"--focal-alpha must be in [0, 1]; received {alpha}")
    for name in ("pos_weight", "class_weights"):
        if value[name] is not None:
            raise OptionError(f"{_FLAGS[name]} cannot be combined with --focal-gamma (focal loss has no {name})")
    # Keras' binary focal loss weighs the classes by alpha only when balancing them (torchvision always does).
    balanced = value["class_balancing"] or value["like"] == "torch"
    if variant == "binary focal" and alpha is not None and not balanced:
        raise OptionError(f"--focal-alpha on {loss} needs --class-balancing (alpha weighs the classes only then)")


def _check_gce(value: dict) -> None:
    """Generalized cross-entropy: q in (0, 1], alone among the loss variants."""
    q = value["gce_q"]
    if q is None:
        return
    if not (0 < q <= 1):
        raise OptionError(f"--gce-q must be in (0, 1]; received {q}")
    for name in ("class_weights", "focal_gamma"):
        if value[name] is not None:
            raise OptionError(f"{_FLAGS[name]} cannot be combined with --gce-q")


def delimiter(text: str | None) -> str | None:
    """The ``--delimiter`` character: one ASCII character; ``tab`` and ``\\t`` (as csvkit users type them) are TAB."""
    if text is None or text == "\t":
        return text
    if text.lower() == "tab" or text == "\\t":
        return "\t"
    if text == "":
        raise OptionError("--delimiter is empty", hint="give one character, such as ';', or tab")
    if len(text) != 1 or not text.isascii():
        raise OptionError(
            f"--delimiter must be one ASCII character; received {printable(repr(text))}",
            hint="such as ';' or '|', or tab",
        )
    if text in '"\r\n':
        raise OptionError(f"--delimiter cannot be {text!r}", hint="quotes and line ends have their own meaning in CSV")
    return text


_LINES = ("ndjson", "csv")  # formats that print per-sample lines and nothing else
_NOT_CSV = ("json", "ndjson", "parquet", "arrow", "npy", "npz")
_NUMBER_ONLY = "--value-only prints just the reduced number"

# Options that cannot both apply: a usage error naming both, never one silently ignored (README, "Options").
# (option, other option, whether both are given, why): names are formatted with the parsed values, where
# `fmt` is the output format in effect (given with -f, or the default).
CONFLICTS = (
    ("--value-only", "-f {format}", lambda v: v["value_only"] and v["format"], _NUMBER_ONLY),
    ("--value-only", "--top {top}", lambda v: v["value_only"] and v["top"], _NUMBER_ONLY),
    ("--value-only", "--by", lambda v: v["value_only"] and v["by"], _NUMBER_ONLY),
    ("--value-only", "--per-class", lambda v: v["value_only"] and v["per_class"], _NUMBER_ONLY),
    ("--value-only", "--color always", lambda v: v["value_only"] and v["color"] == "always", _NUMBER_ONLY),
    ("--value-only", "--ci", lambda v: v["value_only"] and v["ci"] is not None, _NUMBER_ONLY),
    ("--value-only", "--bootstrap", lambda v: v["value_only"] and v["bootstrap"] is not None, _NUMBER_ONLY),
    (
        "--summary-only",
        "--reduction none",
        lambda v: v["summary_only"] and v["reduction"] == "none",
        "--reduction none gives only per-sample values, which --summary-only leaves out",
    ),
    (
        "--fail-above",
        "--reduction none",
        lambda v: v["fail_above"] is not None and v["reduction"] == "none",
        "a gate needs a reduced value: use --reduction mean or sum",
    ),
    (
        "--fail-below",
        "--reduction none",
        lambda v: v["fail_below"] is not None and v["reduction"] == "none",
        "a gate needs a reduced value: use --reduction mean or sum",
    ),
    (
        "--summary-only",
        "-f {fmt}",
        lambda v: v["summary_only"] and v["fmt"] in _LINES,
        "-f {fmt} prints only per-sample lines",
    ),
    ("--top {top}", "-f {fmt}", lambda v: v["top"] and v["fmt"] in _LINES, "-f {fmt} prints only per-sample lines"),
    ("--by", "-f {fmt}", lambda v: v["by"] and v["fmt"] in _LINES, "-f {fmt} prints only per-sample lines"),
    ("--ci", "-f {fmt}", lambda v: v["ci"] is not None and v["fmt"] in _LINES, "-f {fmt} prints only per-sample lines"),
    (
        "--bootstrap",
        "-f {fmt}",
        lambda v: v["bootstrap"] is not None and v["fmt"] in _LINES,
        "-f {fmt} prints only per-sample lines",
    ),
    (
        "--per-class",
        "-f {fmt}",
        lambda v: v["per_class"] and v["fmt"] in _LINES,
        "-f {fmt} prints only per-sample lines",
    ),
    (
        "--precision {precision}",
        "-f {fmt}",
        lambda v: v["precision"] is not None and not v["value_only"] and v["fmt"] != "table",
        "-f {fmt} keeps full precision; --precision is for -f table and --value-only",
    ),
    (
        "--color always",
        "-f {fmt}",
        lambda v: v["color"] == "always" and not v["value_only"] and v["fmt"] != "table",
        "only -f table has colour",
    ),
    (
        "--keep",
        "--value-only",
        lambda v: v["keep"] and v["value_only"] and not v["out"],
        "kept columns go with per-sample values: add --out FILE",
    ),
    (
        "--keep",
        "-f {fmt}",
        lambda v: v["keep"] and v["fmt"] == "json" and not (v["out"] or v["top"]),
        "JSON per_sample holds only losses: add --out FILE or --top K, or use -f ndjson or csv",
    ),
    (
        "--keep",
        "--summary-only",
        lambda v: v["keep"] and v["summary_only"] and v["fmt"] == "table" and not (v["out"] or v["top"]),
        "kept columns go with per-sample values: add --out FILE or --top K",
    ),
    (
        "--engine dask",
        "-f {fmt}",
        lambda v: v["engine"] == "dask" and v["fmt"] in _LINES and not v["value_only"],
        "per-sample values stay on the Dask workers: write them with --out DIR",
    ),
    (
        "--engine dask",
        "--value-only --reduction none",
        lambda v: v["engine"] == "dask" and v["value_only"] and v["reduction"] == "none",
        "per-sample values stay on the Dask workers: write them with --out DIR",
    ),
    (
        "--wait-for-workers",
        "--engine local",
        lambda v: v["wait_for_workers"] is not None and v["engine"] == "local",
        "it is how long --engine dask waits for a worker",
    ),
    (
        "--scheduler",
        "--engine local",
        lambda v: v["scheduler"] is not None and v["engine"] == "local",
        "a scheduler is for --engine dask; --engine local is the default",
    ),
    (
        "--scheduler-file",
        "--engine local",
        lambda v: v["scheduler_file"] is not None and v["engine"] == "local",
        "a scheduler is for --engine dask; --engine local is the default",
    ),
    (
        "--scheduler-file",
        "--scheduler",
        lambda v: v["scheduler_file"] is not None and v["scheduler"] is not None,
        "each names the Dask scheduler: give one",
    ),
    (
        "--delimiter",
        "--input-format {input_format}",
        lambda v: v["delimiter"] is not None and v["input_format"] in _NOT_CSV,
        "only CSV has a delimiter",
    ),
    (
        "--delimiter",
        "--input-format tsv",
        lambda v: v["delimiter"] not in (None, "\t") and v["input_format"] == "tsv",
        "TSV is tab-delimited: use --input-format csv with --delimiter",
    ),
    (
        "--{header}",
        "--input-format {input_format}",
        lambda v: v["header"] is not None and v["input_format"] in _NOT_CSV,
        "only CSV has a header row",
    ),
)


def checked(values: dict, fmt: str | None = None) -> dict:
    """`values` with ``--delimiter`` resolved, after the one check for options that cannot both apply.

    `fmt` is the output format in effect; when it is the default (no ``-f``), the message says so.
    """
    values = {**values, "delimiter": delimiter(values.get("delimiter"))}
    given = {name: getattr(value, "value", value) for name, value in values.items()}  # enums as their text
    given["fmt"] = fmt
    given["header"] = None if values.get("header") is None else "header" if values["header"] else "no-header"
    given = _Missing(given)
    for first, second, applies, why in CONFLICTS:
        if applies(given):
            text = f"{first} cannot be combined with {second} ({why})".format(**given)
            if "{fmt}" in second + why and values.get("format") is None:
                text = text[:-1] + f"; -f {fmt} is the default when stdout is not a terminal)"
            raise OptionError(text)
    return values


class _Missing(dict):
    """The parsed values; an option a command does not have (``--by`` for ``columns``) reads as not given."""

    def __missing__(self, name: str) -> None:
        return None
