"""The options of a loss computation, checked once, and recorded in every result."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .core import DEFAULT_EPS
from .errors import OptionError
from .reduce import REDUCTIONS

LOSSES = ("bce", "cce", "sparse", "softmax", "entropy", "kl")
BASES = {"e": ("nats", None), "2": ("bits", 2.0), "10": ("bans", 10.0)}

# Which options each loss understands; anything else set for it is a usage error.
APPLIES = {
    "from_logits": ("bce", "cce", "sparse"),
    "eps": ("bce", "cce", "sparse"),
    "label_smoothing": ("bce", "cce", "sparse", "softmax"),
    "pos_weight": ("bce",),
    "class_weights": ("cce", "sparse", "softmax"),
    "ignore_index": ("sparse", "softmax"),
    "temperature": ("softmax",),
}
_FLAGS = {name: "--" + name.replace("_", "-") for name in APPLIES}


@dataclass(frozen=True)
class LossOptions:
    """Everything that changes a loss value. See DESIGN.md, "Numeric semantics"."""

    loss: str
    from_logits: bool = False
    eps: float = DEFAULT_EPS
    label_smoothing: float = 0.0
    pos_weight: tuple[float, ...] | None = None
    class_weights: tuple[float, ...] | None = None
    ignore_index: int | None = None
    temperature: float = 1.0
    reduction: str = "mean"
    base: str = "e"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise OptionError(f"unknown loss {self.loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        defaults = LossOptions.__dataclass_fields__
        for name, losses in APPLIES.items():
            if self.loss not in losses and getattr(self, name) != defaults[name].default:
                raise OptionError(f"{_FLAGS[name]} does not apply to `cecli {self.loss}`")
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

    @property
    def unit(self) -> str:
        return BASES[self.base][0]

    @property
    def log_base(self) -> float | None:
        return BASES[self.base][1]

    def to_dict(self) -> dict:
        """Every effective option, so that a number can be reproduced."""
        data = asdict(self)
        data["eps"] = self.eps if not self.from_logits and self.loss not in ("entropy", "kl") else None
        data["unit"] = self.unit
        for name in ("pos_weight", "class_weights"):
            data[name] = list(data[name]) if data[name] is not None else None
        return {k: data[k] for k in [f.name for f in fields(self)] + ["unit"] if k != "loss"}
