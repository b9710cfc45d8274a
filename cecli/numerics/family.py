"""The rest of the cross-entropy family in pure NumPy: focal losses, generalized
cross-entropy, and the NLL of log-probabilities (with perplexity).

The same conventions as :mod:`cecli.numerics.core` (whose checks and helpers, in
:mod:`cecli.numerics.logs`, these reuse): one float64 loss per sample, keyword-only
options, nats unless ``base`` is given.
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
    _xlogy,
    log_softmax,
    row_sums,
)

__all__ = [
    "binary_focal_cross_entropy",
    "categorical_focal_cross_entropy",
    "generalized_cross_entropy",
    "negative_log_likelihood",
    "nll",
    "nll_loss",
    "perplexity",
]


def _softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``; so ``log sigmoid(x) = -softplus(-x)``."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _times(weight, values: np.ndarray) -> np.ndarray:
    """``weight * values`` where a zero weight gives 0 even against an infinite value.

    A term with weight 0 (``alpha = 0``, a class weight of 0, a focal factor of 0) does
    not count, as the formula says; IEEE's ``0 * inf = NaN`` would turn it into a NaN.
    """
    with np.errstate(invalid="ignore"):  # 0 * inf is masked out
        return np.where(np.equal(weight, 0.0), 0.0, np.multiply(weight, values))


def _check_gamma(gamma: float) -> float:
    if not 0.0 <= gamma < np.inf:
        raise ValueError(f"`gamma` must be finite and >= 0; received {gamma!r}")
    return float(gamma)


def _check_alpha(alpha, n_classes: int | None = None) -> np.ndarray | float:
    values = np.asarray(alpha, dtype=np.float64)
    if values.ndim and (n_classes is None or values.shape != (n_classes,)):
        wanted = "a number" if n_classes is None else f"a number or one value per class ({n_classes})"
        raise ValueError(f"`alpha` must be {wanted}; received shape {values.shape}")
    if not np.all((values >= 0.0) & (values <= 1.0)):
        raise ValueError(f"`alpha` must be in [0, 1]; received {alpha!r}")
    return float(values) if values.ndim == 0 else values


def _expected_term(y_true, per_class: np.ndarray, label_smoothing: float, ignore_index: int | None) -> np.ndarray:
    """``sum_c t_c * per_class[:, c]`` for label rows or class indices, with smoothed targets ``t``.

    Rows: ``t = y (1 - s) + s / C`` (Keras). Indices: ``t = (1 - s) onehot(y) + s / C``
    (the same targets), computed without building the one-hot matrix; ignored rows give 0.
    A target of 0 never contributes, even against an infinite term (``0 log 0 = 0``).
    """
    n, n_classes = per_class.shape
    s = _check_smoothing(label_smoothing)
    if np.ndim(y_true) == 1:
        safe, ignored = _class_indices(y_true, n, n_classes, ignore_index)
        losses = _pick(per_class, safe)
        if s:
            losses = (1.0 - s) * losses + (s / n_classes) * row_sums(per_class)
        if ignored is not None:
            losses[ignored] = 0.0
        return losses
    y = _floats(y_true, "y_true", (2,))
    if y.shape != per_class.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape; received {y.shape} and {per_class.shape}")
    if s:
        y = y * (1.0 - s) + s / n_classes
    return row_sums(_times(y, per_class))


def binary_focal_cross_entropy(
    y_true,
    y_pred,
    *,
    gamma: float = 2.0,
    alpha: float = 0.25,
    apply_class_balancing: bool = False,
    from_logits: bool = False,
    eps: float = DEFAULT_EPS,
    label_smoothing: float = 0.0,
    base: float | None = None,
) -> np.ndarray:
    """Binary (and multi-label) focal cross-entropy per sample (Lin et al. 2017).

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, k)
        Targets in [0, 1]; soft targets are allowed.
    y_pred : array_like, same shape as `y_true`
        Probabilities, or logits when `from_logits` is true.
    gamma : float
        Focusing parameter ``γ >= 0``; ``0`` is plain binary cross-entropy.
    alpha : float
        Weight of the positive class, ``1 - alpha`` of the negative one, in [0, 1];
        used only with `apply_class_balancing`.
    apply_class_balancing : bool
        Multiply by ``α_t = y α + (1 - y)(1 - α)``.
    from_logits : bool
        Treat `y_pred` as logits ``x`` with ``p = sigmoid(x)``.
    eps : float
        Probabilities are clipped to ``[eps, 1 - eps]`` inside the logarithms (not in
        the focal factor, as Keras); ``0`` disables it. Not used for logits.
    label_smoothing : float
        Targets become ``y (1 - s) + 0.5 s`` before everything else (Keras).
    base : float, optional
        Logarithm base of the result (2 = bits); natural log by default.

    Returns
    -------
    ndarray of float64, shape (n,)
        The loss of each sample, averaged over the ``k`` label columns (Keras).

    Notes
    -----
    With ``p_t = y p + (1 - y)(1 - p)`` and ``bce = -(y log p + (1 - y) log(1 - p))``::

        l = α_t (1 - p_t)^γ bce

    (``α_t = 1`` without class balancing). Terms with a weight of 0 are 0.

    *Keras 3* ``BinaryFocalCrossentropy(apply_class_balancing, alpha, gamma, from_logits,
    label_smoothing)`` with ``reduction=None``: these same parameters (``eps=1e-7``).
    For probabilities the numbers are Keras' formula in float64. For logits the
    result is the exact value: ``bce = y softplus(-x) + (1 - y) softplus(x)`` and
    ``(1 - p_t)^γ = exp(γ log(y sigmoid(-x) + (1 - y) sigmoid(x)))`` from log-sigmoids,
    finite for any finite logit. Keras instead passes ``sigmoid(x)`` to its
    probability cross-entropy, which clips it to ``[1e-7, 1 - 1e-7]``: beyond
    ``|x| ≈ 16.1`` Keras' ``bce`` saturates near ``-log(1e-7) ≈ 16.118``, so the two
    differ only where Keras' clipping bites (feed ``sigmoid(x)`` as probabilities to
    reproduce that).

    *torchvision* ``sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction="none")``
    (element-wise, logits): ``from_logits=True`` with ``apply_class_balancing=True``
    for ``alpha >= 0`` and ``apply_class_balancing=False`` for torchvision's
    ``alpha < 0`` (no weighting); no label smoothing. torchvision's defaults are
    ``alpha=0.25`` *applied*, ``gamma=2``; Keras' are ``alpha=0.25`` *not applied*
    unless ``apply_class_balancing``. torchvision's ``"mean"`` and ``"sum"`` run over
    all ``n k`` elements: its mean equals the mean of these per-sample values, its sum
    is ``k`` times their sum.

    Examples
    --------
    >>> binary_focal_cross_entropy([1, 0], [0.9, 0.2], gamma=2.0).round(6).tolist()
    [0.001054, 0.008926]
    """
    y = _floats(y_true, "y_true", (1, 2))
    x = _floats(y_pred, "y_pred", (1, 2))
    if y.shape != x.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape; received {y.shape} and {x.shape}")
    gamma = _check_gamma(gamma)
    alpha = _check_alpha(alpha)
    s = _check_smoothing(label_smoothing)
    if s:
        y = y * (1.0 - s) + 0.5 * s
    if from_logits:
        log_p, log_not_p = -_softplus(-x), -_softplus(x)
        bce = 0.0 - (_xlogy(y, log_p) + _xlogy(1.0 - y, log_not_p))
        # 1 - p_t = y (1 - p) + (1 - y) p, in log space so that it never rounds to 0 or 1 too early.
        log_focus = np.logaddexp(_log(y) + log_not_p, _log(1.0 - y) + log_p)
        factor = np.exp(gamma * log_focus) if gamma else np.ones_like(x)
    else:
        p = _clip(x, eps)
        with np.errstate(divide="ignore"):
            log_not_p = np.log1p(-p)
        bce = 0.0 - (_xlogy(y, _log(p)) + _xlogy(1.0 - y, log_not_p))
        factor = np.power(y * (1.0 - x) + (1.0 - y) * x, gamma)  # unclipped, as Keras; 0 ** 0 = 1
    losses = factor * bce  # factor 0 means 1 - p_t = 0: a hard target predicted with certainty, so bce is 0
    if apply_class_balancing:
        losses = _times(y * alpha + (1.0 - y) * (1.0 - alpha), losses)
    if losses.ndim == 2:
        losses = row_sums(losses) / losses.shape[1]  # the mean, as np.mean divides its sum
    return _in_base(losses, base)


def categorical_focal_cross_entropy(
    y_true,
    y_pred,
    *,
    gamma: float = 2.0,
    alpha=0.25,
    from_logits: bool = False,
    eps: float = DEFAULT_EPS,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    temperature: float = 1.0,
    base: float | None = None,
) -> np.ndarray:
    """Categorical focal cross-entropy per sample, for label rows or class indices.

    Parameters
    ----------
    y_true : array_like, shape (n, C) or (n,) of int
        One-hot or soft label rows, or class indices in ``[0, C)`` (or `ignore_index`).
    y_pred : array_like, shape (n, C)
        Probabilities (each row divided by its sum, then clipped to ``[eps, 1 - eps]``,
        as Keras), or logits when `from_logits` is true.
    gamma : float
        Focusing parameter ``γ >= 0``; ``0`` with ``alpha=1`` is plain cross-entropy.
    alpha : float or array_like of shape (C,)
        Weight of every class (Keras' default 0.25), or one weight per class, in [0, 1].
    from_logits : bool
        Use a stable log-softmax of ``y_pred / temperature`` (no clipping).
    eps : float
        Clipping of probabilities; ``0`` disables it. Not used for logits.
    label_smoothing : float
        Targets become ``t = y (1 - s) + s / C`` (for class indices: ``(1 - s)`` on the
        label, as PyTorch and Keras agree).
    ignore_index : int, optional
        Class-index rows with this label get a loss of 0; leave them out of a mean.
    temperature : float
        Divides logits before the softmax; only used with `from_logits`.
    base : float, optional
        Logarithm base of the result.

    Returns
    -------
    ndarray of float64, shape (n,)

    Notes
    -----
    ``l = -sum_c α_c (1 - p_c)^γ t_c log p_c``, where a zero target or weight never
    contributes (``0 log 0 = 0``). This is Keras 3
    ``CategoricalFocalCrossentropy(alpha, gamma, from_logits, label_smoothing)`` with
    ``reduction=None`` for probabilities (``eps=1e-7``, the factor from the clipped
    ``p``, as Keras). For logits, ``log p`` is the log-softmax and ``1 - p =
    -expm1(log p)``, finite for any finite logits and without clipping; Keras clips ``softmax(x)`` to
    ``[1e-7, 1 - 1e-7]`` there too, so it saturates at ``-log(1e-7)`` where a class
    probability falls below 1e-7. Class indices mean their one-hot rows (Keras has no
    sparse focal loss).

    Examples
    --------
    >>> categorical_focal_cross_entropy([[0, 1, 0]], [[0.05, 0.9, 0.05]]).round(9).tolist()
    [0.000263401]
    """
    gamma = _check_gamma(gamma)
    if from_logits:
        log_p = log_softmax(y_pred, temperature=temperature)
        one_minus_p = -np.expm1(log_p)
    else:
        p = _floats(y_pred, "y_pred", (2,))
        p = _clip(p / row_sums(p, keepdims=True), eps)
        log_p = _log(p)
        one_minus_p = 1.0 - p
    alpha = _check_alpha(alpha, log_p.shape[1])
    per_class = _times(alpha * np.power(one_minus_p, gamma), 0.0 - log_p)
    return _in_base(_expected_term(y_true, per_class, label_smoothing, ignore_index), base)


def generalized_cross_entropy(
    y_true,
    y_pred,
    *,
    q: float = 0.5,
    from_logits: bool = False,
    eps: float = 0.0,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    temperature: float = 1.0,
    renormalize: str = "none",
    base: float | None = None,
) -> np.ndarray:
    """Generalized cross-entropy per sample (Zhang & Sabuncu 2018).

    Parameters
    ----------
    y_true : array_like, shape (n,) of int or (n, C)
        Class indices (or `ignore_index`), or one-hot / soft label rows.
    y_pred : array_like, shape (n, C)
        Probabilities, or logits when `from_logits` is true.
    q : float
        In ``(0, 1]``: ``q -> 0`` tends to cross-entropy, ``q = 1`` is ``1 - p_y``
        (mean absolute error of the one-hot target, up to a factor 2).
    from_logits : bool
        Use a stable log-softmax of ``y_pred / temperature``.
    eps : float
        Clipping of probabilities; the default ``0`` does not clip (Keras), and
        ``p = 0`` gives the finite ``1 / q``.
    label_smoothing : float
        Targets become ``(1 - s) y + s / C``.
    ignore_index : int, optional
        Class-index rows with this label get a loss of 0; leave them out of a mean.
    renormalize : {"none", "before_clip", "after_clip"}
        Whether probability rows are divided by their sum (see
        :func:`categorical_cross_entropy`); Keras does not.
    temperature, base
        As in :func:`categorical_cross_entropy`; ``base`` divides by ``ln(base)``, so
        the ``q -> 0`` limit is the cross-entropy in that base.

    Returns
    -------
    ndarray of float64, shape (n,)

    Notes
    -----
    ``l = (1 - p_y^q) / q``, computed as ``-expm1(q log p_y) / q``: no cancellation for
    small ``q`` and ``-log p_y`` in the limit ``q -> 0``. Label rows and smoothing use
    the expectation over the target, ``sum_c t_c (1 - p_c^q) / q``, which is the
    formula above for one-hot rows and cross-entropy with the same targets as
    ``q -> 0``. The defaults (``eps=0``, ``renormalize="none"``) are Keras 3
    ``CategoricalGeneralizedCrossEntropy(q)`` with ``reduction=None`` for class
    indices: ``p`` taken as given, no clipping (Keras' class accepts ``0 < q < 1``).

    Examples
    --------
    >>> generalized_cross_entropy([0, 1], [[0.7, 0.3], [0.2, 0.8]], q=0.5).round(6).tolist()
    [0.32668, 0.211146]
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"`q` must be in (0, 1]; received {q!r}")
    log_p = _log_probabilities(
        y_pred, from_logits=from_logits, eps=eps, temperature=temperature, renormalize=renormalize
    )
    per_class = -np.expm1(q * log_p) / q
    return _in_base(_expected_term(y_true, per_class, label_smoothing, ignore_index), base)


def negative_log_likelihood(log_probs, *, base: float | None = None) -> np.ndarray:
    """Negative log-likelihood of samples given the log-probability of their true class.

    Parameters
    ----------
    log_probs : array_like, shape (n,)
        ``log p_y`` in natural log (a token log-prob dump: vLLM, lm-evaluation-harness).
        Values must be ``<= 0`` (see :func:`cecli.numerics.validate.check_log_probabilities`);
        ``-inf`` (probability 0) gives an honest ``inf``.
    base : float, optional
        Logarithm base of the result (2 = bits).

    Returns
    -------
    ndarray of float64, shape (n,)
        ``l = -log p_y``.

    Examples
    --------
    >>> negative_log_likelihood([-0.5, 0.0, -np.inf]).tolist()
    [0.5, 0.0, inf]
    """
    return _in_base(0.0 - _floats(log_probs, "log_probs", (1,)), base)


def nll_loss(
    labels, log_probs, *, class_weights=None, ignore_index: int | None = None, base: float | None = None
) -> np.ndarray:
    """Negative log-likelihood per sample from full log-probability rows (PyTorch ``NLLLoss``).

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class indices in ``[0, C)``, or `ignore_index`.
    log_probs : array_like, shape (n, C)
        Natural-log probabilities, used as given (no normalisation, no clipping).
    class_weights : array_like of shape (C,), optional
        ``w`` of PyTorch ``NLLLoss(weight=w)``.
    ignore_index : int, optional
        Rows with this label get a loss of 0 (PyTorch ``reduction='none'``; PyTorch's
        default is -100, pass it to get that).
    base : float, optional
        Logarithm base of the result.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``l = -w_y log p_y`` (``w_y = 1`` without weights); a zero weight gives 0 even
        for ``log p_y = -inf``, where PyTorch's IEEE product gives NaN.

    Notes
    -----
    PyTorch's ``reduction='mean'`` is ``sum(l) / sum(w_y)`` over the rows not ignored.
    Pass ``denominators=label_weights(labels, w, ignore_index=...)`` to
    :meth:`cecli.numerics.reduce.Partial.of` (with any sample weights ``s`` as `weights`: ``Partial``
    multiplies the factors by them, ``D = sum(s * w_y)``) and read
    ``partial.reduced("mean")``, which is ``sum(s * l) / D``; ``partial.mean`` stays
    ``sum(s * l) / sum(s)``. Without class weights use ``w = np.ones(C)`` there, so that
    ignored rows drop out of the count.

    Examples
    --------
    >>> nll_loss([0, 1], np.log([[0.5, 0.5], [0.2, 0.8]])).round(6).tolist()
    [0.693147, 0.223144]
    """
    lp = _floats(log_probs, "log_probs", (2,))
    n, n_classes = lp.shape
    safe, ignored = _class_indices(labels, n, n_classes, ignore_index)
    losses = 0.0 - _pick(lp, safe)
    weights = _class_weights(class_weights, n_classes)
    if weights is not None:
        losses = _times(weights[safe], losses)
    if ignored is not None:
        losses[ignored] = 0.0
    return _in_base(losses, base)


def nll(*arrays, class_weights=None, ignore_index: int | None = None, base: float | None = None) -> np.ndarray:
    """The loss of ``cecli nll``: :func:`nll_loss` of ``(labels, log_probs)``, or of one log-prob column.

    ``nll(labels, log_probs, ...)`` is PyTorch ``NLLLoss`` of full log-probability rows;
    ``nll(log_probs)`` with `log_probs` of shape ``(n,)`` or ``(n, 1)`` is ``-log p_y`` of a
    column that holds the true token's log-probability (:func:`negative_log_likelihood`).

    Examples
    --------
    >>> nll([[-0.5], [0.0]]).tolist(), nll([1], [[-2.0, -0.25]]).tolist()
    ([0.5, 0.0], [0.25])
    """
    if len(arrays) == 2:
        return nll_loss(*arrays, class_weights=class_weights, ignore_index=ignore_index, base=base)
    (log_probs,) = arrays
    values = np.asarray(log_probs, dtype=np.float64)
    return negative_log_likelihood(values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values, base=base)


def perplexity(mean_nll, *, base: float | None = None):
    """Perplexity ``exp(mean NLL)`` of a mean negative log-likelihood (scalar or per group).

    Parameters
    ----------
    mean_nll : float or array_like
        Mean NLL per token in nats, or in the unit of `base`; an array gives one
        perplexity per element (e.g. per ``--by`` group).
    base : float, optional
        The unit of `mean_nll`: the perplexity is ``base ** mean_nll``.

    Returns
    -------
    float or ndarray of float64
        ``inf`` where it exceeds the float range (honestly, no warning); NaN stays NaN.

    Notes
    -----
    The corpus perplexity papers quote is ``exp(sum of token NLL / number of tokens)``:
    the perplexity of the token-weighted mean. The mean of per-document perplexities
    is larger (``exp`` is convex, Jensen) and weights a short document as much as a
    long one; the two agree only when every document has the same mean NLL.

    Examples
    --------
    >>> round(perplexity(np.log(4.0)), 12), perplexity([1.0, 3.0], base=2).tolist()
    (4.0, [2.0, 8.0])
    """
    mean = np.asarray(mean_nll, dtype=np.float64)
    _in_base(mean, base)  # checks `base`
    with np.errstate(over="ignore"):
        result = np.exp(mean) if base is None else np.power(np.float64(base), mean)
    return float(result) if result.ndim == 0 else result
