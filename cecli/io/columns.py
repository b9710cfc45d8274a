"""Column specs (``-y``, ``-p``, ``-w``, ``--keep``) and the automatic column rules.

A spec is a comma list of items. Each item is a 1-based position (``2``), a range of
positions (``2-11``), a glob (``'p_*'``) or a name. An integer always means a position
(as in csvkit). Rules for finding columns without flags are in :func:`choose_columns`.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

from cecli.errors import InputError, OptionError, printable
from cecli.losses import LABEL_GUESSES, REGISTRY

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


LISTED = 10  # columns named in a message; a wide file's message stays one readable line


def _listing(columns) -> str:
    """The names of `columns` for a message: all of them, or the first :data:`LISTED` and the count."""
    names = [printable(c.name) for c in columns[: LISTED + 1]]
    if len(columns) > LISTED:
        return ", ".join(names[:LISTED]) + f", ... ({len(columns)} in all)"
    return ", ".join(names) or "none"


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


@functools.cache
def _prefix_length(pattern: str) -> int:
    """Length of a family's prefix: ``p_*`` -> 2 (``p_``), ``p[0-9]*`` -> 1 (``p``)."""
    return min(i for i in (pattern.find("*"), pattern.find("[")) if i >= 0)


@functools.cache
def _family_match(pattern: str):
    """`pattern` compiled once (``fnmatchcase`` looks its compiled form up on every call)."""
    return re.compile(fnmatch.translate(pattern)).match


def _in_family(column: Column, pattern: str) -> bool:
    """Whether `column` belongs to the family `pattern` (case-insensitively, with a non-empty suffix).

    Called for every column and family rule: 10,000 classes make a quarter of a million calls.
    """
    return len(column.name) > _prefix_length(pattern) and _family_match(pattern)(column.name.lower()) is not None


def _case_clash(what: str, columns: list[Column], file: str, option: str) -> InputError:
    return InputError(
        f"cannot tell which column holds the {what}: {' and '.join(repr(c.name) for c in columns)} differ only in case",
        file=file,
        hint=f"name it with {option}",
    )


def _by_rules(
    columns: list[Column], names: tuple[str, ...], families: tuple[str, ...], *, what: str, file: str, option: str
) -> list[Column]:
    """The first rule of `names`, then of `families`, that matches; linear in the number of columns.

    Names compare case-insensitively, but an exact (case-sensitive) match wins over its case
    variants, and case variants without an exact match are an error, never a silent choice.
    """
    exact = {c.name: c for c in columns}
    folded: dict[str, list[Column]] = {}
    for column in columns:
        folded.setdefault(column.name.lower(), []).append(column)
    for name in names:
        if name in exact:
            return [exact[name]]
        variants = folded.get(name, [])
        if len(variants) > 1:
            raise _case_clash(what, variants, file, option)
        if variants:
            return variants
    for pattern in families:
        found = [c for c in columns if _in_family(c, pattern)]
        if found:
            return _without_case_variants(found, pattern, folded, what=what, file=file, option=option)
    return []


def _without_case_variants(
    family: list[Column], pattern: str, folded: dict[str, list[Column]], *, what: str, file: str, option: str
) -> list[Column]:
    """`family` with each group of names that differ only in case reduced to its exact-case member.

    ``p_cat`` and ``P_CAT``: ``p_cat`` (spelled as the rule) stays; ``p_cat`` and ``p_CAT`` is an error.
    """
    dropped: set[Column] = set()
    for column in family:
        variants = folded[column.name.lower()]
        if len(variants) > 1 and column not in dropped:
            exact = [c for c in variants if fnmatch.fnmatchcase(c.name, pattern)]
            if len(exact) != 1:
                raise _case_clash(what, variants, file, option)
            dropped.update(c for c in variants if c is not exact[0])
    return [c for c in family if c not in dropped]


def _suffixes(columns: list[Column] | tuple[Column, ...], families: tuple[str, ...]) -> list[str] | None:
    """What follows the prefix of the first family that every column belongs to (``p_cat`` -> ``cat``)."""
    for pattern in families:
        if all(_in_family(c, pattern) for c in columns):
            cut = _prefix_length(pattern)
            return [c.name[cut:] for c in columns]
    return None


def class_names(predictions: tuple[Column, ...] | list[Column]) -> list[str] | None:
    """Class names of prediction columns: their suffixes after a family prefix (``p_cat, p_dog`` -> ``cat, dog``).

    The prefix is one of :data:`PREDICTION_FAMILIES` (``p_``, ``prob_``, ``y_pred_``, ...)
    shared by every column; without one, or when suffixes repeat, the names are the column
    names. ``None`` for a single column or a list column.

    Examples
    --------
    >>> class_names([Column(1, "p_cat", "double"), Column(2, "p_cow", "double")])
    ['cat', 'cow']
    >>> class_names([Column(1, "a_cat", "double"), Column(2, "a_cow", "double")])
    ['a_cat', 'a_cow']
    """
    if len(predictions) < 2 or predictions[0].is_list:
        return None
    names = _suffixes(predictions, PREDICTION_FAMILIES)
    if names is None or len(set(names)) != len(names):
        return [c.name for c in predictions]
    return names


def class_numbers(predictions: tuple[Column, ...] | list[Column]) -> list[int] | None:
    """The classes as integers when every class name is a number (``p_1, p_2`` -> ``[1, 2]``), else ``None``."""
    names = class_names(predictions)
    # Up to 15 digits: every such number is exact in float64, as labels are read.
    if not names or not all(n.isascii() and n.isdigit() and len(n) <= 15 for n in names):
        return None
    numbers = [int(n) for n in names]
    return numbers if len(set(numbers)) == len(numbers) else None


def _class_order(predictions: list[Column]) -> list[int] | None:
    """The order that sorts prediction columns named after the class indices ``0..C-1`` by index.

    So that column ``p_k`` is class ``k`` for integer labels, ``--per-class``, ``--class-weights``
    and ``--pos-weight``, whatever the column order in the file. ``None`` for other names.
    """
    numbers = class_numbers(predictions)
    if numbers is None or sorted(numbers) != list(range(len(numbers))):
        return None
    return sorted(range(len(numbers)), key=numbers.__getitem__)


def _paired(
    labels: list[Column], predictions: list[Column], *, strict: bool, automatic: bool, file: str
) -> list[Column]:
    """Label columns reordered so that label ``k`` has the suffix of prediction ``k`` (``y_a`` with ``p_a``).

    Label and prediction families whose suffixes do not match one to one are an error when
    `strict`; columns that are not families (or listed by name with ``-y``/``-p``) pair in order.
    """
    label_suffixes = _suffixes(labels, LABEL_FAMILIES)
    prediction_suffixes = _suffixes(predictions, PREDICTION_FAMILIES)
    if label_suffixes is None or prediction_suffixes is None:
        return labels
    by_suffix = dict(zip(label_suffixes, labels, strict=True))
    one_to_one = len(by_suffix) == len(labels) == len(predictions) == len(set(prediction_suffixes))
    if one_to_one and by_suffix.keys() == set(prediction_suffixes):
        return [by_suffix[s] for s in prediction_suffixes]
    if not strict:
        return labels
    error = InputError if automatic else OptionError
    raise error(
        f"label columns {_listing(labels)} and prediction columns {_listing(predictions)} do not pair by suffix",
        **({"file": file} if automatic else {}),
        hint="give each label column the suffix of one prediction column (y_a with p_a), "
        "or list the pairs in order with -y and -p",
    )


def _disjoint(first: list[Column], first_role: str, second: list[Column], second_role: str) -> None:
    """A column cannot play two roles (e.g. ``-y y_pred -p y_pred``): a usage error."""
    both = set(first) & set(second)
    if both:
        column = next(c for c in first if c in both)
        raise OptionError(
            f"column {column.name!r} is selected both as {first_role} and as {second_role}",
            hint="choose different columns with -y, -p and -w",
        )


def _ambiguous(what: str, columns: list[Column], file: str) -> InputError:
    hint = "name them with -y LABEL_COLS and -p PRED_COLS"
    if len(columns) == 1:  # one column whose name holds another separator: the file was split on the wrong one
        name = columns[0].name
        if "\t" in name:
            hint = "the input looks tab-separated: use --input-format tsv or --delimiter tab"
        elif found := next((ch for ch in ";| " if ch in name.strip()), None):
            hint = f"the input looks separated by {found!r}: use --delimiter {found!r}"
    return InputError(
        f"cannot tell which columns hold the {what}; columns found: {_listing(columns)}", file=file, hint=hint
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
    partitions: frozenset[str] = frozenset(),
) -> Selection:
    """Pick the label, prediction, weight and kept columns for `loss`.

    Explicit specs win. Otherwise predictions are the first match of
    :data:`PREDICTION_NAMES`, then :data:`PREDICTION_FAMILIES`; labels likewise with
    :data:`LABEL_NAMES` / :data:`LABEL_FAMILIES` among the remaining columns. When the
    rules find nothing (always for headerless input): two columns are label then
    prediction; otherwise the loss's label kind decides (:data:`cecli.losses.LABEL_GUESSES`):
    for class labels (``sparse``, ``softmax``) the first column is the label and the rest
    are predictions; for distributions or weights (``cce``, ``kl``) an even number ``2C`` of
    columns is ``C`` labels then ``C`` predictions; without labels (``entropy``) every column
    is a prediction. With
    `label_columns` (a ``--labels`` file), labels are chosen among those instead.

    Names compare case-insensitively, but an exact match wins and case variants without
    one are an error. Prediction columns named after the class indices ``0..C-1`` are put
    in class order; several label columns then pair with the predictions by suffix
    (``y_a`` with ``p_a``, see :func:`_paired`). A column cannot be both a label, a
    prediction or the weight (:class:`OptionError`).

    The selection is made on one file; the columns of every other file of a dataset are
    found by name (see :func:`cecli.files._check_columns`). Hive partition keys
    (`partitions`, from the folder path) are columns only when named: the automatic rules
    never pick them, so ``dump/split=a/part-0.parquet`` with columns ``y, p`` reads as the file does.
    """
    automatic = [c for c in columns if c.name not in partitions] if partitions else columns
    weight_cols = resolve(weight, columns, option="-w", file=file) if weight else []
    if len(weight_cols) > 1:
        raise OptionError(f"-w names {len(weight_cols)} columns; a sample weight is one column")
    keep_cols = resolve(keep, columns, option="--keep", file=file) if keep else []
    by_cols = resolve(by, columns, option="--by", file=file) if by else []
    reserved = set(weight_cols)  # a --by column may also be the label (grouping by class)
    separate = label_columns is not None
    label_pool = label_columns if separate else columns
    label_file = label_file or file
    labels: list[Column] = []
    # The registry's label kind says how labels are guessed (losses.LABEL_GUESSES): "none" reads no
    # labels at all, "class or none" (nll) only those named with -y (else one column of log p(true token)).
    kind = REGISTRY[loss].labels
    guess = LABEL_GUESSES[kind]
    wants_labels = guess != "never" or (kind != "none" and bool(y))
    if y and kind != "none":
        labels = resolve(y, label_pool, option="-y", file=label_file)
    taken = set() if separate else set(labels)
    free = [c for c in automatic if c not in reserved and c not in taken]
    preds = resolve(p, columns, option="-p", file=file) if p else []
    if not preds and not headerless:
        preds = _by_rules(free, PREDICTION_NAMES, PREDICTION_FAMILIES, what="predictions", file=file, option="-p")
    if not separate:
        _disjoint(labels, "a label (-y)", preds, "a prediction (-p)")
        _disjoint(weight_cols, "the sample weight (-w)", [*labels, *preds], "a label or prediction")
    if wants_labels and not labels:
        if separate:
            pool = [c for c in label_pool if c not in reserved]
        else:
            # Built once (a set per column made this quadratic); a case variant of a chosen
            # prediction column (Y_PRED beside y_pred) is never taken as the label.
            excluded = {*preds, *weight_cols}
            shadowed = {c.name.lower() for c in preds}
            pool = [c for c in automatic if c not in excluded and c.name.lower() not in shadowed]
        if not headerless:
            labels = _by_rules(pool, LABEL_NAMES, LABEL_FAMILIES, what="labels", file=label_file, option="-y")
        if not labels:
            labels = _fallback_labels(guess, pool, preds, separate)
    if not preds:
        label_set = set(labels) | set(by_cols)
        rest = [c for c in free if c not in label_set]
        if not wants_labels or labels:
            preds = rest
        if not preds:
            raise _ambiguous("predictions", columns, file)
    if wants_labels and not labels:
        raise _ambiguous("labels", label_pool, label_file)
    if len(labels) > 1:  # label k pairs with prediction k
        globbed = any(ch in spec for spec in (y or "", p or "") for ch in "*?[")
        labels = _paired(labels, preds, strict=globbed or not (y and p), automatic=not (y or p), file=label_file)
    order = _class_order(preds)
    if order is not None:  # pairs stay pairs
        preds = [preds[i] for i in order]
        labels = [labels[i] for i in order] if len(labels) == len(order) > 1 else labels
    return Selection(
        tuple(labels), tuple(preds), weight_cols[0] if weight_cols else None, tuple(keep_cols), tuple(by_cols)
    )


def _fallback_labels(guess: str, pool: list[Column], preds: list[Column], separate_file: bool) -> list[Column]:
    """Positional fallback when no label rule matched, by the label kind's `guess` (``losses.LABEL_GUESSES``)."""
    if separate_file:
        return pool if len(pool) == 1 or guess in ("labels file", "per prediction") else []
    if preds:
        pred_set = set(preds)
        rest = [c for c in pool if c not in pred_set]
        return rest if len(rest) == 1 or (guess == "per prediction" and len(rest) == len(preds)) else []
    if len(pool) == 2 or (guess == "first" and len(pool) > 2):
        return pool[:1]
    if guess == "per prediction" and len(pool) % 2 == 0 and pool:
        return pool[: len(pool) // 2]
    return []
