"""Per-sample cross-entropy losses in pure NumPy.

Every function takes arrays plus keyword-only options and returns a float64 array with
one loss per sample (row). Nothing here knows about files, terminals or reductions;
see :mod:`cecli.numerics.reduce` for the mean and sum. Units are nats unless ``base`` is given.

The conventions follow the libraries DESIGN.md names:

* clipping of probabilities to ``[eps, 1 - eps]`` (Keras, default ``eps=1e-7``;
  ``eps=0`` disables it, so ``p = 0`` for a true class gives ``inf``),
* categorical rows divided by their sum before clipping (Keras),
* ``pos_weight`` on the positive term of binary cross-entropy (PyTorch
  ``BCEWithLogitsLoss``), class weights and label smoothing for class-index
  targets as in PyTorch ``cross_entropy``,
* entropy with ``0 log 0 = 0`` and rows normalised as in ``scipy.stats.entropy``.
"""

from __future__ import annotations

import numpy as np

from . import DEFAULT_EPS

__all__ = [
    "DEFAULT_EPS",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "entropy",
    "kl_divergence",
    "label_weights",
    "log_softmax",
    "softmax_cross_entropy",
    "sparse_cross_entropy",
]


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


def binary_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits: bool = False,
    eps: float = DEFAULT_EPS,
    pos_weight=None,
    label_smoothing: float = 0.0,
    log_floor: float | None = None,
    base: float | None = None,
) -> np.ndarray:
    """Binary (and multi-label) cross-entropy per sample.

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, k)
        Targets in [0, 1]; soft targets are allowed. ``k`` label columns form a
        multi-label problem.
    y_pred : array_like, same shape as `y_true`
        Probabilities, or raw scores when `from_logits` is true.
    from_logits : bool
        Treat `y_pred` as logits ``x`` with ``p = sigmoid(x)``.
    eps : float
        Probabilities are clipped to ``[eps, 1 - eps]``; ``0`` disables clipping.
        Not used for logits.
    pos_weight : float or array_like of shape (k,), optional
        Multiplies the positive term (PyTorch ``BCEWithLogitsLoss``).
    label_smoothing : float
        Targets become ``y * (1 - s) + 0.5 * s``.
    log_floor : float, optional
        Clamp each log term from below (PyTorch ``BCELoss`` uses -100); probabilities only.
    base : float, optional
        Logarithm base of the result (2 = bits); natural log by default.

    Returns
    -------
    ndarray of float64, shape (n,)
        The loss of each sample, averaged over the ``k`` label columns (Keras).

    Notes
    -----
    ``l = -(w_pos * y * log p + (1 - y) * log(1 - p))`` with ``log(1 - p)`` computed as
    ``log1p(-p)``. For logits, ``-log sigmoid(x) = max(-x, 0) + log1p(exp(-|x|))`` and
    ``-log(1 - sigmoid(x)) = max(x, 0) + log1p(exp(-|x|))``: exact and finite for any
    finite ``x`` (never sigmoid-then-clip).

    Examples
    --------
    >>> binary_cross_entropy([1, 0], [0.9, 0.2]).round(6).tolist()
    [0.105361, 0.223144]
    """
    y = _floats(y_true, "y_true", (1, 2))
    x = _floats(y_pred, "y_pred", (1, 2))
    if y.shape != x.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape; received {y.shape} and {x.shape}")
    s = _check_smoothing(label_smoothing)
    if s:
        y = y * (1.0 - s) + 0.5 * s
    w_pos = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    if from_logits:
        tail = np.log1p(np.exp(-np.abs(x)))
        neg_log_p = np.maximum(-x, 0.0) + tail
        neg_log_not_p = np.maximum(x, 0.0) + tail
        losses = w_pos * y * neg_log_p + (1.0 - y) * neg_log_not_p
    else:
        p = _clip(x, eps)
        with np.errstate(divide="ignore"):
            log_not_p = np.log1p(-p)
        log_p = _log(p)
        if log_floor is not None:
            log_p, log_not_p = np.maximum(log_p, log_floor), np.maximum(log_not_p, log_floor)
        positive = y == 1.0
        if np.all(positive | (y == 0.0)):
            # Hard labels (the common case) pick one term; the same numbers as the formula below.
            losses = 0.0 - np.where(positive, log_p if pos_weight is None else weighted(w_pos, log_p), log_not_p)
        else:
            losses = 0.0 - (weighted(w_pos, _xlogy(y, log_p)) + _xlogy(1.0 - y, log_not_p))
    if losses.ndim == 2:
        losses = row_sums(losses) / losses.shape[1]  # the mean, as np.mean divides its sum
    return _in_base(losses, base)


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


def categorical_cross_entropy(
    y_true,
    y_pred,
    *,
    from_logits: bool = False,
    eps: float = DEFAULT_EPS,
    label_smoothing: float = 0.0,
    class_weights=None,
    temperature: float = 1.0,
    renormalize: str = "before_clip",
    base: float | None = None,
) -> np.ndarray:
    """Categorical cross-entropy per sample for one-hot or soft labels.

    Parameters
    ----------
    y_true : array_like, shape (n, C)
        One-hot or soft label rows.
    y_pred : array_like, shape (n, C)
        Probabilities (each row is divided by its sum, then clipped to
        ``[eps, 1 - eps]``, as Keras does), or logits when `from_logits` is true.
    from_logits : bool
        Apply a stable log-softmax to ``y_pred / temperature`` instead.
    eps : float
        Clipping of probabilities; ``0`` disables it.
    label_smoothing : float
        Labels become ``y * (1 - s) + s / C``.
    class_weights : array_like of shape (C,), optional
        ``l = -sum_c w_c y_c log p_c`` (PyTorch ``cross_entropy`` with probability targets).
    temperature : float
        Divides logits before the softmax; only used with `from_logits`.
    renormalize : {"before_clip", "after_clip", "none"}
        Divide probability rows by their sum before clipping (Keras ``categorical``),
        after clipping (Keras ``sparse`` on TensorFlow), or not at all (scikit-learn).
    base : float, optional
        Logarithm base of the result.

    Returns
    -------
    ndarray of float64, shape (n,)

    Notes
    -----
    ``l = -sum_c y_c log p_c`` with ``0 log 0 = 0``, so a class with label 0 never
    contributes, even when its probability is 0 and ``eps = 0``.

    Examples
    --------
    >>> categorical_cross_entropy([[0, 1, 0]], [[0.05, 0.95, 0.0]]).round(6).tolist()
    [0.051293]
    """
    y = _floats(y_true, "y_true", (2,))
    log_p = _log_probabilities(
        y_pred, from_logits=from_logits, eps=eps, temperature=temperature, renormalize=renormalize
    )
    if y.shape != log_p.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape; received {y.shape} and {log_p.shape}")
    s = _check_smoothing(label_smoothing)
    if s:
        y = y * (1.0 - s) + s / y.shape[1]
    losses = _smoothed_nll(y, log_p, _class_weights(class_weights, y.shape[1]))
    return _in_base(losses, base)


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


def sparse_cross_entropy(
    labels,
    y_pred,
    *,
    from_logits: bool = False,
    eps: float = DEFAULT_EPS,
    label_smoothing: float = 0.0,
    class_weights=None,
    ignore_index: int | None = None,
    temperature: float = 1.0,
    renormalize: str = "before_clip",
    base: float | None = None,
    row_sums=None,
) -> np.ndarray:
    """Cross-entropy per sample for integer class labels.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class indices in ``[0, C)``, or `ignore_index`.
    y_pred : array_like, shape (n, C)
        Probabilities (normalised and clipped as in :func:`categorical_cross_entropy`),
        or logits when `from_logits` is true.
    label_smoothing : float
        The target becomes ``(1 - s) * onehot + s / C`` (PyTorch).
    class_weights : array_like of shape (C,), optional
        As PyTorch ``cross_entropy(weight=...)``: the result for a row with label
        ``y`` is ``(1 - s) w_y (-log p_y) + (s / C) sum_c w_c (-log p_c)``. The
        matching mean divides by the sum of ``w_y`` (see :func:`label_weights`).
    ignore_index : int, optional
        Rows with this label get a loss of 0 (PyTorch ``reduction='none'``); leave
        them out of a mean.
    from_logits, eps, temperature, renormalize, base
        As in :func:`categorical_cross_entropy`.
    row_sums : array_like of shape (n,), optional
        ``y_pred.sum(axis=1)`` in float64 when the caller has it already (it is used
        only for probabilities renormalised before clipping, without smoothing).

    Returns
    -------
    ndarray of float64, shape (n,)

    Examples
    --------
    >>> sparse_cross_entropy([0, 2], [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]]).round(6).tolist()
    [0.693147, 0.510826]
    """
    s = _check_smoothing(label_smoothing)
    if not from_logits and not s and renormalize == "before_clip":
        # Only the label's probability matters: normalise, clip and log n values, not n * C.
        p = np.asarray(y_pred)
        p = p if p.dtype in (np.float32, np.float64) and p.ndim == 2 else _floats(p, "y_pred", (2,))
        n, n_classes = p.shape
        log_p = None
    else:
        log_p = _log_probabilities(
            y_pred, from_logits=from_logits, eps=eps, temperature=temperature, renormalize=renormalize
        )
        n, n_classes = log_p.shape
    safe, ignored = _class_indices(labels, n, n_classes, ignore_index)
    weights = _class_weights(class_weights, n_classes)
    if log_p is None:
        sums = _row_sums(p, dtype=np.float64) if row_sums is None else np.asarray(row_sums, dtype=np.float64)
        picked = np.divide(_pick(p, safe), sums, dtype=np.float64)
        losses = 0.0 - _log(_clip(picked, eps))
    else:
        losses = 0.0 - _pick(log_p, safe)
    if weights is not None:
        losses = weighted(weights[safe], losses)  # 0 * w_y * (-log 0) = 0
    if s:
        if weights is None:
            spread = 0.0 - _row_sums(log_p)
        else:  # 0 * log 0 = 0 for a class of weight 0; added as every row sum (not a BLAS dot, whose order is its own)
            spread = 0.0 - _row_sums(weighted(weights, log_p))
        losses = weighted(1.0 - s, losses) + (s / n_classes) * spread
    if ignored is not None:
        losses[ignored] = 0.0
    return _in_base(losses, base)


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


def softmax_cross_entropy(
    y_true,
    logits,
    *,
    temperature: float = 1.0,
    label_smoothing: float = 0.0,
    class_weights=None,
    ignore_index: int | None = None,
    base: float | None = None,
) -> np.ndarray:
    """Cross-entropy of ``softmax(logits / temperature)`` per sample.

    Parameters
    ----------
    y_true : array_like, shape (n,) of int or (n, C)
        Class indices (as :func:`sparse_cross_entropy`) or one-hot / soft label rows
        (as :func:`categorical_cross_entropy`).
    logits : array_like, shape (n, C)
        Raw scores. The log-softmax is max-shifted, so logits of any finite
        magnitude give finite losses.

    Returns
    -------
    ndarray of float64, shape (n,)

    Examples
    --------
    >>> softmax_cross_entropy([0, 1], [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]).round(6).tolist()
    [0.41703, 0.22005]
    """
    options = {
        "from_logits": True,
        "temperature": temperature,
        "label_smoothing": label_smoothing,
        "class_weights": class_weights,
        "base": base,
    }
    if np.ndim(y_true) == 1:
        return sparse_cross_entropy(y_true, logits, ignore_index=ignore_index, **options)
    return categorical_cross_entropy(y_true, logits, **options)


def entropy(p, *, base: float | None = None) -> np.ndarray:
    """Shannon entropy of each row's distribution.

    Parameters
    ----------
    p : array_like, shape (n, C) or (C,)
        Non-negative weights; each row is divided by its sum (``scipy.stats.entropy``).
    base : float, optional
        Logarithm base; 2 gives bits.

    Returns
    -------
    ndarray of float64, shape (n,)

    Notes
    -----
    ``H = -sum_c p_c log p_c`` with ``0 log 0 = 0``.

    Examples
    --------
    >>> entropy([[0.5, 0.5], [1.0, 0.0]], base=2).tolist()
    [1.0, 0.0]
    """
    q = _floats(p, "p", (1, 2))
    q = np.atleast_2d(q)
    q = q / row_sums(q, keepdims=True)
    return _in_base(0.0 - row_sums(_xlogy(q, _log(q))), base)


def kl_divergence(y_true, y_pred, *, base: float | None = None) -> np.ndarray:
    """Kullback-Leibler divergence ``KL(y_true || y_pred)`` of each row.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n, C)
        Non-negative weights; each row is divided by its sum (``scipy.stats.entropy(pk, qk)``).
    base : float, optional
        Logarithm base; 2 gives bits.

    Returns
    -------
    ndarray of float64, shape (n,)

    Notes
    -----
    ``KL = sum_c y_c log(y_c / p_c)`` with ``0 log(0 / p) = 0`` and ``inf`` where
    ``p_c = 0 < y_c`` (no clipping, as SciPy's ``rel_entr``). It equals the
    cross-entropy minus the entropy of ``y_true``, computed without that cancellation.

    Examples
    --------
    >>> kl_divergence([[0.5, 0.5]], [[0.9, 0.1]]).round(6).tolist()
    [0.510826]
    """
    y = _floats(y_true, "y_true", (2,))
    p = _floats(y_pred, "y_pred", (2,))
    if y.shape != p.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape; received {y.shape} and {p.shape}")
    y = y / row_sums(y, keepdims=True)
    p = p / row_sums(p, keepdims=True)
    with np.errstate(divide="ignore"):
        ratio = np.log(np.where(y > 0, y, 1.0)) - _log(p)
    return _in_base(row_sums(_xlogy(y, ratio)), base)
