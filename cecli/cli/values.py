"""Parsed option values into the library's arguments, shared by the loss commands and ``cecli compare``:
the inputs (stdin when piped), comma lists of numbers, the loss options, the read settings and ``--color``."""

import os
import sys

from cecli.errors import OptionError
from cecli.losses import LOSS_OPTIONS


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


# Options given as a list of numbers on the command line ("2" or "1,2,3"), parsed here.
_NUMBER_LISTS = {"pos_weight": "--pos-weight", "class_weights": "--class-weights"}


def _loss_options(values: dict, reduction: str) -> dict:
    """The loss options of a command's values, as :meth:`cecli.plan.Plan.build` and ``compute()`` take them."""
    options = {
        name: _floats(values[name], _NUMBER_LISTS[name]) if name in _NUMBER_LISTS else values[name]
        for name in LOSS_OPTIONS
        if name in values
    }
    if values.get("like"):
        options["like"] = values["like"].value
    options.update(reduction=reduction, base=values["base"].value)
    return options


def _plan(loss: str, values: dict, options: dict, fmt: str, **more):
    """The :class:`~cecli.plan.Plan` of a command's parsed `values`, built once (`more`: what only one command has)."""
    from cecli.plan import Plan

    return Plan.build(
        loss,
        options=options,
        engine=values["engine"].value,
        weight=values["weight_col"],
        dask={name: values[name] for name in ("scheduler", "wait_for_workers", "scheduler_file")},
        given=values,
        fmt=fmt,
        gate={"fail_above": values["fail_above"], "fail_below": values["fail_below"]},
        ci=values["ci"],
        bootstrap=values["bootstrap"],
        seed=values["seed"],
        **more,
    )


def _read_settings(values: dict):
    from cecli.io.base import ReadSettings

    fmt = values.get("input_format")
    return ReadSettings(
        input_format=fmt.value if fmt else None,
        delimiter=values.get("delimiter"),
        header=values.get("header"),
        batch_rows=values.get("batch_rows") or 1 << 16,
    )


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
