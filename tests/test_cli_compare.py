"""`cecli compare LOSS A B` (issue 15): a paired comparison of two models' losses on the same rows.

Every expected number is derived here from the formulas written out with NumPy, `math` and
`fractions` on per-sample losses this file computes itself (``-log p[label]`` for sparse, the
binary cross-entropy for bce); the resampling tests run their own NumPy implementation of the
paired bootstrap and of approximate randomization and allow for Monte-Carlo error.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest

import cecli
from cecli.cli import app

# Probability rows that sum to exactly 1 (dyadic), so no renormalisation or clipping changes them.
ROWS = [
    (0.5, 0.25, 0.25),
    (0.25, 0.5, 0.25),
    (0.125, 0.125, 0.75),
    (0.0625, 0.4375, 0.5),
    (0.75, 0.125, 0.125),
    (0.375, 0.5, 0.125),
    (0.25, 0.25, 0.5),
]


def _dump(seed: int, n: int, shift: float = 0.0):
    """Labels and two prediction tables: B's row puts `shift` more weight on the label class where it can."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    a = [ROWS[i] for i in rng.integers(0, len(ROWS), n)]
    b = [ROWS[i] for i in rng.integers(0, len(ROWS), n)]
    if shift:  # B: on a share of rows, the row that puts the most on the true class
        for i in np.flatnonzero(rng.random(n) < shift):
            b[i] = max(ROWS, key=lambda row, y=labels[i]: row[y])
    return labels.tolist(), a, b


def _write(path, labels, preds, *, weights=None, groups=None, prefix="p", extra=None):
    header = ["label"] + (["w"] if weights else []) + (["g"] if groups else [])
    header += [f"{prefix}_{j}" for j in range(3)] + ([f"q_{j}" for j in range(3)] if extra else [])
    lines = [",".join(header)]
    for i, y in enumerate(labels):
        cells = [str(y)] + ([repr(weights[i])] if weights else []) + ([groups[i]] if groups else [])
        cells += [repr(v) for v in preds[i]] + ([repr(v) for v in extra[i]] if extra else [])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _sparse_losses(labels, preds) -> np.ndarray:
    """``-log p[label]`` per row (PyTorch's NLL of probabilities)."""
    return np.array([-math.log(row[y]) for y, row in zip(labels, preds, strict=True)])


def _paired(la, lb, w=None):
    """D, se, p and the 95 % interval of the paired difference, straight from the formulas."""
    la, lb = np.asarray(la), np.asarray(lb)
    w = np.ones_like(la) if w is None else np.asarray(w, dtype=float)
    n = int(np.count_nonzero(w))
    # D exactly: (sum w lB - sum w lA) / sum w, in Fractions of the float losses
    exact = sum(Fraction(wi) * (Fraction(b) - Fraction(a)) for wi, a, b in zip(w, la, lb, strict=True))
    d = float(exact / sum(Fraction(wi) for wi in w))
    resid = w * lb - w * la - d * w
    se = math.sqrt(n / (n - 1) * float(np.sum(resid**2))) / float(np.sum(w))
    p = math.erfc(abs(d) / se / math.sqrt(2.0))
    z = NormalDist().inv_cdf(0.975)
    return d, se, p, (d - z * se, d + z * se)


def _json(runner, args):
    result = runner.invoke(app, ["compare", *args, "-f", "json"], prog_name="cecli")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return json.loads(result.stdout)


@pytest.fixture
def pair(tmp_path):
    labels, a, b = _dump(7, 80, shift=0.6)
    return labels, a, b, _write(tmp_path / "a.csv", labels, a), _write(tmp_path / "b.csv", labels, b)


def test_normal_difference_stderr_p_value_and_interval_equal_the_formulas(runner, pair):
    labels, a, b, path_a, path_b = pair
    la, lb = _sparse_losses(labels, a), _sparse_losses(labels, b)
    d, se, p, (low, high) = _paired(la, lb)
    doc = _json(runner, ["sparse", path_a, path_b])
    assert doc["test"] == "normal" and doc["resamples"] is None and doc["seed"] is None
    assert doc["difference"] == pytest.approx(d, rel=1e-12)
    assert doc["stderr"] == pytest.approx(se, rel=1e-12)
    assert doc["p_value"] == pytest.approx(p, rel=1e-9)
    assert doc["ci"] == {
        "level": 0.95,
        "low": pytest.approx(low, rel=1e-12),
        "high": pytest.approx(high, rel=1e-12),
        "method": "normal",
        "resamples": None,
        "seed": None,
    }
    # a and b are the loss command's summaries
    assert doc["a"]["value"] == pytest.approx(float(np.mean(la)), rel=1e-12)
    assert doc["b"]["value"] == pytest.approx(float(np.mean(lb)), rel=1e-12)
    assert doc["a"]["loss"] == doc["b"]["loss"] == "sparse" and doc["a"]["count"] == 80
    assert (doc["wins"], doc["ties"], doc["losses"]) == (
        int(np.sum(lb < la)),
        int(np.sum(lb == la)),
        int(np.sum(lb > la)),
    )
    assert doc["wins"] + doc["ties"] + doc["losses"] == 80 and doc["ties"] > 0  # equal rows do occur here
    verdict = "better" if p < 0.05 and d < 0 else "worse" if p < 0.05 else "no significant difference"
    assert doc["verdict"] == verdict


def test_the_library_call_gives_the_cli_numbers(runner, pair):
    _, _, _, path_a, path_b = pair
    doc = _json(runner, ["sparse", path_a, path_b])
    result = cecli.compare("sparse", path_a, path_b)
    assert isinstance(result, cecli.Comparison)
    assert (result.difference, result.stderr, result.p_value) == (doc["difference"], doc["stderr"], doc["p_value"])


def test_weighted_bce_uses_the_weighted_ratio_formula(runner, tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    y = rng.integers(0, 2, n).tolist()
    pa = (rng.integers(1, 16, n) / 16).tolist()
    pb = (rng.integers(1, 16, n) / 16).tolist()
    w = (rng.integers(0, 5, n) / 2).tolist()
    for name, preds in (("a.csv", pa), ("b.csv", pb)):
        text = "y,w,p\n" + "".join(f"{y[i]},{w[i]!r},{preds[i]!r}\n" for i in range(n))
        (tmp_path / name).write_text(text, encoding="utf-8")

    def bce(p):
        return np.array([-(yi * math.log(pi) + (1 - yi) * math.log(1 - pi)) for yi, pi in zip(y, p, strict=True)])

    d, se, p, _ = _paired(bce(pa), bce(pb), w)
    doc = _json(runner, ["bce", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "-y", "y", "-p", "p", "-w", "w"])
    assert doc["difference"] == pytest.approx(d, rel=1e-12)
    assert doc["stderr"] == pytest.approx(se, rel=1e-12)
    assert doc["p_value"] == pytest.approx(p, rel=1e-9)
    la, lb, wa = bce(pa), bce(pb), np.array(w)
    assert doc["wins"] == int(np.sum((lb < la) & (wa != 0)))  # rows of weight 0 take no part


def test_one_file_with_pred_b_equals_two_files(runner, tmp_path, pair):
    labels, a, b, path_a, path_b = pair
    both = _write(tmp_path / "both.csv", labels, a, extra=b)
    single = _json(runner, ["sparse", both, "-y", "label", "-p", "p_*", "--pred-b", "q_*"])
    double = _json(runner, ["sparse", path_a, path_b])
    for key in ("difference", "stderr", "p_value", "ci", "wins", "ties", "losses", "verdict"):
        assert single[key] == double[key], key
    assert single["b"]["input"]["prediction_columns"] == ["q_0", "q_1", "q_2"]


def test_by_gives_the_paired_statistics_of_each_group(runner, tmp_path):
    labels, a, b = _dump(11, 90, shift=0.4)
    groups = ["x" if i % 3 else "y" for i in range(90)]
    path_a = _write(tmp_path / "a.csv", labels, a, groups=groups)
    path_b = _write(tmp_path / "b.csv", labels, b, groups=groups)
    doc = _json(runner, ["sparse", path_a, path_b, "--by", "g"])
    la, lb = _sparse_losses(labels, a), _sparse_losses(labels, b)
    assert [entry["key"] for entry in doc["groups"]] == [{"g": "x"}, {"g": "y"}]
    assert [entry["key"] for entry in doc["a"]["by"]] == [{"g": "x"}, {"g": "y"}]
    for entry in doc["groups"]:
        rows = np.array([g == entry["key"]["g"] for g in groups])
        d, se, p, (low, high) = _paired(la[rows], lb[rows])
        assert entry["difference"] == pytest.approx(d, rel=1e-12)
        assert entry["stderr"] == pytest.approx(se, rel=1e-12)
        assert entry["p_value"] == pytest.approx(p, rel=1e-9)
        assert entry["ci"]["low"] == pytest.approx(low, rel=1e-12)
        assert entry["wins"] == int(np.sum(lb[rows] < la[rows]))
        assert entry["losses"] == int(np.sum(lb[rows] > la[rows]))
    d, _, _, _ = _paired(la, lb)
    assert doc["difference"] == pytest.approx(d, rel=1e-12)


def test_table_shows_a_b_the_difference_and_a_verdict(runner, pair):
    _, _, _, path_a, path_b = pair
    doc = _json(runner, ["sparse", path_a, path_b])
    result = runner.invoke(app, ["compare", "sparse", path_a, path_b, "-f", "table"], prog_name="cecli")
    assert result.exit_code == 0, result.output
    assert f"{doc['a']['value']:.6f}" in result.stdout and f"{doc['b']['value']:.6f}" in result.stdout
    assert f"[{doc['ci']['low']:.6f}, {doc['ci']['high']:.6f}]" in result.stdout
    assert f"]   {doc['p_value']:.3g}  " in result.stdout  # three significant digits, never 0.000000
    wins = f"rows where B's loss is lower: {doc['wins']}, equal: {doc['ties']}, higher: {doc['losses']}\n"
    assert wins in result.stdout
    assert result.stdout.endswith(f"verdict: B is significantly better than A at 95% (p = {doc['p_value']:.3g})\n")


def test_labels_that_differ_exit_3_naming_b_its_line_and_column(runner, tmp_path, pair):
    labels, a, b, path_a, _ = pair
    changed = list(labels)
    changed[5] = (labels[5] + 1) % 3
    path_b = _write(tmp_path / "b.csv", changed, b)
    text = (tmp_path / "b.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "b.csv").write_text("".join(text[:3] + ["\n"] + text[3:]), encoding="utf-8")  # a blank line 4
    result = runner.invoke(app, ["compare", "sparse", path_a, path_b, "-f", "json"], prog_name="cecli")
    # record 6 is line 7 of A (header = line 1) and line 8 of B (after the blank line)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"cecli: error: {path_b}:8:label: label {changed[5]} differs from A's {labels[5]} ({path_a}:7)"
        " (A and B must hold the same rows in the same order)\n"
    )


def test_weights_that_differ_exit_3(runner, tmp_path, pair):
    labels, a, b, _, _ = pair
    w = [1.0] * len(labels)
    path_a = _write(tmp_path / "wa.csv", labels, a, weights=w)
    path_b = _write(tmp_path / "wb.csv", labels, b, weights=[*w[:9], 2.5, *w[10:]])
    result = runner.invoke(app, ["compare", "sparse", path_a, path_b, "-w", "w"], prog_name="cecli")
    assert result.exit_code == 3
    assert result.stderr == (
        f"cecli: error: {path_b}:11:w: weight 2.5 differs from A's 1 ({path_a}:11)"
        " (A and B must hold the same rows in the same order)\n"
    )


@pytest.mark.parametrize("shorter", ["A", "B"])
def test_row_counts_that_differ_exit_3_naming_the_shorter_file(runner, tmp_path, pair, shorter):
    labels, a, b, path_a, path_b = pair
    short = _write(tmp_path / "short.csv", labels[:50], (a if shorter == "A" else b)[:50])
    args = [short, path_b] if shorter == "A" else [path_a, short]
    longer, longer_path = ("B", path_b) if shorter == "A" else ("A", path_a)
    result = runner.invoke(app, ["compare", "sparse", *args, "--batch-rows", "7"], prog_name="cecli")
    assert result.exit_code == 3
    assert result.stderr == (
        f"cecli: error: {short}: {shorter} has 50 rows, fewer than {longer} ({longer_path}, 80 rows)"
        " (A and B must hold the same rows in the same order)\n"
    )


def test_fail_if_worse_exits_1_with_the_difference_interval_and_p_value(runner, pair):
    _, _, _, path_a, path_b = pair
    doc = _json(runner, ["sparse", path_b, path_a])  # B is the worse model now
    assert doc["verdict"] == "worse"
    result = runner.invoke(app, ["compare", "sparse", path_b, path_a, "--fail-if-worse"], prog_name="cecli")
    assert result.exit_code == 1
    ci = doc["ci"]
    assert result.stderr == (
        f"cecli: gate failed: B is significantly worse than A at 95% (p = {doc['p_value']:.3g}):"
        f" difference {doc['difference']!r}, 95% interval [{ci['low']!r}, {ci['high']!r}],"
        f" p = {doc['p_value']!r} (normal test) (--fail-if-worse)\n"
    )
    # the better model passes the gate; a level at which the difference is not significant passes too
    assert runner.invoke(app, ["compare", "sparse", path_a, path_b, "--fail-if-worse"]).exit_code == 0
    level = 100 * (1 - doc["p_value"] / 2)  # 1 - level is below the p-value
    passing = runner.invoke(app, ["compare", "sparse", path_b, path_a, "--fail-if-worse", "--ci", f"{level}"])
    assert passing.exit_code == 0


def test_fail_above_and_below_apply_to_the_difference(runner, pair):
    _, _, _, path_a, path_b = pair
    doc = _json(runner, ["sparse", path_a, path_b])
    d = doc["difference"]
    assert d < 0
    above = runner.invoke(app, ["compare", "sparse", path_a, path_b, "--fail-above", repr(2 * d)])
    assert above.exit_code == 1
    ci = doc["ci"]
    assert above.stderr == (
        f"cecli: gate failed: difference > {2 * d!r} (--fail-above); difference {d!r},"
        f" 95% interval [{ci['low']!r}, {ci['high']!r}], p = {doc['p_value']!r} (normal test)\n"
    )
    assert runner.invoke(app, ["compare", "sparse", path_a, path_b, "--fail-above", repr(d)]).exit_code == 0
    assert runner.invoke(app, ["compare", "sparse", path_a, path_b, "--fail-below", repr(d * 2)]).exit_code == 0
    assert runner.invoke(app, ["compare", "sparse", path_a, path_b, "--fail-below", repr(d / 2)]).exit_code == 1


def _bootstrap(la, lb, resamples, rng):
    """The paired Poisson bootstrap written out: resample weights c ~ Poisson(1) shared by A and B."""
    counts = rng.poisson(1.0, size=(resamples, la.size))
    diffs = counts @ (lb - la) / counts.sum(axis=1)
    low, high = np.quantile(diffs, [0.025, 0.975])
    share = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
    return min(1.0, 2 * (share + 1) / (resamples + 1)), low, high


def _randomization(la, lb, trials, rng):
    """Approximate randomization: each row's two losses swapped with probability 1/2 (Noreen 1989)."""
    delta = lb - la
    signs = rng.choice([-1.0, 1.0], size=(trials, la.size))
    observed = abs(delta.sum())
    return (np.sum(np.abs(signs @ delta) >= observed) + 1) / (trials + 1)


@pytest.fixture
def moderate(tmp_path):
    """A comparison whose p-value is neither tiny nor near 1, so that Monte-Carlo agreement means something."""
    labels, a, b = _dump(5, 60, shift=0.25)
    return labels, a, b, _write(tmp_path / "a.csv", labels, a), _write(tmp_path / "b.csv", labels, b)


def test_bootstrap_p_value_and_interval_within_monte_carlo_error_of_numpy(runner, moderate):
    labels, a, b, path_a, path_b = moderate
    la, lb = _sparse_losses(labels, a), _sparse_losses(labels, b)
    n = 4000
    p, low, high = _bootstrap(la, lb, n, np.random.default_rng(0))
    assert 0.02 < p < 0.6
    doc = _json(runner, ["sparse", path_a, path_b, "--bootstrap", str(n), "--seed", "12"])
    assert (doc["test"], doc["resamples"], doc["seed"]) == ("bootstrap", n, 12)
    assert (doc["ci"]["method"], doc["ci"]["resamples"], doc["ci"]["seed"]) == ("bootstrap", n, 12)
    share_error = math.sqrt(p / 2 * (1 - p / 2) / n)  # the standard error of the share, p = 2 share
    assert abs(doc["p_value"] - p) < 2 * 5 * share_error * math.sqrt(2)
    se = _paired(la, lb)[1]
    assert doc["ci"]["low"] == pytest.approx(low, abs=0.15 * se)
    assert doc["ci"]["high"] == pytest.approx(high, abs=0.15 * se)
    assert doc["stderr"] == pytest.approx(se, rel=1e-12)  # the normal standard error is reported with every test


def test_randomization_p_value_within_monte_carlo_error_of_numpy(runner, moderate):
    labels, a, b, path_a, path_b = moderate
    la, lb = _sparse_losses(labels, a), _sparse_losses(labels, b)
    n = 4000
    p = _randomization(la, lb, n, np.random.default_rng(1))
    assert 0.02 < p < 0.6
    doc = _json(runner, ["sparse", path_a, path_b, "--randomization", str(n)])
    assert (doc["test"], doc["resamples"], doc["seed"]) == ("randomization", n, 0)
    assert abs(doc["p_value"] - p) < 5 * math.sqrt(p * (1 - p) / n) * math.sqrt(2)
    d, se, _, (low, high) = _paired(la, lb)
    assert doc["ci"]["low"] == pytest.approx(low, rel=1e-12)  # the interval stays the normal one
    assert (doc["ci"]["method"], doc["ci"]["resamples"], doc["ci"]["seed"]) == ("normal", None, None)


def test_identical_models_have_no_difference(runner, pair):
    _, _, _, path_a, _ = pair
    for extra, p in (([], 1.0), (["--randomization", "50"], 1.0), (["--bootstrap", "50"], None)):
        doc = _json(runner, ["sparse", path_a, path_a, *extra])
        assert (doc["difference"], doc["stderr"], doc["wins"], doc["losses"], doc["ties"]) == (0.0, 0.0, 0, 0, 80)
        assert doc["verdict"] == "no significant difference"
        if p is not None:
            assert doc["p_value"] == p


def _numbers(doc: dict) -> dict:
    keys = ("difference", "stderr", "ci", "p_value", "wins", "ties", "losses", "verdict", "groups")
    return {
        **{k: doc.get(k) for k in keys},
        "a": doc["a"]["value"],
        "b": doc["b"]["value"],
        "a_by": doc["a"].get("by"),
    }


@pytest.mark.parametrize("test", [[], ["--bootstrap", "300", "--seed", "5"], ["--randomization", "300", "--seed", "5"]])
def test_same_output_for_any_batch_size_and_file_split(runner, tmp_path, test):
    labels, a, b = _dump(13, 45, shift=0.3)
    groups = ["x" if i % 4 else "y" for i in range(45)]
    path_a = _write(tmp_path / "a.csv", labels, a, groups=groups)
    path_b = _write(tmp_path / "b.csv", labels, b, groups=groups)
    common = ["--by", "g", *test]
    whole = _json(runner, ["sparse", path_a, path_b, *common])
    for rows in ("1", "7", "65536"):
        docs = _json(runner, ["sparse", path_a, path_b, "--batch-rows", rows, *common])
        assert docs == whole, rows  # byte for byte: the same files
    # A in three files, B in two, split at other rows
    (tmp_path / "pa").mkdir()
    (tmp_path / "pb").mkdir()
    for k, (start, stop) in enumerate([(0, 10), (10, 31), (31, 45)]):
        _write(tmp_path / "pa" / f"part-{k}.csv", labels[start:stop], a[start:stop], groups=groups[start:stop])
    for k, (start, stop) in enumerate([(0, 22), (22, 45)]):
        _write(tmp_path / "pb" / f"part-{k}.csv", labels[start:stop], b[start:stop], groups=groups[start:stop])
    folder, glob = str(tmp_path / "pa"), str(tmp_path / "pb" / "part-*.csv")
    split = _json(runner, ["sparse", folder, glob, "--batch-rows", "4", *common])
    assert _numbers(split) == _numbers(whole)


def test_stdin_is_a_or_b_but_not_both(runner, pair):
    _, _, _, path_a, path_b = pair
    expected = _json(runner, ["sparse", path_a, path_b])
    with open(path_a, encoding="utf-8") as f:
        from_stdin = runner.invoke(app, ["compare", "sparse", "-", path_b, "-f", "json"], input=f.read())
    assert from_stdin.exit_code == 0, from_stdin.output
    assert _numbers(json.loads(from_stdin.stdout)) == _numbers(expected)
    with open(path_b, encoding="utf-8") as f:
        from_stdin = runner.invoke(app, ["compare", "sparse", path_a, "-", "-f", "json"], input=f.read())
    assert _numbers(json.loads(from_stdin.stdout)) == _numbers(expected)
    twice = runner.invoke(app, ["compare", "sparse", "-", "-"], input="label,p_0\n")
    assert (twice.exit_code, twice.stderr) == (
        2,
        "cecli: error: stdin (-) can be read only once (give the other input as a file path)\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bootstrap", "10", "--randomization", "10"], "--bootstrap cannot be combined with --randomization"
         " (each is the test) (give one)"),
        (["--ci", "100"], "--ci must be a percentage from 1 to below 100; received 100.0 (give a percentage"
         " such as 95)"),
        (["--ci", "0.95"], "--ci must be a percentage from 1 to below 100; received 0.95 (give the level as a"
         " percentage: --ci 95)"),
        (["--randomization", "0"], "--randomization needs 1 to 1,000,000 resamples; received 0 (1000 or more for a"
         " 95 % interval)"),
        (["--seed", "3"], "--seed is for --bootstrap; the normal interval draws nothing (add --bootstrap N)"),
        (["-f", "csv"], "cecli compare prints a table or JSON, not -f csv (use -f table or -f json)"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(runner, pair, args, message):
    _, _, _, path_a, path_b = pair
    result = runner.invoke(app, ["compare", "sparse", path_a, path_b, *args], prog_name="cecli")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"cecli: error: {message}\n")


def test_compare_takes_the_loss_options_of_its_loss(runner, pair):
    _, _, _, path_a, path_b = pair
    bce_only = runner.invoke(app, ["compare", "sparse", path_a, path_b, "--pos-weight", "2"], prog_name="cecli")
    assert bce_only.exit_code == 2 and "No such option: --pos-weight" in bce_only.stderr
    smoothed = _json(runner, ["sparse", path_a, path_b, "--label-smoothing", "0.1"])
    assert smoothed["a"]["options"]["label_smoothing"] == 0.1
    assert smoothed["difference"] == pytest.approx(smoothed["b"]["value"] - smoothed["a"]["value"], abs=1e-15)


def _split(tmp_path, labels, a, b, groups, bounds):
    for side, preds in (("da", a), ("db", b)):
        (tmp_path / side).mkdir()
        for k, (start, stop) in enumerate(bounds):
            _write(tmp_path / side / f"part-{k}.csv", labels[start:stop], preds[start:stop], groups=groups[start:stop])
    return str(tmp_path / "da"), str(tmp_path / "db")


def test_the_dask_engine_pairs_file_i_of_a_with_file_i_of_b_and_gives_the_local_numbers(runner, tmp_path):
    pytest.importorskip("distributed")
    labels, a, b = _dump(17, 50, shift=0.3)
    groups = ["x" if i % 3 else "y" for i in range(50)]
    path_a = _write(tmp_path / "a.csv", labels, a, groups=groups)
    path_b = _write(tmp_path / "b.csv", labels, b, groups=groups)
    folder_a, folder_b = _split(tmp_path, labels, a, b, groups, [(0, 12), (12, 40), (40, 50)])
    common = ["--by", "g", "--bootstrap", "200", "--seed", "9"]
    local = _json(runner, ["sparse", path_a, path_b, *common])
    dask = _json(runner, ["sparse", folder_a, folder_b, *common, "--engine", "dask"])
    assert _numbers(dask) == _numbers(local)
    assert dask["a"]["input"]["paths"] == [str(tmp_path / "da" / f"part-{k}.csv") for k in range(3)]


def test_the_dask_engine_refuses_inputs_split_differently(runner, tmp_path, pair):
    labels, a, b, _, path_b = pair
    folder_a, _ = _split(tmp_path, labels, a, b, [""] * len(labels), [(0, 40), (40, 80)])
    result = runner.invoke(app, ["compare", "sparse", folder_a, path_b, "--engine", "dask"], prog_name="cecli")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "cecli: error: --engine dask pairs A's files with B's one by one, but A has 2 files and B 1"
        " (split A and B the same way, or use --engine local)\n"
    )


def test_keras_weighted_mean_divides_by_the_row_count_in_the_difference_too(runner, tmp_path):
    y, w, pa, pb = [1, 0, 1, 1], [2.0, 0.0, 1.0, 0.5], [0.5, 0.25, 0.75, 0.125], [0.25, 0.5, 0.5, 0.5]
    for name, preds in (("a.csv", pa), ("b.csv", pb)):
        (tmp_path / name).write_text("y,w,p\n" + "".join(f"{y[i]},{w[i]},{preds[i]}\n" for i in range(4)))

    def bce(p):  # Keras clips to [1e-7, 1 - 1e-7]; nothing here comes near
        return np.array([-(yi * math.log(pi) + (1 - yi) * math.log(1 - pi)) for yi, pi in zip(y, p, strict=True)])

    la, lb = bce(pa), bce(pb)
    u, v, x = np.array(w) * la, np.array(w) * lb, np.ones(4)  # Keras: sum(w l) / N
    d = float(np.sum(v - u)) / 4
    se = math.sqrt(4 / 3 * float(np.sum((v - u - d * x) ** 2))) / 4
    args = ["bce", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "-w", "w", "--like", "keras"]
    doc = _json(runner, args)
    assert doc["a"]["denominator"] == 4.0
    assert doc["difference"] == pytest.approx(d, rel=1e-12)
    assert doc["stderr"] == pytest.approx(se, rel=1e-12)


def test_labels_from_a_labels_file_and_a_b_without_labels(runner, tmp_path, pair):
    labels, a, b, path_a, path_b = pair
    expected = _json(runner, ["sparse", path_a, path_b])
    (tmp_path / "y.csv").write_text("label\n" + "".join(f"{v}\n" for v in labels), encoding="utf-8")
    bare_a = tmp_path / "bare_a.csv"
    bare_a.write_text("p_0,p_1,p_2\n" + "".join(",".join(map(repr, row)) + "\n" for row in a), encoding="utf-8")
    bare_b = tmp_path / "bare_b.csv"
    bare_b.write_text("p_0,p_1,p_2\n" + "".join(",".join(map(repr, row)) + "\n" for row in b), encoding="utf-8")
    from_file = _json(runner, ["sparse", str(bare_a), path_b, "--labels", str(tmp_path / "y.csv"), "-y", "label"])
    without = _json(runner, ["sparse", path_a, str(bare_b), "-y", "label", "-p", "p_*"])
    assert _numbers(from_file) == _numbers(expected) == _numbers(without)


def test_a_parquet_and_b_csv_give_the_csv_numbers(runner, tmp_path, pair):
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels, a, _, path_a, path_b = pair
    table = pa.table({"label": labels, **{f"p_{j}": [row[j] for row in a] for j in range(3)}})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=9)
    assert _numbers(_json(runner, ["sparse", str(tmp_path / "a.parquet"), path_b])) == _numbers(
        _json(runner, ["sparse", path_a, path_b])
    )


def test_an_infinite_loss_makes_the_comparison_undefined_and_fails_the_gate(runner, tmp_path):
    (tmp_path / "a.csv").write_text("y,p\n1,0.5\n0,0.25\n1,0.75\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("y,p\n1,0.0\n0,0.25\n1,0.5\n", encoding="utf-8")
    args = ["compare", "bce", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--eps", "0", "-q"]
    doc = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    assert (doc["difference"], doc["stderr"], doc["p_value"], doc["verdict"]) == (None, None, None, "undefined")
    # row 1: B's loss is infinite (-ln 0), A's ln 2: a loss for B; row 2 ties; row 3: A's ln(4/3) < B's ln 2
    assert (doc["wins"], doc["ties"], doc["losses"]) == (0, 1, 2)
    assert doc["warnings"][0] == (
        "1 row has an infinite or NaN loss in A or B, so the difference is undefined"
        " (wins, ties and losses count an infinite loss as higher than a finite one and leave out a NaN)"
    )
    loud = runner.invoke(app, [*args[:-1], "-f", "json"])
    assert loud.stderr == (
        "cecli: warning: B: 1 of 3 losses are infinite (a probability of exactly 0 or 1 on the wrong side of a label;"
        " --eps 0 turns off clipping)\n"
        f"cecli: warning: {doc['warnings'][0]}\n"
    )
    gate = runner.invoke(app, [*args, "--fail-if-worse"])
    assert gate.exit_code == 1
    assert gate.stderr == (
        "cecli: gate failed: the comparison is undefined, so --fail-if-worse cannot pass: difference nan,"
        " 95% interval [nan, nan], p = nan (normal test)\n"
    )


def test_the_readme_ci_gate_in_a_real_process(tmp_path):
    """`cecli compare sparse base.parquet cand.parquet -y label -p 'p_*' --fail-if-worse` as README shows it."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    labels, a, b = _dump(7, 80, shift=0.6)  # b is clearly better (test_cli_compare's `pair`)
    for name, preds in (("base.parquet", a), ("cand.parquet", b)):
        table = pa.table({"label": labels, **{f"p_{j}": [row[j] for row in preds] for j in range(3)}})
        pq.write_table(table, tmp_path / name)
    command = [sys.executable, "-m", "cecli", "compare", "sparse", "-y", "label", "-p", "p_*", "--fail-if-worse"]
    better = subprocess.run([*command, "base.parquet", "cand.parquet"], cwd=tmp_path, capture_output=True, text=True)
    assert (better.returncode, better.stderr) == (0, "")
    assert json.loads(better.stdout)["verdict"] == "better"
    worse = subprocess.run([*command, "cand.parquet", "base.parquet"], cwd=tmp_path, capture_output=True, text=True)
    assert worse.returncode == 1
    doc = json.loads(worse.stdout)
    ci = doc["ci"]
    assert worse.stderr == (
        f"cecli: gate failed: B is significantly worse than A at 95% (p = {doc['p_value']:.3g}):"
        f" difference {doc['difference']!r}, 95% interval [{ci['low']!r}, {ci['high']!r}],"
        f" p = {doc['p_value']!r} (normal test) (--fail-if-worse)\n"
    )


@pytest.mark.parametrize("columns", [60, 100])
@pytest.mark.parametrize("loss", ["bce", "sparse", "nll"])
def test_compare_help_prints_every_flag_whole_with_the_exit_codes(loss, columns):
    import os
    import re
    import subprocess
    import sys

    from typer.main import get_command

    command = get_command(app).commands["compare"].commands[loss]
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50"}
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "compare", loss, "--help"], capture_output=True, text=True, env=env
    )
    assert (done.returncode, done.stderr) == (0, "")
    printed = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", done.stdout))
    flags = {flag for param in command.params for flag in param.opts if flag.startswith("-")}
    assert sorted(flags - printed) == []
    assert {"--ci", "--bootstrap", "--randomization", "--seed", "--pred-b", "--fail-if-worse"} <= flags
    assert "--per-class" not in flags and "--out" not in flags and "--reduction" not in flags
    assert max(map(len, done.stdout.splitlines())) <= min(columns, 80) - 2
    assert " ".join(done.stdout.split()).endswith(
        "Exit codes: 0 ok; 1 a --fail-if-worse, --fail-above or --fail-below gate failed (only then); 2 usage"
        " error; 3 bad or unreadable input, or output that cannot be written; 4 internal error (a bug);"
        " 130 interrupted; 141 stdout closed early; 143 terminated."
    )


@pytest.mark.parametrize("test", [{}, {"bootstrap": 300}, {"randomization": 300}])
def test_swapping_a_and_b_negates_the_difference_and_swaps_wins_and_losses(tmp_path, test):
    labels, a, b = _dump(23, 70, shift=0.3)
    groups = ["x" if i % 2 else "y" for i in range(70)]
    path_a = _write(tmp_path / "a.csv", labels, a, groups=groups)
    path_b = _write(tmp_path / "b.csv", labels, b, groups=groups)
    forward = cecli.compare("sparse", path_a, path_b, by="g", **test)
    backward = cecli.compare("sparse", path_b, path_a, by="g", **test)
    pairs = [(forward.paired, backward.paired)] + [
        (f, b) for (_, f), (_, b) in zip(forward.groups, backward.groups, strict=True)
    ]
    for f, b in pairs:
        assert b.difference == -f.difference  # exact: the same sums, negated
        assert b.stderr == f.stderr
        assert b.p_value == f.p_value  # the same draws; the tests are two-sided
        assert (b.normal.wins, b.normal.ties, b.normal.losses) == (f.normal.losses, f.normal.ties, f.normal.wins)
        low, high = f.interval
        assert b.interval == pytest.approx((-high, -low), rel=1e-12)
        flipped = {"better": "worse", "worse": "better"}
        assert b.verdict == flipped.get(f.verdict, f.verdict)


def test_a_folder_that_ends_early_is_named_as_given(runner, tmp_path):
    labels, a, b = _dump(29, 30)
    folder_a, folder_b = _split(tmp_path, labels, a, b, [""] * 30, [(0, 10), (10, 30)])
    (tmp_path / "db" / "part-1.csv").write_text(
        "\n".join((tmp_path / "db" / "part-1.csv").read_text(encoding="utf-8").splitlines()[:-4]) + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["compare", "sparse", folder_a, folder_b], prog_name="cecli")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"cecli: error: {folder_b}: B has 26 rows, fewer than A ({folder_a}, 30 rows)"
        " (A and B must hold the same rows in the same order)\n"
    )
