"""The building blocks the losses of :mod:`cecli.numerics.core` and :mod:`cecli.numerics.family` share.

Logs of probabilities (clipped, renormalised, or a log-softmax of logits), ``0 log 0 = 0``,
weights that keep ``0 * inf = 0``, the conversion of nats to another base, and class
indices and class weights checked against the number of classes. Split off ``core`` (529
lines) along that seam: here how a log-probability is formed, there each loss's formula.
"""

from __future__ import annotations

import numpy as np


def _floats(values, name: str, ndim: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in ndim:
        raise ValueError(f"`{name}` must have {' or '.join(map(str, ndim))} dimensions; received shape {array.shape}")
    return array


def row_sums(matrix, *, keepdims: bool = False, dtype=None) -> np.ndarray:
    """Each row's sum, added from the left: ``((m[:, 0] + m[:, 1]) + m[:, 2]) + ...``.

    That is how NumPy sums the rows of a column-major matrix of two or more rows (the layout
    of every batch), but a one-row matrix it adds pairwise: a row's sum, and so its loss, would
    change in its last bits with the batch it falls in (the last row of a file, ``--batch-rows 1``,
    the byte budget of wide batches). Here a row's sum never depends on its batch.

    Examples
    --------
    >>> m = np.full((1, 16), 0.1)
    >>> bool(row_sums(m)[0] == row_sums(np.asfortranarray(np.vstack([m, m])))[0])
    True
    """
    m = np.asarray(matrix)
    if m.ndim == 2 and m.shape[0] == 1 and m.shape[1] > 1:
        total = np.add.accumulate(m, axis=1, dtype=dtype)[:, -1]
        return total[:, None] if keepdims else total
    return m.sum(axis=1, keepdims=keepdims, dtype=dtype)


_row_sums = row_sums  # for the functions whose `row_sums` parameter hides it


def _in_base(losses: np.ndarray, base: float | None) -> np.ndarray:
    """Convert nats to the unit of ``base`` (2 = bits, 10 = bans); ``None`` keeps nats."""
    if base is None:
        return losses
    if not base > 0 or base == 1:
        raise ValueError(f"`base` must be positive and not 1; received {base!r}")
    return losses / np.log(base)


def _xlogy(x: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    """``x * log_y`` with the convention ``0 * log 0 = 0`` (as ``scipy.special.xlogy``)."""
    with np.errstate(invalid="ignore"):  # 0 * -inf is masked out below
        return np.where(x == 0, 0.0, x * log_y)


def weighted(weights, values) -> np.ndarray:
    """``weights * values`` with the convention ``0 * anything = 0`` (also ``0 * inf``).

    A class or positive weight of 0 removes its term from the formula, so it must not
    turn an infinite ``-log 0`` into NaN.

    Examples
    --------
    >>> weighted(np.array([0.0, 2.0]), np.array([np.inf, 1.5])).tolist()
    [0.0, 3.0]
    """
    # 0 * inf is masked out below; a product beyond the float range is inf, an honest infinite loss
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(np.asarray(weights) == 0, 0.0, weights * values)


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log(0) = -inf is the honest answer when eps = 0
        return np.log(p)


def _clip(p: np.ndarray, eps: float) -> np.ndarray:
    if not 0 <= eps < 0.5:
        raise ValueError(f"`eps` must be in [0, 0.5); received {eps!r}")
    return np.clip(p, eps, 1.0 - eps) if eps > 0 else p


def _check_smoothing(label_smoothing: float) -> float:
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1]; received {label_smoothing!r}")
    return float(label_smoothing)


def log_softmax(logits, *, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``log(softmax(logits / temperature))`` computed with a max-shifted log-sum-exp.

    Finite for finite logits of any magnitude.

    Examples
    --------
    >>> log_softmax([[0.0, 0.0]]).round(6).tolist()
    [[-0.693147, -0.693147]]
    """
    if not temperature > 0:
        raise ValueError(f"`temperature` must be positive; received {temperature!r}")
    x = np.asarray(logits)
    # float32 logits are widened by the subtraction itself (exactly; their max is exact in either
    # width): no float64 copy of the input. Two float64 matrices in all (the shifted logits, which
    # become the result in place, and the exp scratch), where the plain expression made four;
    # the same operations in the same order and layout, so the same bits.
    if x.dtype != np.float32:
        x = _floats(x, "logits", (2,))
    elif x.ndim != 2:
        raise ValueError(f"`logits` must have 2 dimensions; received shape {x.shape}")
    # Shift before dividing: x / T could overflow for huge logits and T < 1, while
    # (x - max) / T <= 0 can only reach -inf, whose exp is the exact limit 0.
    with np.errstate(over="ignore"):
        shifted = np.subtract(x, x.max(axis=1, keepdims=True).astype(np.float64), dtype=np.float64)
        if temperature != 1.0:  # x / 1 is x
            shifted /= temperature
    totals = row_sums(np.exp(shifted, out=np.empty_like(shifted)), keepdims=True)
    shifted -= np.log(totals)
    return shifted


RENORMALIZE = ("before_clip", "after_clip", "none")


def _log_probabilities(
    y_pred, *, from_logits: bool, eps: float, temperature: float = 1.0, renormalize: str = "before_clip"
) -> np.ndarray:
    if from_logits:
        return log_softmax(y_pred, temperature=temperature)
    p = _floats(y_pred, "y_pred", (2,))
    if renormalize == "before_clip":  # Keras categorical_crossentropy
        return _log(_clip(p / row_sums(p, keepdims=True), eps))
    clipped = _clip(p, eps)
    if renormalize == "after_clip":  # Keras (TensorFlow) sparse: log-softmax of log(clip(p))
        return _log(clipped) - _log(row_sums(clipped, keepdims=True))
    if renormalize == "none":  # scikit-learn >= 1.5, PyTorch nll_loss(log p)
        return _log(clipped)
    raise ValueError(f"`renormalize` must be one of {', '.join(RENORMALIZE)}; received {renormalize!r}")


def _smoothed_nll(targets: np.ndarray, log_p: np.ndarray, class_weights) -> np.ndarray:
    terms = _xlogy(targets, log_p)
    if class_weights is not None:
        terms = weighted(class_weights, terms)  # a class of weight 0 adds nothing, even where p = 0
    return 0.0 - row_sums(terms)


def _class_weights(class_weights, n_classes: int) -> np.ndarray | None:
    if class_weights is None:
        return None
    weights = np.asarray(class_weights, dtype=np.float64)
    if weights.shape != (n_classes,):
        raise ValueError(f"`class_weights` needs one weight per class ({n_classes}); received {weights.size}")
    return weights


def _class_indices(labels, n: int, n_classes: int, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer labels checked against ``[0, n_classes)``: the safe indices and the ignored mask."""
    targets = np.asarray(labels)
    if targets.shape != (n,):
        raise ValueError(f"`labels` must have shape ({n},); received {targets.shape}")
    if targets.size and not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"`labels` must be integers; received dtype {targets.dtype}")
    targets = targets.astype(np.int64, copy=False)
    ignored = targets == ignore_index if ignore_index is not None else None
    safe = targets if ignored is None else np.where(ignored, 0, targets)
    if n and (safe.min() < 0 or safe.max() >= n_classes):
        raise ValueError(
            f"`labels` must be in [0, {n_classes}); received {targets[(safe < 0) | (safe >= n_classes)][0]}"
        )
    return safe, ignored


def _pick(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``matrix[i, columns[i]]`` for every row ``i``.

    On a column-major matrix this is one gather from its flat buffer, about twice as
    fast as fancy indexing with ``np.arange``.

    Examples
    --------
    >>> _pick(np.asfortranarray([[1.0, 2.0], [3.0, 4.0]]), np.array([1, 0])).tolist()
    [2.0, 3.0]
    """
    n = matrix.shape[0]
    if matrix.flags.f_contiguous and matrix.ndim == 2:
        return matrix.T.ravel().take(columns * n + np.arange(n))
    return matrix[np.arange(n), columns]


def label_weights(labels, class_weights, *, ignore_index: int | None = None) -> np.ndarray:
    """Weight ``w_y`` of each row's class, 0 for ignored rows: the mean's denominator terms.

    PyTorch ``cross_entropy`` with class-index targets and ``weight`` averages as
    ``sum(l) / sum(w_y)``: pass these as ``denominators`` to :meth:`cecli.numerics.reduce.Partial.of`
    (which multiplies them by any sample weights) and read ``reduced("mean")``.
    """
    targets = np.asarray(labels, dtype=np.int64)
    weights = np.asarray(class_weights, dtype=np.float64)
    ignored = targets == ignore_index if ignore_index is not None else np.zeros(targets.shape, dtype=bool)
    outside = ~ignored & ((targets < 0) | (targets >= weights.size))
    if outside.any():
        raise ValueError(f"`labels` must be in [0, {weights.size}); received {targets[outside][0]}")
    return np.where(ignored, 0.0, weights[np.where(ignored, 0, targets)])
