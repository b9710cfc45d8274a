"""The options of a loss computation, checked once, and recorded in every result."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction

from .choices import (  # noqa: F401 - the choice lists (written in cecli.choices) are options too
    BASES,
    COLORS,
    ENGINES,
    FORMATS,
    LIKES,
    LOSSES,
    OUTPUT_FORMATS,
    REDUCTIONS,
)
from .errors import OptionError
from .losses import LOSS_OPTIONS, applies
from .numerics import DEFAULT_EPS

# Which losses understand each option (from the registry); anything else set for a loss is a usage error.
APPLIES = {name: applies(name) for name in LOSS_OPTIONS}
_FLAGS = {name: "--" + name.replace("_", "-") for name in APPLIES}
SKLEARN_EPS = 2.220446049250313e-16  # numpy.finfo(float64).eps, what log_loss clips to since 1.3
TORCH_LOG_FLOOR = -100.0  # torch BCELoss clamps each log term at -100


@dataclass(frozen=True)
class Preset:
    """What a ``--like`` preset sets; see the README table "Matching a library"."""

    eps: float = DEFAULT_EPS
    log_floor: float | None = None
    renormalize: str = "before_clip"
    sparse_renormalize: str = "before_clip"
    mean_denominator: str = "weights"
    class_weights_as: str = "loss"


PRESETS = {
    None: Preset(),
    # Keras 3 on TensorFlow (float64): clip 1e-7, renormalise (sparse: after clipping),
    # mean = sum(w * l) / N ("sum_over_batch_size"), class weights become sample weights by label.
    "keras": Preset(sparse_renormalize="after_clip", mean_denominator="count", class_weights_as="label"),
    # PyTorch: BCELoss clamps log at -100 and reduces over all N * k elements (mean: / (N * k), sum: all
    # of them, whatever weight= holds); cross_entropy takes logits.
    "torch": Preset(eps=0.0, log_floor=TORCH_LOG_FLOOR),
    # scikit-learn >= 1.5 log_loss: clip to machine eps, no renormalisation, mean = sum(w * l) / sum(w).
    "sklearn": Preset(eps=SKLEARN_EPS, renormalize="none", sparse_renormalize="none"),
}


def _unsupported(options: LossOptions) -> str | None:
    """Why `options.like` has no equivalent of this computation, or None."""
    like, loss = options.like, options.loss
    logits = options.from_logits
    if loss in ("entropy", "kl", "nll"):
        return f"--like applies to bce, cce, sparse and softmax, not `cecli {loss}`"
    if like == "keras":
        if options.pos_weight is not None:
            return "Keras's BinaryCrossentropy has no pos_weight"
        if loss == "sparse" and options.label_smoothing:
            return "Keras's SparseCategoricalCrossentropy has no label_smoothing"
    if like == "torch":
        if loss in ("cce", "sparse") and not logits:
            return "PyTorch's cross_entropy takes logits; pass --from-logits (or use `cecli softmax`)"
        if loss == "bce" and options.label_smoothing:
            return "PyTorch's binary cross-entropy has no label_smoothing"
        if loss == "bce" and options.pos_weight is not None and not logits:
            return "PyTorch's BCELoss has no pos_weight; pass --from-logits (BCEWithLogitsLoss)"
    if like == "sklearn":
        if logits or loss == "softmax":
            return "scikit-learn's log_loss takes probabilities, not logits"
        for name in ("label_smoothing", "class_weights", "ignore_index", "pos_weight"):
            if getattr(options, name) not in (None, 0.0):
                return f"scikit-learn's log_loss has no equivalent of {_FLAGS[name]}"
    return None


@dataclass(frozen=True)
class LossOptions:
    """Everything that changes a loss value. See DESIGN.md, "Numeric semantics"."""

    loss: str
    from_logits: bool = False
    eps: float | None = None  # None: the preset's (Keras' 1e-7 without --like)
    label_smoothing: float = 0.0
    pos_weight: tuple[float, ...] | None = None
    class_weights: tuple[float, ...] | None = None
    ignore_index: int | None = None
    temperature: float = 1.0
    # Focal loss (Lin et al. 2017): None is plain cross-entropy; alpha None is the library default (see below).
    focal_gamma: float | None = None
    focal_alpha: float | None = None
    class_balancing: bool = False
    gce_q: float | None = None  # generalized cross-entropy (Zhang & Sabuncu 2018), (1 - p_y^q) / q
    reduction: str = "mean"
    base: str = "e"
    like: str | None = None
    # Set by `like` (see PRESETS); listed so the JSON shows exactly what produced a number.
    log_floor: float | None = field(default=None, init=False)
    renormalize: str = field(default="before_clip", init=False)
    mean_denominator: str = field(default="weights", init=False)
    class_weights_as: str = field(default="loss", init=False)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise OptionError(f"unknown loss {self.loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        if self.like not in PRESETS:
            raise OptionError(f"unknown --like {self.like!r}", hint=f"use one of {', '.join(LIKES)}")
        defaults = LossOptions.__dataclass_fields__
        for name, losses in APPLIES.items():
            if self.loss not in losses and getattr(self, name) != defaults[name].default:
                raise OptionError(f"{_FLAGS[name]} does not apply to `cecli {self.loss}`")
        preset = PRESETS[self.like]
        if self.gce_q is not None and self.eps is not None:
            raise OptionError("--eps cannot be combined with --gce-q (GCE is finite at p = 0 and never clips)")
        object.__setattr__(self, "eps", preset.eps if self.eps is None else float(self.eps))
        object.__setattr__(self, "log_floor", preset.log_floor)
        renormalize = preset.sparse_renormalize if self.loss == "sparse" else preset.renormalize
        object.__setattr__(self, "renormalize", renormalize)
        # BCELoss / BCEWithLogitsLoss reduce over all N * k elements, whatever weight= holds.
        denominator = "elements" if self.like == "torch" and self.loss == "bce" else preset.mean_denominator
        object.__setattr__(self, "mean_denominator", denominator)
        object.__setattr__(self, "class_weights_as", preset.class_weights_as)
        if self.reduction not in REDUCTIONS:
            raise OptionError(f"unknown reduction {self.reduction!r}", hint=f"use one of {', '.join(REDUCTIONS)}")
        if str(self.base) not in BASES:
            raise OptionError(f"unknown base {self.base!r}", hint="use e (nats), 2 (bits) or 10 (bans)")
        object.__setattr__(self, "base", str(self.base))
        if not (math.isfinite(self.eps) and 0 <= self.eps < 0.5):
            raise OptionError(f"--eps must be in [0, 0.5); received {self.eps}")
        if not (0 <= self.label_smoothing <= 1):
            raise OptionError(f"--label-smoothing must be in [0, 1]; received {self.label_smoothing}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise OptionError(f"--temperature must be positive; received {self.temperature}")
        for name in ("pos_weight", "class_weights"):
            values = getattr(self, name)
            if values is not None:
                values = tuple(float(v) for v in values)
                if not values or not all(math.isfinite(v) and v >= 0 for v in values):
                    raise OptionError(f"{_FLAGS[name]} needs finite weights >= 0; received {values}")
                object.__setattr__(self, name, values)
        if self.loss == "softmax":
            object.__setattr__(self, "from_logits", True)
        self._check_focal()
        self._check_gce()
        if self.like is not None and (reason := _unsupported(self)):
            raise OptionError(f"--like {self.like}: {reason}")

    def _check_focal(self) -> None:
        """Focal options: ranges, what they need and exclude, and the effective alpha.

        bce (Keras ``BinaryFocalCrossentropy``): alpha weighs positives (1 - alpha negatives) only
        with --class-balancing, default 0.25; ``--like torch`` is torchvision's ``sigmoid_focal_loss``,
        which always balances (alpha 0.25 by default) and takes logits. cce, sparse, softmax (Keras
        ``CategoricalFocalCrossentropy``): alpha multiplies every class, 1 by default (so --focal-gamma 0
        is plain cross-entropy) and Keras' 0.25 under ``--like keras``.
        """
        gamma, alpha = self.focal_gamma, self.focal_alpha
        if gamma is None:
            for name in ("focal_alpha", "class_balancing"):
                if getattr(self, name) not in (None, False):
                    raise OptionError(f"{_FLAGS[name]} needs --focal-gamma", hint="--focal-gamma 0 is cross-entropy")
            return
        if not (math.isfinite(gamma) and gamma >= 0):
            raise OptionError(f"--focal-gamma must be finite and >= 0; received {gamma}")
        if alpha is not None and not (0 <= alpha <= 1):
            raise OptionError(f"--focal-alpha must be in [0, 1]; received {alpha}")
        for name in ("pos_weight", "class_weights"):
            if getattr(self, name) is not None:
                raise OptionError(f"{_FLAGS[name]} cannot be combined with --focal-gamma (focal loss has no {name})")
        if self.like == "sklearn":
            raise OptionError("--like sklearn: scikit-learn has no focal loss")
        if self.loss == "bce":
            if self.like == "torch":
                if not self.from_logits:
                    raise OptionError("--like torch: torchvision's sigmoid_focal_loss takes logits; pass --from-logits")
                object.__setattr__(self, "class_balancing", True)
            elif alpha is not None and not self.class_balancing:
                raise OptionError("--focal-alpha on bce needs --class-balancing (alpha weighs the classes only then)")
            default = 0.25
        else:
            if self.like == "torch":
                raise OptionError("--like torch: PyTorch has no categorical focal loss")
            default = 0.25 if self.like == "keras" else 1.0
        object.__setattr__(self, "focal_alpha", float(default if alpha is None else alpha))
        object.__setattr__(self, "focal_gamma", float(gamma))

    def _check_gce(self) -> None:
        """Generalized cross-entropy: q in (0, 1], alone among the loss variants; Keras under --like keras."""
        q = self.gce_q
        if q is None:
            return
        if not (0 < q <= 1):
            raise OptionError(f"--gce-q must be in (0, 1]; received {q}")
        for name in ("class_weights", "focal_gamma"):
            if getattr(self, name) is not None:
                raise OptionError(f"{_FLAGS[name]} cannot be combined with --gce-q")
        if self.like in ("torch", "sklearn"):
            raise OptionError(f"--like {self.like}: the library has no generalized cross-entropy")
        object.__setattr__(self, "gce_q", float(q))
        object.__setattr__(self, "eps", 0.0)
        if self.like == "keras":  # CategoricalGeneralizedCrossEntropy uses the probabilities as given
            object.__setattr__(self, "renormalize", "none")

    @property
    def unit(self) -> str:
        return BASES[self.base][0]

    @property
    def log_base(self) -> float | None:
        return BASES[self.base][1]

    def to_dict(self) -> dict:
        """Every effective option, so that a number can be reproduced."""
        data = asdict(self)
        data["eps"] = self.eps if not self.from_logits and self.loss not in ("entropy", "kl", "nll") else None
        data["unit"] = self.unit
        for name in ("pos_weight", "class_weights"):
            data[name] = list(data[name]) if data[name] is not None else None
        return {k: data[k] for k in [f.name for f in fields(self)] + ["unit"] if k != "loss"}


DEFAULT_SEED = 0  # --bootstrap's key when --seed is not given: the same interval on every run
MAX_RESAMPLES = 1_000_000  # --bootstrap keeps N exact sums per group: bounded, and far beyond any need


@dataclass(frozen=True)
class Interval:
    """How a confidence interval of the reduced value is computed (``--ci``, ``--bootstrap``, ``--seed``).

    `level` is a fraction (0.95). `method` is ``"normal"`` (``value +/- z * stderr``) or
    ``"bootstrap"`` (the percentile interval of `resamples` Poisson-bootstrap resamples whose
    draws are keyed by `seed` and the global row number); `resamples` and `seed` are ``None``
    for ``normal``. See README, "Confidence intervals".
    """

    level: float = 0.95
    method: str = "normal"
    resamples: int | None = None
    seed: int | None = None

    @classmethod
    def of(cls, ci: float | None = None, bootstrap: int | None = None, seed: int | None = None) -> Interval | None:
        """The interval asked for by ``--ci LEVEL`` (a percentage), ``--bootstrap N`` and ``--seed S``, or None.

        LEVEL is a percentage, at least 1 and below 100 (``--ci 95``). A LEVEL below 1 (``--ci
        0.95``) is refused rather than guessed: read as a percentage it would be a useless 0.95 %
        interval, read as a fraction ``--ci 0.5`` would mean two things. ``--bootstrap`` without
        ``--ci`` is a 95 % interval; ``--seed`` needs ``--bootstrap`` (default :data:`DEFAULT_SEED`).
        Raises :class:`~cecli.errors.OptionError` (exit 2) for anything else.
        """
        if seed is not None and bootstrap is None:
            raise OptionError("--seed is for --bootstrap; the normal interval draws nothing", hint="add --bootstrap N")
        if ci is None and bootstrap is None:
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
        # the percentage as written: 99.9 gives 0.999, where 99.9 / 100 is 0.9990000000000001
        level = float(Fraction(repr(float(ci))) / 100)
        if bootstrap is None:
            return cls(level)
        if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or not 1 <= bootstrap <= MAX_RESAMPLES:
            raise OptionError(
                f"--bootstrap needs 1 to {MAX_RESAMPLES:,} resamples; received {bootstrap!r}",
                hint="1000 or more for a 95 % interval",
            )
        seed = DEFAULT_SEED if seed is None else seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise OptionError(f"--seed must be an integer from 0 to 2**64 - 1; received {seed!r}")
        return cls(level, "bootstrap", bootstrap, seed)

    def check(self, options: LossOptions) -> None:
        """Refuse a reduction that has no sampling interval: ``none`` (no value) and ``sum``.

        The interval is of the number ``value`` reports. A mean over rows (whatever its
        denominator: the weights, the row count, PyTorch's class weights) is an estimate of the
        mean over the population the rows are drawn from; a sum grows with the number of rows
        and estimates nothing of the kind.
        """
        if options.reduction == "none":
            raise OptionError("--ci needs a reduced value; --reduction none has none", hint="use --reduction mean")
        if options.reduction == "sum":
            raise OptionError(
                "--ci is an interval of a mean; a --reduction sum grows with the number of rows",
                hint="use --reduction mean",
            )

    def to_dict(self) -> dict:
        """The JSON ``ci`` keys that describe the method (``low`` and ``high`` are added by the result)."""
        return {"level": self.level, "method": self.method, "resamples": self.resamples, "seed": self.seed}
