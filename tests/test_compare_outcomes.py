"""Wins, ties and losses of `cecli compare` when a loss is infinite or NaN.

The rule (README, "Is B better than A?"): an infinite loss is higher than every finite one, so B's infinite
loss against A's finite one is a loss for B, A's infinite loss against B's finite one a win for B, and two
infinite losses tie; a row where either loss is NaN counts in none; a row without weight (``x = 0``) never
counts. The expected counts below are written out row by row from that rule.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cecli.cli import app
from cecli.uncertainty import PairedNormalState

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    ("a", "b", "weights", "x", "expected"),
    [
        # B infinite against A finite: a loss for B; the reverse: a win; both infinite: a tie
        pytest.param([1.0], [INF], None, None, (0, 0, 1), id="b-infinite"),
        pytest.param([INF], [1.0], None, None, (1, 0, 0), id="a-infinite"),
        pytest.param([INF], [INF], None, None, (0, 1, 0), id="both-infinite"),
        # NaN on either side: no order, counted nowhere
        pytest.param([NAN, 1.0, NAN], [1.0, NAN, INF], None, None, (0, 0, 0), id="nan"),
        # rows: loss (B inf), win (A inf), loss (B inf), tie (both inf), NaN, NaN, win (finite), tie (finite)
        pytest.param(
            [1.0, INF, 2.0, INF, NAN, 1.0, 3.0, 0.5],
            [INF, 1.0, INF, INF, 1.0, NAN, 2.0, 0.5],
            None,
            None,
            (2, 2, 2),
            id="mixed",
        ),
        # the same rows, the win of row 2 (A infinite) and the finite tie of row 8 without weight
        pytest.param(
            [1.0, INF, 2.0, INF, NAN, 1.0, 3.0, 0.5],
            [INF, 1.0, INF, INF, 1.0, NAN, 2.0, 0.5],
            [1.0, 0.0, 2.0, 0.5, 1.0, 1.0, 3.0, 0.0],
            None,
            (1, 1, 2),
            id="zero-weights",
        ),
        # row denominators decide which rows take part (here row 1, the loss, has x = 0), not the weights
        pytest.param(
            [1.0, INF, 2.0],
            [INF, 1.0, INF],
            [1.0, 1.0, 1.0],
            [0.0, 2.0, 1.0],
            (1, 0, 1),
            id="zero-row-denominator",
        ),
    ],
)
def test_outcomes_order_infinite_losses_and_leave_out_nan(a, b, weights, x, expected):
    state = PairedNormalState.of(a, b, weights, x)
    assert (state.wins, state.ties, state.losses) == expected
    assert math.isnan(state.difference)  # the mean difference stays undefined: every case has such a row that counts


def test_grouped_outcomes_are_each_groups_own():
    a = [1.0, INF, 2.0, INF, 0.5, NAN]
    b = [INF, 1.0, 1.0, INF, 0.5, 1.0]
    codes = [0, 1, 0, 1, 2, 2]
    groups = PairedNormalState.grouped(codes, a, b)
    counts = {code: (state.wins, state.ties, state.losses) for code, state in groups.items()}
    # group 0: loss (B inf), win (2 > 1); group 1: win (A inf), tie (both inf); group 2: tie, NaN
    assert counts == {0: (1, 0, 1), 1: (1, 1, 0), 2: (0, 1, 0)}


_LOSS = st.sampled_from([0.0, 0.5, 1.0, 2.0, INF, NAN])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_LOSS, _LOSS), min_size=1, max_size=12), st.data())
def test_outcomes_of_split_rows_add_up_to_the_whole(rows, data):
    a, b = (np.array(side) for side in zip(*rows, strict=True))
    cut = data.draw(st.integers(0, len(rows)))
    whole = PairedNormalState.of(a, b)
    parts = PairedNormalState.of(a[:cut], b[:cut]) + PairedNormalState.of(a[cut:], b[cut:])
    expected = (
        sum(1 for u, v in rows if v < u),  # Python's float order: inf above every finite number, NaN unordered
        sum(1 for u, v in rows if v == u),
        sum(1 for u, v in rows if v > u),
    )
    assert (whole.wins, whole.ties, whole.losses) == (parts.wins, parts.ties, parts.losses) == expected


def test_cli_counts_infinite_losses(runner, tmp_path):
    """bce with --eps 0: p = 0 for label 1 (or p = 1 for label 0) is an infinite loss."""
    # row 1: both infinite (tie); row 2: A ln 2, B infinite (loss); row 3: A infinite, B ln 2 (win);
    # row 4: A ln 2 < B ln 4 (loss)
    (tmp_path / "a.csv").write_text("y,p\n1,0.0\n0,0.5\n1,0.0\n1,0.5\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("y,p\n1,0.0\n0,1.0\n1,0.5\n1,0.25\n", encoding="utf-8")
    args = ["compare", "bce", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--eps", "0", "-q"]
    done = runner.invoke(app, [*args, "-f", "json"])
    assert done.exit_code == 0
    doc = json.loads(done.stdout)
    assert (doc["wins"], doc["ties"], doc["losses"], doc["verdict"]) == (1, 1, 2, "undefined")
    assert doc["warnings"][0] == (
        "3 rows have an infinite or NaN loss in A or B, so the difference is undefined"
        " (wins, ties and losses count an infinite loss as higher than a finite one and leave out a NaN)"
    )
    table = runner.invoke(app, [*args, "-f", "table", "--color", "never"])
    assert table.exit_code == 0
    assert "rows where B's loss is lower: 1, equal: 1, higher: 2" in table.stdout.splitlines()
