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
from .logs import (
    _check_smoothing,
    _class_indices,
    _class_weights,
    _clip,
    _floats,
    _in_base,
    _log,
    _log_probabilities,
    _pick,
    _row_sums,
    _smoothed_nll,
    _xlogy,
    label_weights,
    log_softmax,
    row_sums,
    weighted,
)

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
