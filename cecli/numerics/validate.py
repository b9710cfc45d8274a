"""Array checks shared by the library API and the CLI.

Each check raises :class:`~cecli.errors.CellError` naming the 0-based row index and the column
index of the first offending element; the caller turns that into file:row:column.

Policy (DESIGN.md): values outside the math's domain are errors (NaN, inf, a
probability outside [0, 1], a label that is not a class, a negative weight, a label row
of a categorical loss that does not sum to 1). Prediction rows that do not sum to 1 are
renormalised and *counted*, so the caller can warn (:func:`rows_off_simplex`).
"""

from __future__ import annotations

import numpy as np

from cecli.errors import CellError

ROW_SUM_TOLERANCE = 1e-3  # |sum - 1| beyond this is "far from summing to 1"


def _first(mask: np.ndarray) -> tuple[int, int]:
    flat = int(np.flatnonzero(mask.ravel())[0])
    if mask.ndim == 1:
        return flat, 0
    return divmod(flat, mask.shape[1])


def _value(array: np.ndarray, index: int, column: int) -> float:
    return float(array[index] if array.ndim == 1 else array[index, column])


def _all_within(array: np.ndarray, low: float, high: float) -> bool:
    """All values finite and in [low, high]: the common case, settled in two passes without temporaries."""
    if array.size == 0:
        return True
    smallest, largest = array.min(), array.max()  # both propagate NaN
    return bool(np.isfinite(smallest) and np.isfinite(largest) and smallest >= low and largest <= high)


def check_finite(array: np.ndarray, what: str) -> None:
    """No NaN or infinity in `array`."""
    if _all_within(array, -np.inf, np.inf):
        return
    bad = ~np.isfinite(array)
    if bad.any():
        index, column = _first(bad)
        value = _value(array, index, column)
        raise CellError(
            f"{what} is {'NaN' if np.isnan(value) else value}",
            index=index,
            column_index=column,
            hint="remove or fix rows with missing or infinite values",
        )


def check_unit_interval(array: np.ndarray, what: str, hint: str) -> None:
    """All values finite and in [0, 1]."""
    if _all_within(array, 0.0, 1.0):
        return
    check_finite(array, what)
    bad = (array < 0) | (array > 1)
    if bad.any():
        index, column = _first(bad)
        raise CellError(
            f"{what} {_value(array, index, column)!r} is outside [0, 1]", index=index, column_index=column, hint=hint
        )


def check_probabilities(array: np.ndarray) -> None:
    """Predictions that are probabilities."""
    check_unit_interval(array, "probability", "pass --from-logits if these are raw scores")


def check_nonnegative(array: np.ndarray, what: str, hint: str) -> None:
    """Finite and >= 0."""
    if _all_within(array, 0.0, np.inf):
        return
    check_finite(array, what)
    bad = array < 0
    if bad.any():
        index, column = _first(bad)
        raise CellError(
            f"{what} {_value(array, index, column)!r} is negative", index=index, column_index=column, hint=hint
        )


def check_positive_rows(row_sums: np.ndarray, what: str) -> None:
    """Every row has a positive sum (so it can be normalised); takes the row sums."""
    if row_sums.size == 0 or row_sums.min() > 0:
        return
    bad = ~(row_sums > 0)
    if bad.any():
        raise CellError(
            f"{what} row sums to 0", index=_first(bad)[0], hint="a distribution needs at least one positive value"
        )


def check_label_rows(labels: np.ndarray) -> None:
    """One-hot or soft label rows: values in [0, 1] that sum to 1."""
    check_unit_interval(labels, "label", "one-hot or soft labels must be in [0, 1]")
    from .core import row_sums  # core imports nothing from here

    sums = row_sums(labels)
    bad = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if bad.any():
        index = _first(bad)[0]
        total = float(sums[index])
        kind = "is all zeros" if total == 0 else f"sums to {total:.6g}"
        raise CellError(
            f"label row {kind}, expected one-hot or soft labels summing to 1",
            index=index,
            hint="for several true labels per row use `cecli bce` (multi-label)",
        )


def check_class_labels(labels: np.ndarray, n_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Integer class labels in [0, n_classes) (or `ignore_index`); returns them as int64."""
    if np.issubdtype(labels.dtype, np.integer):
        if labels.size and labels.min() >= 0 and labels.max() < n_classes:
            return labels.astype(np.int64, copy=False)
    else:
        check_finite(labels, "label")
        bad = labels != np.floor(labels)
        if bad.any():
            index = _first(bad)[0]
            raise CellError(
                f"label {float(labels[index])!r} is not an integer class index",
                index=index,
                hint=f"labels must be integers in [0, {n_classes}); for one-hot labels use `cecli cce`",
            )
    allowed = (labels >= 0) & (labels < n_classes)
    if ignore_index is not None:
        allowed |= labels == ignore_index
    if not allowed.all():
        index = _first(~allowed)[0]
        raise CellError(
            f"label {int(labels[index])} is out of range for {n_classes} classes",
            index=index,
            hint=f"labels must be in [0, {n_classes - 1}]" + ("" if ignore_index is None else f" or {ignore_index}"),
        )
    return labels.astype(np.int64, copy=False)


def labels_by_class_number(labels: np.ndarray, numbers: list[int], ignore_index: int | None = None) -> np.ndarray:
    """Class indices of integer labels that name classes: label ``numbers[i]`` is class ``i``.

    For prediction columns named after classes that are not ``0..C-1`` (``p_1, p_2, p_3``),
    a label ``2`` means column ``p_2``, never the column at index 2. `ignore_index` stays as it is.

    Examples
    --------
    >>> labels_by_class_number(np.array([3.0, 1.0, -100.0]), [1, 2, 3], ignore_index=-100).tolist()
    [2.0, 0.0, -100.0]
    """
    check_finite(labels, "label")
    order = np.argsort(numbers)
    known = np.asarray(numbers, dtype=np.float64)[order]
    at = np.minimum(np.searchsorted(known, labels), len(known) - 1)
    found = known[at] == labels
    allowed = found if ignore_index is None else found | (labels == ignore_index)
    if not allowed.all():
        index = _first(~allowed)[0]
        value = float(labels[index])
        raise CellError(
            f"label {int(value) if value.is_integer() else value!r} is not a class",
            index=index,
            hint=f"the prediction columns name the classes {', '.join(map(str, numbers))}",
        )
    return np.where(found, order[at], labels)


def check_weights(weights: np.ndarray) -> None:
    """Sample weights: finite and >= 0."""
    check_nonnegative(weights, "weight", "sample weights must be finite and >= 0")


def check_logits(scores: np.ndarray) -> None:
    """Finite scores (the log-softmax is exact for any finite magnitude and temperature)."""
    check_finite(scores, "score")


def rows_off_simplex(row_sums: np.ndarray, tolerance: float = ROW_SUM_TOLERANCE) -> int:
    """Number of rows whose sum (given) differs from 1 by more than `tolerance`."""
    return int(np.count_nonzero(np.abs(row_sums - 1.0) > tolerance))


LOG_PROBABILITY_HINT = (
    "log-probabilities are natural logs <= 0; for probabilities or logits use `cecli sparse` or `cecli softmax`"
)


def check_log_probabilities(array: np.ndarray) -> None:
    """Natural-log probabilities: at most 0; ``-inf`` (probability 0) is allowed, NaN and ``> 0`` are not."""
    if array.size == 0 or array.max() <= 0:  # max propagates NaN, which fails the test
        return
    bad = np.isnan(array) | (array > 0)
    index, column = _first(bad)
    value = _value(array, index, column)
    what = "log-probability is NaN" if np.isnan(value) else f"log-probability {value!r} is above 0"
    raise CellError(what, index=index, column_index=column, hint=LOG_PROBABILITY_HINT)
