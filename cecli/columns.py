"""Column specs (``-y``, ``-p``, ``-w``, ``--keep``) and the automatic column rules.

A spec is a comma list of items. Each item is a 1-based position (``2``), a range of
positions (``2-11``), a glob (``'p_*'``) or a name. An integer always means a position
(as in csvkit). Rules for finding columns without flags are in :func:`choose_columns`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from .errors import InputError, OptionError, printable

_RANGE = re.compile(r"^(\d+)-(\d+)$")

# Automatic rules, tried in order; names compare case-insensitively. A bare name
# wins over a family of prefixed columns; the first rule that matches decides.
PREDICTION_NAMES = (
    "y_pred",
    "pred",
    "preds",
    "prediction",
    "predictions",
    "prob",
    "probs",
    "proba",
    "probability",
    "probabilities",
    "logit",
    "logits",
    "score",
    "scores",
)
PREDICTION_FAMILIES = (
    "y_pred_*",
    "pred_*",
    "prob_*",
    "proba_*",
    "probability_*",
    "logit_*",
    "logits_*",
    "score_*",
    "p_*",
    "p[0-9]*",
)
LABEL_NAMES = ("y_true", "label", "labels", "target", "targets", "y", "class", "truth")
LABEL_FAMILIES = ("y_true_*", "label_*", "target_*", "y_*", "y[0-9]*")


@dataclass(frozen=True)
class Column:
    """One input column: 1-based position, name, Arrow type text and whether it holds lists."""

    position: int
    name: str
    type: str
    is_list: bool = False


@dataclass(frozen=True)
class Selection:
    """The columns a computation reads; `labels` may come from a second file."""

    labels: tuple[Column, ...]
    predictions: tuple[Column, ...]
    weight: Column | None = None
    keep: tuple[Column, ...] = ()
    by: tuple[Column, ...] = ()

    def columns(self, role: str) -> tuple[Column, ...]:
        part = getattr(self, role)
        if part is None:
            return ()
        return (part,) if isinstance(part, Column) else part

    def names(self, role: str) -> list[str]:
        return [c.name for c in self.columns(role)]


def _listing(columns) -> str:
    return ", ".join(printable(c.name) for c in columns) or "none"


def resolve(spec: str, columns: list[Column], *, option: str, file: str) -> list[Column]:
    """The columns that `spec` names, in spec order, without duplicates.

    Raises
    ------
    OptionError
        If an item matches no column; the message lists the real names.
    """
    by_name = {c.name: c for c in columns}
    chosen: list[Column] = []
    seen: set[Column] = set()
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            raise OptionError(f"empty item in `{option} {spec}`", hint="separate column names with single commas")
        if item.isdigit() or _RANGE.match(item):
            first, last = (int(item), int(item)) if item.isdigit() else map(int, _RANGE.match(item).groups())
            if not 1 <= first <= last <= len(columns):
                raise OptionError(
                    f"`{option} {item}` is outside the {len(columns)} columns of {file}",
                    hint=f"positions are 1-based; columns are: {_listing(columns)}",
                )
            found = columns[first - 1 : last]
        elif item in by_name:  # an exact name wins, even one that looks like a glob ("[bold]x")
            found = [by_name[item]]
        elif any(ch in item for ch in "*?["):
            found = [c for c in columns if fnmatch.fnmatchcase(c.name, item)]
            if not found:
                raise OptionError(
                    f"`{option} {item}` matches no column of {file}", hint=f"columns are: {_listing(columns)}"
                )
        else:
            raise OptionError(f"no column named {item!r} in {file}", hint=f"columns are: {_listing(columns)}")
        for column in found:
            if column not in seen:
                seen.add(column)
                chosen.append(column)
    return chosen


def _by_rules(columns: list[Column], names: tuple[str, ...], families: tuple[str, ...]) -> list[Column]:
    lowered = {c.name.lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return [lowered[name]]
    for pattern in families:
        found = [c for c in columns if fnmatch.fnmatchcase(c.name.lower(), pattern)]
        if found:
            return found
    return []


def _ambiguous(what: str, columns: list[Column], file: str) -> InputError:
    return InputError(
        f"cannot tell which columns hold the {what}; columns found: {_listing(columns)}",
        file=file,
        hint="name them with -y LABEL_COLS and -p PRED_COLS",
    )


def choose_columns(
    loss: str,
    columns: list[Column],
    *,
    file: str,
    y: str | None = None,
    p: str | None = None,
    weight: str | None = None,
    keep: str | None = None,
    by: str | None = None,
    label_columns: list[Column] | None = None,
    label_file: str | None = None,
    headerless: bool = False,
) -> Selection:
    """Pick the label, prediction, weight and kept columns for `loss`.

    Explicit specs win. Otherwise predictions are the first match of
    :data:`PREDICTION_NAMES`, then :data:`PREDICTION_FAMILIES`; labels likewise with
    :data:`LABEL_NAMES` / :data:`LABEL_FAMILIES` among the remaining columns. When the
    rules find nothing (always for headerless input): two columns are label then
    prediction; for ``sparse``/``softmax`` the first column is the label and the rest
    are predictions; for ``cce``/``kl`` an even number ``2C`` of columns is ``C`` labels then
    ``C`` predictions; for ``entropy`` every column is a prediction. With
    `label_columns` (a ``--labels`` file), labels are chosen among those instead.
    """
    weight_cols = resolve(weight, columns, option="-w", file=file) if weight else []
    if len(weight_cols) > 1:
        raise OptionError(f"-w names {len(weight_cols)} columns; a sample weight is one column")
    keep_cols = resolve(keep, columns, option="--keep", file=file) if keep else []
    by_cols = resolve(by, columns, option="--by", file=file) if by else []
    reserved = set(weight_cols)  # a --by column may also be the label (grouping by class)
    label_pool = label_columns if label_columns is not None else columns
    label_file = label_file or file
    labels: list[Column] = []
    if y and loss != "entropy":
        labels = resolve(y, label_pool, option="-y", file=label_file)
    taken = set(labels) if label_columns is None else set()
    free = [c for c in columns if c not in reserved and c not in taken]
    preds = resolve(p, columns, option="-p", file=file) if p else []
    if not preds and not headerless:
        preds = _by_rules(free, PREDICTION_NAMES, PREDICTION_FAMILIES)
    if loss != "entropy" and not labels:
        pool = label_pool if label_columns is not None else [c for c in columns if c not in {*preds, *weight_cols}]
        pool = [c for c in pool if c not in reserved]
        labels = [] if headerless else _by_rules(pool, LABEL_NAMES, LABEL_FAMILIES)
        if not labels:
            labels = _fallback_labels(loss, pool, preds, label_columns is not None)
    if not preds:
        label_set = set(labels) | set(by_cols)
        rest = [c for c in free if c not in label_set]
        if loss == "entropy" or labels:
            preds = rest
        if not preds:
            raise _ambiguous("predictions", columns, file)
    if loss != "entropy" and not labels:
        raise _ambiguous("labels", label_pool, label_file)
    return Selection(
        tuple(labels), tuple(preds), weight_cols[0] if weight_cols else None, tuple(keep_cols), tuple(by_cols)
    )


def _fallback_labels(loss: str, pool: list[Column], preds: list[Column], separate_file: bool) -> list[Column]:
    """Positional fallback when no label rule matched (see :func:`choose_columns`)."""
    if separate_file:
        return pool if len(pool) == 1 or loss in ("bce", "cce", "kl") else []
    if preds:
        pred_set = set(preds)
        rest = [c for c in pool if c not in pred_set]
        return rest if len(rest) == 1 or (loss in ("cce", "kl") and len(rest) == len(preds)) else []
    if len(pool) == 2 or (loss in ("sparse", "softmax") and len(pool) > 2):
        return pool[:1]
    if loss in ("cce", "kl") and len(pool) % 2 == 0 and pool:
        return pool[: len(pool) // 2]
    return []
