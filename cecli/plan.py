"""The checks of option combinations, written once and without Typer (issue 14's Plan).

:data:`CONFLICTS` is the one table of options that cannot both apply; :func:`checked` runs it
over the parsed values of a command (and resolves ``--delimiter``), raising the
:class:`~cecli.errors.OptionError` that the CLI maps to exit 2. The CLI calls it for every
command; nothing here depends on how the values were parsed. :class:`Plan` holds the rules
:func:`cecli.compute` checks for library callers and the CLI alike (the loss's options, the
engine, ``--labels``, ``--per-class``), each written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import OptionError, printable
from .losses import REGISTRY
from .options import ENGINES, LossOptions


@dataclass(frozen=True)
class Plan:
    """What one computation will do: its checked loss options, engine and ``--per-class``.

    :meth:`build` checks every rule that needs no input; :meth:`check_paths` the ones that
    need the expanded inputs. Either raises :class:`~cecli.errors.OptionError` (exit 2).
    """

    opts: LossOptions
    engine: str = "local"
    per_class: bool = False

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
    ) -> Plan:
        """The plan of `loss` with `options` (:class:`~cecli.options.LossOptions` fields).

        `weight` is the ``-w`` column spec, `dask` the Dask-only arguments by name (``None``
        where not given).
        """
        opts = LossOptions(loss=loss, **(options or {}))
        if opts.like == "torch" and weight and loss != "bce":
            raise OptionError("--like torch: PyTorch's cross_entropy takes no sample weights", hint="drop -w")
        if engine not in ENGINES:
            raise OptionError(f"unknown engine {engine!r}", hint="use local or dask")
        given = [name for name, value in (dask or {}).items() if value is not None]
        if engine == "local" and given:
            raise OptionError(f"{given[0]} is for engine='dask'; the engine is 'local'", hint="pass engine='dask'")
        if per_class and not REGISTRY[loss].takes("per_class"):
            *others, last = [name for name, entry in REGISTRY.items() if entry.takes("per_class")]
            raise OptionError(
                f"--per-class does not apply to `cecli {loss}`", hint=f"use it with {', '.join(others)} or {last}"
            )
        return cls(opts, engine, per_class)

    def check_paths(self, paths: list[str], labels: str | None) -> None:
        """Check the expanded inputs: ``--labels`` pairs with one local input; Dask reads no stdin."""
        if labels and (len(paths) > 1 or self.engine == "dask"):
            raise OptionError("--labels needs exactly one INPUT and the local engine", hint="drop --labels")
        if self.engine == "dask" and "-" in paths:
            raise OptionError("the Dask engine reads files, not stdin", hint="give paths or use --engine local")


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
