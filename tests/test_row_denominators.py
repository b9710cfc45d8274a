"""Each row's whole denominator of the reduced mean, shared by the loss commands' intervals and `cecli compare`.

`uncertainty.spread.row_denominators` is the one place both take it from (issue 14): the product of the sample
weight and PyTorch's class weight of the label, or 1 per row for a mean over rows. A product that overflows is
``inf`` and makes the interval null, quietly: before, `cecli compare` printed NumPy's RuntimeWarning (with a
source line of cecli) on stderr.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from cecli.uncertainty.spread import row_denominators


@pytest.mark.parametrize(
    ("weights", "denominators", "n", "expected"),
    [
        (None, None, 3, None),  # no factors: the states take the weights (or 1)
        ([2.0, 3.0], None, 2, None),
        (None, "count", 3, [1.0, 1.0, 1.0]),  # Keras' and PyTorch's mean over rows
        ([2.0, 3.0], "count", 2, [1.0, 1.0]),  # the weights are in the numerator only
        (None, [0.5, 4.0], 2, [0.5, 4.0]),  # the class weight of each row's label
        ([2.0, 3.0], [0.5, 4.0], 2, [2.0 * 0.5, 3.0 * 4.0]),
        ([1e300, 1.0], [1e10, 1.0], 2, [math.inf, 1.0]),  # overflows to inf without a warning (warnings are errors)
    ],
)
def test_row_denominators_table(weights, denominators, n, expected):
    as_array = None if weights is None else np.array(weights)
    factors = denominators if denominators is None or isinstance(denominators, str) else np.array(denominators)
    x = row_denominators(as_array, factors, n)
    assert (x if x is None else x.tolist()) == expected


# Row 0's share is 1e300 * 1e10 (its label is class 0): it overflows. B's probability of the true class
# is lower than A's in every row, so B loses on each of the 4 rows.
ROWS = "y,p_0,p_1,q_0,q_1,w\n0,0.9,0.1,0.8,0.2,1e300\n1,0.3,0.7,0.4,0.6,1\n0,0.6,0.4,0.5,0.5,2\n1,0.2,0.8,0.3,0.7,1\n"
A_TRUE = [0.9, 0.7, 0.6, 0.8]
B_TRUE = [0.8, 0.6, 0.5, 0.7]
INFINITE_SHARE_WARNING = (
    "cecli: warning: 1 row has an infinite or NaN loss in A or B, so the difference is undefined (wins, ties and "
    "losses count an infinite loss as higher than a finite one and leave out a NaN)\n"
)


def _run(tmp_path, command: list[str], *options: str) -> subprocess.CompletedProcess:
    """``cecli COMMAND d.csv OPTIONS`` in a real process: NumPy's warnings reach its stderr as a user's would."""
    data = tmp_path / "d.csv"
    data.write_text(ROWS, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "cecli", *command, str(data), *options], capture_output=True, text=True, cwd=tmp_path
    )


def test_compare_with_an_overflowing_share_is_undefined_without_a_numpy_warning(tmp_path):
    done = _run(tmp_path, ["compare", "sparse"], "--pred-b", "q_*", "-y", "y", "-p", "p_*", "--weight-col", "w",
                "--class-weights", "1e10,1", "-f", "json")  # fmt: skip
    assert done.returncode == 0
    assert done.stderr == INFINITE_SHARE_WARNING
    document = json.loads(done.stdout)
    b_loses = sum(-math.log(b) > -math.log(a) for a, b in zip(A_TRUE, B_TRUE, strict=True))
    assert (document["difference"], document["stderr"], document["p_value"]) == (None, None, None)
    assert (document["ci"]["low"], document["ci"]["high"]) == (None, None)
    assert (document["wins"], document["ties"], document["losses"]) == (0, 0, b_loses)
    assert b_loses == 4


def test_loss_interval_with_an_overflowing_share_is_null_without_a_numpy_warning(tmp_path):
    done = _run(tmp_path, ["sparse"], "-y", "y", "-p", "p_*", "--weight-col", "w", "--class-weights", "1e10,1",
                "--ci", "95", "-f", "json")  # fmt: skip
    assert done.returncode == 0
    assert done.stderr == ""
    document = json.loads(done.stdout)
    assert (document["stderr"], document["ci"]["low"], document["ci"]["high"]) == (None, None, None)
