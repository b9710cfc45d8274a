"""The result of :func:`cecli.compare`: :class:`Comparison` (both summaries and the paired statistics of B
against A) and :class:`Paired` (the paired statistics of one set of rows, the whole or one ``--by`` group:
difference, interval, p-value, verdict and their JSON), as :mod:`cecli.result` is :func:`cecli.compute`'s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from . import __version__
from .result import SCHEMA_VERSION, LossResult, finite_or_null
from .uncertainty import PairedBootstrapState, PairedNormalState, RandomizationState


@dataclass(frozen=True)
class Paired:
    """The paired statistics of one set of rows (the whole, or one ``--by`` group).

    `normal` always (difference, standard error, wins/ties/losses); `resampled` with the
    resamples test.
    """

    normal: PairedNormalState
    resampled: PairedBootstrapState | RandomizationState | None
    test: str
    level: float

    @property
    def difference(self) -> float:
        """``D = value(B) - value(A)``, the exact difference correctly rounded (NaN when undefined)."""
        return self.normal.difference

    @property
    def stderr(self) -> float:
        """The standard error of ``D`` (:class:`~cecli.uncertainty.PairedNormalState`), for every test."""
        return self.normal.stderr

    @property
    def interval(self) -> tuple[float, float]:
        """``D +/- z se`` (normal and randomization), or the paired bootstrap's percentile interval."""
        if self.test == "bootstrap":
            return self.resampled.interval(self.level)
        return self.normal.interval(self.level)

    @property
    def p_value(self) -> float:
        """Two-sided p-value of "no difference" under the chosen test."""
        return self.normal.p_value() if self.resampled is None else self.resampled.p_value()

    @property
    def verdict(self) -> str:
        """``better`` (B's loss significantly lower), ``worse``, ``no significant difference`` or ``undefined``.

        Significant means ``p < 1 - level`` and, with an interval, the interval excludes 0 on
        that side (the bootstrap's p-value and interval agree only approximately: both must say so).
        """
        p, difference = self.p_value, self.difference
        if math.isnan(p) or math.isnan(difference):
            return "undefined"
        low, high = self.interval
        if p < 1.0 - self.level and difference < 0 and not high >= 0:
            return "better"
        if p < 1.0 - self.level and difference > 0 and not low <= 0:
            return "worse"
        return "no significant difference"

    def __add__(self, other: Paired) -> Paired:
        resampled = None if self.resampled is None else self.resampled + other.resampled
        return dataclasses.replace(self, normal=self.normal + other.normal, resampled=resampled)

    def to_dict(self, finite) -> dict:
        """The paired statistics as JSON; ``ci`` has the shape of the loss commands' ``--ci`` object."""
        low, high = self.interval
        bootstrap = self.test == "bootstrap"
        ci = {
            "level": self.level,
            "low": finite("ci low", low),
            "high": finite("ci high", high),
            "method": "bootstrap" if bootstrap else "normal",  # randomization tests; its interval is the normal one
            "resamples": self.resampled.resamples if bootstrap else None,
            "seed": self.resampled.seed if bootstrap else None,
        }
        return {
            "difference": finite("difference", self.difference),
            "stderr": finite("stderr", self.stderr),
            "ci": ci,
            "p_value": finite("p_value", self.p_value),
            "wins": self.normal.wins,
            "ties": self.normal.ties,
            "losses": self.normal.losses,
            "verdict": self.verdict,
        }


@dataclass
class Comparison:
    """The result of :func:`compare`: both summaries and the paired statistics of B against A.

    ``difference`` is ``value(B) - value(A)`` (negative: B's loss is lower); ``wins`` counts
    the rows where B's loss is lower than A's, ``losses`` where it is higher.
    """

    a: LossResult
    b: LossResult
    paired: Paired
    test: str
    resamples: int | None
    seed: int | None
    groups: list[tuple[dict, Paired]] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def difference(self) -> float:
        return self.paired.difference

    @property
    def stderr(self) -> float:
        return self.paired.stderr

    @property
    def interval(self) -> tuple[float, float]:
        return self.paired.interval

    @property
    def p_value(self) -> float:
        return self.paired.p_value

    @property
    def verdict(self) -> str:
        return self.paired.verdict

    @property
    def level(self) -> float:
        return self.paired.level

    @property
    def wins(self) -> int:
        return self.paired.normal.wins

    @property
    def ties(self) -> int:
        return self.paired.normal.ties

    @property
    def losses(self) -> int:
        return self.paired.normal.losses

    def to_dict(self) -> dict:
        """The JSON document of ``cecli compare`` (``cecli/schema.json``)."""
        warnings = list(self.warnings)

        finite = finite_or_null(warnings)

        document = {
            "schema_version": SCHEMA_VERSION,
            "cecli_version": __version__,
            "loss": self.a.options.loss,
            "unit": self.a.options.unit,
            "test": self.test,
            "resamples": self.resamples,
            "seed": self.seed,
            "a": self.a.to_dict(per_sample=False),
            "b": self.b.to_dict(per_sample=False),
            **self.paired.to_dict(finite),
        }
        if self.groups is not None:
            # In the order of a["by"] and b["by"], which hold each group's summaries.
            document["groups"] = [{"key": key, **paired.to_dict(finite)} for key, paired in self.groups]
        document["warnings"] = warnings
        return document
