"""The options of a loss computation, resolved once (checked by :mod:`cecli.plan`), and recorded in every result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

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
from .losses import LIKE_SETTINGS, LOSS_OPTIONS, REGISTRY, applies
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
    renormalize: str = "before_clip"  # a registry entry may set another for its library (Loss.like)
    mean_denominator: str = "weights"
    class_weights_as: str = "loss"


PRESETS = {
    None: Preset(),
    # Keras 3 on TensorFlow (float64): clip 1e-7, renormalise (sparse: after clipping, see its entry),
    # mean = sum(w * l) / N ("sum_over_batch_size"), class weights become sample weights by label.
    "keras": Preset(mean_denominator="count", class_weights_as="label"),
    # PyTorch: BCELoss clamps log at -100 and reduces over all N * k elements (bce's entry: mean / (N * k),
    # sum: all of them, whatever weight= holds); cross_entropy takes logits.
    "torch": Preset(eps=0.0, log_floor=TORCH_LOG_FLOOR),
    # scikit-learn >= 1.5 log_loss: clip to machine eps, no renormalisation, mean = sum(w * l) / sum(w).
    "sklearn": Preset(eps=SKLEARN_EPS, renormalize="none"),
}


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
        """Resolve the effective options: the preset's (and the entry's own for its library), the focal alpha.

        Nothing is checked here: :meth:`cecli.plan.Plan.build` checks every value and combination,
        once, before it creates the options (:func:`cecli.compute` and the CLI both go through it).
        """
        entry = REGISTRY[self.loss]
        preset = PRESETS[self.like]
        settings = {name: getattr(preset, name) for name in LIKE_SETTINGS}
        settings.update((setting, value) for like, setting, value in entry.like if like == self.like)
        object.__setattr__(self, "eps", preset.eps if self.eps is None else float(self.eps))
        object.__setattr__(self, "log_floor", preset.log_floor)
        object.__setattr__(self, "mean_denominator", settings["mean_denominator"])
        object.__setattr__(self, "renormalize", settings["renormalize"])
        object.__setattr__(self, "class_weights_as", preset.class_weights_as)
        object.__setattr__(self, "base", str(self.base))
        for name in ("pos_weight", "class_weights"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if entry.logits_only:
            object.__setattr__(self, "from_logits", True)
        variant = entry.variant(self)
        if variant in ("binary focal", "categorical focal"):
            # bce (Keras BinaryFocalCrossentropy): alpha weighs positives (1 - alpha negatives) only with
            # --class-balancing, default 0.25; --like torch is torchvision's sigmoid_focal_loss, which always
            # balances. cce, sparse, softmax (Keras CategoricalFocalCrossentropy): alpha multiplies every class,
            # 1 by default (so --focal-gamma 0 is plain cross-entropy), Keras' 0.25 under --like keras.
            if variant == "binary focal" and self.like == "torch":
                object.__setattr__(self, "class_balancing", True)
            default = 0.25 if variant == "binary focal" or self.like == "keras" else 1.0
            alpha = default if self.focal_alpha is None else self.focal_alpha
            object.__setattr__(self, "focal_alpha", float(alpha))
            object.__setattr__(self, "focal_gamma", float(self.focal_gamma))
        elif variant == "generalized":
            object.__setattr__(self, "gce_q", float(self.gce_q))
            object.__setattr__(self, "eps", 0.0)  # GCE is finite at p = 0: nothing to clip
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
        # An option the function that made the number does not take did not apply: null, not its default.
        _, keywords = REGISTRY[self.loss].call(self)
        for name in ("eps", "log_floor", "renormalize"):
            if name not in keywords or (name == "eps" and self.from_logits):
                data[name] = None
        data["unit"] = self.unit
        for name in ("pos_weight", "class_weights"):
            data[name] = list(data[name]) if data[name] is not None else None
        return {k: data[k] for k in [f.name for f in fields(self)] + ["unit"] if k != "loss"}


DEFAULT_SEED = 0  # --bootstrap's key when --seed is not given: the same interval on every run
MAX_RESAMPLES = 1_000_000  # --bootstrap keeps N exact sums per group: bounded, and far beyond any need


@dataclass(frozen=True)
class Interval:
    """How a confidence interval of the reduced value is computed (``--ci``, ``--bootstrap``, ``--seed``).

    `level` is a fraction (0.95). `method` is ``"normal"`` (``value +/- z * stderr``),
    ``"bootstrap"`` (the percentile interval of `resamples` Poisson-bootstrap resamples whose
    draws are keyed by `seed` and the global row number) or, for ``cecli compare`` only,
    ``"randomization"`` (the p-value from `resamples` sign-swapping trials; the interval is the
    normal one); `resamples` and `seed` are ``None`` for ``normal``. See README, "Confidence intervals".
    Built and checked by :class:`cecli.plan.Plan`.
    """

    level: float = 0.95
    method: str = "normal"
    resamples: int | None = None
    seed: int | None = None

    def to_dict(self) -> dict:
        """The JSON ``ci`` keys that describe the method (``low`` and ``high`` are added by the result)."""
        return {"level": self.level, "method": self.method, "resamples": self.resamples, "seed": self.seed}
