"""The finished result of a computation and the CI gate predicate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .losses import REGISTRY
from .numerics.reduce import HISTOGRAM_EDGES, Histogram, Largest, Partial
from .options import Interval, LossOptions

SCHEMA_VERSION = 1


def finite_or_null(warnings: list[str]):
    """``finite(name, value)``: `value` if finite (or None); else None, and a line in `warnings` that says so.

    JSON has no infinity or NaN: the documents write null, and their ``warnings`` say which key was not finite.
    """

    def finite(name: str, value: float | None) -> float | None:
        if value is None or math.isfinite(value):
            return value
        warnings.append(f"{name} is {value} (written as null)")
        return None

    return finite


@dataclass(frozen=True)
class Spreads:
    """The uncertainty states (:class:`~cecli.uncertainty.Spread`) of the whole input and, in the order
    of :attr:`LossResult.groups` and :attr:`LossResult.per_class`, of each group and class."""

    whole: object
    groups: list | None = None
    classes: list | None = None


@dataclass(frozen=True)
class InputInfo:
    """What was read: the input(s), their format and the columns chosen for each role.

    ``path`` is the one input's name (``None`` for several, listed in ``paths``); paths are
    shown as messages show them (stdin by name, URLs without credentials). ``classes`` is
    the number of classes (label columns for bce), ``None`` when no row was read.
    """

    path: str | None
    paths: list[str]
    format: str | None
    labels_path: str | None
    label_columns: list[str]
    prediction_columns: list[str]
    weight_column: str | None
    keep_columns: list[str]
    by_columns: list[str]
    classes: int | None

    def to_dict(self) -> dict:
        """The JSON ``input`` object (keys in this order)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class LossResult:
    """Per-sample losses (unless summary-only), their reductions and what produced them.

    `per_sample` holds one float per input row in input order, NaN for a row that does
    not count (``--ignore-index``); `counted` marks the rows that count. `elements` is the
    number of loss terms each per-sample value averages: the ``k`` label columns of a
    (multi-label) bce row, else 1.
    """

    options: LossOptions
    partial: Partial
    input: InputInfo
    hits: Partial | None = None
    histogram: Histogram | None = None
    top: Largest | None = None
    groups: list[tuple[dict, Partial]] | None = None
    per_class: list[tuple[str, int, Partial]] | None = None
    per_sample: np.ndarray | None = None
    counted: np.ndarray | None = None
    keep: dict[str, list] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    out: str | None = None
    rows: int = 0
    elements: int = 1
    interval: Interval | None = None  # --ci: how the interval is computed
    spreads: Spreads | None = None  # and the states it is computed from

    @property
    def accuracy(self) -> float | None:
        """Share of samples whose arg-max (bce: 0.5 threshold) matches the label, weighted."""
        return None if self.hits is None else self.hits.mean_over(self.elements)

    @property
    def perplexity(self) -> float | None:
        """``exp`` of the mean loss in nats, ``sum(w * l) / D`` as in `value`, where the registry entry has one."""
        if "dataset" not in REGISTRY[self.options.loss].perplexity:
            return None
        base = self.options.log_base
        return _exp_nats(self.partial.reduced("mean"), base)

    def group_perplexities(self) -> list[float] | None:
        """Each ``--by`` group's perplexity, ``exp`` of its mean loss in nats, where the entry has them (``nll``).

        A per-document perplexity is what a log-prob dump grouped by document asks for; the other
        losses keep their group entries as they were (their perplexity is the whole's only).
        """
        if self.groups is None or "groups" not in REGISTRY[self.options.loss].perplexity:
            return None
        base = self.options.log_base
        return [_exp_nats(part.reduced("mean"), base) for _, part in self.groups]

    @property
    def value(self) -> float | None:
        """The loss reduced as the options ask (``None`` for ``reduction="none"``).

        ``mean`` is ``sum(w * l) / D`` with the preset's denominator ``D`` (:attr:`denominator`);
        ``sum`` is ``sum(w * l)``, times ``k`` when PyTorch sums all ``N * k`` elements.
        """
        return _reduced(self.partial, self.options, self.elements)

    @property
    def denominator(self) -> float:
        """What ``value`` divides ``sum(w * l)`` by for ``mean`` (N * k elements for PyTorch bce)."""
        return _denominator(self.partial, self.options, self.elements)

    def to_dict(self, *, per_sample: bool = True) -> dict:
        """The flat JSON document of DESIGN.md; non-finite numbers become ``None`` and a warning."""
        warnings = list(self.warnings)
        p = self.partial

        finite = finite_or_null(warnings)

        document = {
            "schema_version": SCHEMA_VERSION,
            "cecli_version": __version__,
            "loss": self.options.loss,
            "unit": self.options.unit,
            "reduction": self.options.reduction,
            "value": finite("value", self.value),
            "count": p.count,
            "rows": self.rows,
            "mean": finite("mean", p.mean),
            "sum": finite("sum", p.sum),
            "weight_sum": finite("weight_sum", p.weight_sum),
            "denominator": finite("denominator", self.denominator),
            "min": finite("min", p.min) if p.count else None,
            "max": finite("max", p.max) if p.count else None,
            **self._uncertainty(self.spreads.whole if self.spreads else None, self.value, warnings, "the"),
            "options": self.options.to_dict(),
            "input": self.input.to_dict(),
        }
        document["accuracy"] = finite("accuracy", self.accuracy)
        document["perplexity"] = finite("perplexity", self.perplexity)
        if self.histogram is not None:
            document["histogram"] = {
                "edges": [edge if math.isfinite(edge) else None for edge in HISTOGRAM_EDGES],
                "counts": list(self.histogram.counts),
                "nan": self.histogram.nan,
            }
        if self.top is not None:
            keep = list(self.keep) or list(self.input.keep_columns)
            document["top"] = [
                {"row": row, "loss": finite("top loss", loss), **dict(zip(keep, kept, strict=False))}
                for loss, row, kept in self.top.rows
            ]
        if self.groups is not None:
            document["by"] = [{"key": key, **self._summary(part, finite)} for key, part in self.groups]
            self._breakdown_uncertainty(document["by"], self.spreads and self.spreads.groups, warnings, "group")
            perplexities = self.group_perplexities()
            if perplexities is not None:
                # The corpus (token-weighted) perplexity is `perplexity`; this mean of the groups' own is
                # larger by Jensen's inequality (exp is convex) and counts a short group as much as a long one.
                for entry, value in zip(document["by"], perplexities, strict=True):
                    entry["perplexity"] = finite("group perplexity", value)
                mean = math.fsum(perplexities) / len(perplexities) if perplexities else None
                document["group_perplexity_mean"] = finite("group_perplexity_mean", mean)
        if self.per_class is not None:
            document["per_class"] = [
                {"class": name, "index": index, **self._summary(part, finite)} for name, index, part in self.per_class
            ]
            self._breakdown_uncertainty(document["per_class"], self.spreads and self.spreads.classes, warnings, "class")
        if self.out is not None:
            document["out"] = self.out
        if per_sample and self.per_sample is not None:
            nonfinite = self.nonfinite_rows()
            if nonfinite:
                warnings.append(f"{len(nonfinite)} per-sample losses are not finite (null, listed in nonfinite_rows)")
            document["per_sample"] = self.per_sample_list()
            document["nonfinite_rows"] = nonfinite
        document["warnings"] = warnings
        return document

    def _uncertainty(self, spread, value: float | None, warnings: list[str], which: str) -> dict:
        """The ``stderr`` and ``ci`` keys of one value (none without ``--ci``); null, with a warning, when undefined."""
        if self.interval is None:
            return {}
        low, high = spread.interval(value, self.interval.level)
        stderr, low, high = _or_none(spread.stderr), _or_none(low), _or_none(high)
        if None in (stderr, low, high):
            normal = spread.normal
            why = (
                "a loss is infinite or NaN"
                if normal.nonfinite
                else "it needs at least 2 rows with a non-zero weight"
                if normal.count < 2
                else "it is beyond the float range"
                if stderr is None
                else "no resample drew a row with weight"
                if self.interval.method == "bootstrap"
                else "it is beyond the float range"
            )
            warnings.append(f"{which} confidence interval is null: {why}")
        ci = {"low": low, "high": high, **self.interval.to_dict()}
        return {"stderr": stderr, "ci": {key: ci[key] for key in _CI_KEYS}}

    def _breakdown_uncertainty(self, entries: list[dict], spreads: list | None, warnings: list[str], kind: str) -> None:
        """Add ``stderr`` and ``ci`` to each group's (or class's) entry, of its own ``value``."""
        if spreads is None:
            return
        import json  # here: a one-liner's --value-only writes no JSON (json and its regexes, about 1 ms)

        for entry, spread in zip(entries, spreads, strict=True):
            name = (
                json.dumps(entry["key"], ensure_ascii=False, default=str) if kind == "group" else repr(entry["class"])
            )
            entry.update(self._uncertainty(spread, entry["value"], warnings, f"{kind} {name}'s"))

    def _summary(self, part: Partial, finite) -> dict:
        """The reduction keys of one group or class, with the same denominators as the whole."""
        return {
            "count": part.count,
            "value": finite("group value", _reduced(part, self.options, self.elements)),
            "mean": finite("group mean", part.mean),
            "sum": finite("group sum", part.sum),
            "weight_sum": finite("group weight_sum", part.weight_sum),
            "denominator": finite("group denominator", _denominator(part, self.options, self.elements)),
            "min": finite("group min", part.min),
            "max": finite("group max", part.max),
        }

    def per_sample_list(self) -> list[float | None]:
        """Per-sample losses as Python floats, ``None`` where not counted or not finite.

        Strict JSON has no infinity: :meth:`nonfinite_rows` tells which ``None`` is a loss.
        """
        values = self.per_sample.tolist()
        ok = np.isfinite(self.per_sample) & self.counted
        return [v if good else None for v, good in zip(values, ok.tolist(), strict=True)]

    def nonfinite_rows(self) -> list[dict]:
        """The rows that count but whose loss is not finite: ``{"row": N, "loss": "inf"}`` (or ``"nan"``), N 1-based."""
        bad = np.flatnonzero(self.counted & ~np.isfinite(self.per_sample))
        return [{"row": int(i) + 1, "loss": repr(float(self.per_sample[i]))} for i in bad]

    def per_sample_words(self, precision: int | None = None, limit: int | None = None) -> list[str]:
        """The first `limit` rows' losses (all by default) as text: the number (`precision` decimals, else
        in full), ``inf``/``nan``, or ``ignored`` for a row that does not count (``--ignore-index``)."""
        out = []
        for loss, counted in zip(self.per_sample[:limit].tolist(), self.counted[:limit].tolist(), strict=True):
            if not counted:
                out.append("ignored")
            elif precision is not None and math.isfinite(loss):
                out.append(f"{loss:.{precision}f}")
            else:
                out.append(repr(loss))
        return out


_CI_KEYS = ("level", "low", "high", "method", "resamples", "seed")


def _or_none(value: float) -> float | None:
    """A statistic as JSON writes it: null when undefined (NaN) or beyond the float range, never a made-up number."""
    return value if math.isfinite(value) else None


def _per_element(options: LossOptions, elements: int) -> int:
    """How many loss terms PyTorch counts per sample: ``k`` for its bce over ``N * k`` elements."""
    return elements if options.mean_denominator == "elements" else 1


def _exp_nats(mean: float, base: float | None) -> float:
    """``exp`` of a mean loss given in the unit of `base` (nats when None), ``inf`` past the float range."""
    mean = mean * (math.log(base) if base else 1.0)
    return math.exp(mean) if mean < 709.0 else math.inf


def _reduced(part: Partial, options: LossOptions, elements: int) -> float | None:
    return part.reduced(options.reduction, elements=_per_element(options, elements))


def _denominator(part: Partial, options: LossOptions, elements: int) -> float:
    k = _per_element(options, elements)
    return part.denominator if k == 1 else k * part.denominator  # exact: a count times k


def gate_failure(value: float | None, *, fail_above: float | None, fail_below: float | None) -> str | None:
    """Why a ``--fail-above``/``--fail-below`` gate fails, or ``None`` when it passes.

    A NaN or missing value fails any gate that is set.
    """
    if fail_above is None and fail_below is None:
        return None
    if value is None or math.isnan(value):
        return "the loss is not a number, so the gate cannot pass"
    if fail_above is not None and value > fail_above:
        return f"{value!r} > {fail_above!r} (--fail-above)"
    if fail_below is not None and value < fail_below:
        return f"{value!r} < {fail_below!r} (--fail-below)"
    return None
