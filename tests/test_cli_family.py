"""The cross-entropy family through the CLI (issue 16): `cecli nll`, focal and GCE options.

Every expected number is derived here from the published formula written out with `math`
(PyTorch NLLLoss, exp of the mean NLL for perplexity), never from cecli's own output.
"""

from __future__ import annotations

import json
import math

import pytest

from cecli.cli import app

TOKENS = [("a", -0.5), ("a", -1.5), ("a", -0.1), ("b", -2.0), ("b", -0.25)]


def _json(runner, args: list[str]) -> dict:
    result = runner.invoke(app, [*args, "-f", "json"], prog_name="cecli")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return json.loads(result.stdout)


def _tokens(tmp_path, rows=TOKENS, name="tokens.csv"):
    path = tmp_path / name
    path.write_text("doc_id,token_logprob\n" + "".join(f"{d},{v!r}\n" for d, v in rows), encoding="utf-8")
    return str(path)


def test_nll_of_one_log_prob_column_is_minus_the_value_and_perplexity_is_token_weighted(runner, tmp_path):
    document = _json(runner, ["nll", _tokens(tmp_path), "-p", "token_logprob"])
    nll = [-v for _, v in TOKENS]
    assert document["per_sample"] == nll
    mean = math.fsum(nll) / len(nll)
    assert document["value"] == pytest.approx(mean, rel=1e-15, abs=0)
    assert document["perplexity"] == pytest.approx(math.exp(mean), rel=1e-15, abs=0)
    assert document["input"]["label_columns"] == []


def test_nll_by_group_gives_each_groups_perplexity_and_their_mean_apart_from_the_corpus_one(runner, tmp_path):
    document = _json(runner, ["nll", _tokens(tmp_path), "-p", "token_logprob", "--by", "doc_id"])
    groups = {}
    for doc, v in TOKENS:
        groups.setdefault(doc, []).append(-v)
    expected = {doc: math.exp(math.fsum(values) / len(values)) for doc, values in groups.items()}
    got = {entry["key"]["doc_id"]: entry["perplexity"] for entry in document["by"]}
    assert got == pytest.approx(expected, rel=1e-15, abs=0)
    assert document["group_perplexity_mean"] == pytest.approx(sum(expected.values()) / 2, rel=1e-15, abs=0)
    corpus = math.exp(math.fsum(-v for _, v in TOKENS) / len(TOKENS))
    assert document["perplexity"] == pytest.approx(corpus, rel=1e-15, abs=0)
    assert document["group_perplexity_mean"] > document["perplexity"]  # Jensen, with unequal group means


def test_nll_in_bits_gives_the_same_perplexity(runner, tmp_path):
    document = _json(runner, ["nll", _tokens(tmp_path), "-p", "token_logprob", "--base", "2"])
    mean_nats = math.fsum(-v for _, v in TOKENS) / len(TOKENS)
    assert document["value"] == pytest.approx(mean_nats / math.log(2), rel=1e-15, abs=0)
    assert document["perplexity"] == pytest.approx(math.exp(mean_nats), rel=1e-14, abs=0)


def test_nll_minus_inf_is_an_honest_inf(runner, tmp_path):
    path = _tokens(tmp_path, [("a", -0.5), ("a", float("-inf"))])
    result = runner.invoke(app, ["nll", path, "-p", "token_logprob", "-f", "json"], prog_name="cecli")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["per_sample"] == [0.5, None]
    assert document["nonfinite_rows"] == [{"row": 2, "loss": "inf"}]
    assert document["value"] is None and "value is inf (written as null)" in document["warnings"]


@pytest.mark.parametrize(
    ("rows", "line", "shown"),
    [
        ([("a", -0.5), ("a", 0.5)], 3, "log-probability 0.5 is above 0"),
        ([("a", -0.5), ("b", -0.1), ("b", float("nan"))], 4, "log-probability is NaN"),
    ],
)
def test_nll_positive_or_nan_log_prob_is_bad_data_at_file_row_column(runner, tmp_path, rows, line, shown):
    path = _tokens(tmp_path, rows)
    result = runner.invoke(app, ["nll", path, "-p", "token_logprob"], prog_name="cecli")
    assert result.exit_code == 3
    assert result.stderr == (
        f"cecli: error: {path}:{line}:token_logprob: {shown} (log-probabilities are natural logs <= 0; "
        "for probabilities or logits use `cecli sparse` or `cecli softmax`)\n"
    )


FULL_ROWS = [(0, [-0.5, -1.0, -3.0]), (1, [-2.0, -0.25, -4.0]), (2, [-1.0, -1.0, -1.5]), (1, [-0.75, -1.25, -2.0])]


def _full(tmp_path):
    path = tmp_path / "full.csv"
    path.write_text(
        "y,lp_0,lp_1,lp_2\n" + "".join(f"{y},{','.join(map(repr, row))}\n" for y, row in FULL_ROWS), encoding="utf-8"
    )
    return str(path)


@pytest.mark.parametrize(
    ("weights", "ignore"),
    [(None, None), ((1.0, 3.0, 0.5), None), ((1.0, 3.0, 0.5), 1), (None, 0), ((2.0, 0.0, 1.0), None)],
)
def test_nll_of_full_rows_is_pytorch_nllloss(runner, tmp_path, weights, ignore):
    """PyTorch NLLLoss: l_i = -w[y_i] * lp[i, y_i]; mean = sum(l_i) / sum(w[y_i]) over rows not ignored."""
    args = ["nll", _full(tmp_path), "-y", "y", "-p", "lp_*"]
    if weights:
        args += ["--class-weights", ",".join(map(str, weights))]
    if ignore is not None:
        args += ["--ignore-index", str(ignore)]
    document = _json(runner, args)
    w = weights or (1.0, 1.0, 1.0)
    kept = [(y, row) for y, row in FULL_ROWS if y != ignore]
    losses = [-w[y] * row[y] if w[y] else 0.0 for y, row in kept]
    mean = math.fsum(losses) / math.fsum(w[y] for y, _ in kept)
    assert document["value"] == pytest.approx(mean, rel=1e-15, abs=0)
    assert document["perplexity"] == pytest.approx(math.exp(mean), rel=1e-15, abs=0)
    assert [v for v in document["per_sample"] if v is not None] == pytest.approx(losses, rel=1e-15, abs=0)
    assert document["count"] == len(kept)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--like", "torch"], "No such option: --like"),
        (["--from-logits"], "No such option: --from-logits"),
        (["--label-smoothing", "0.1"], "No such option: --label-smoothing"),
    ],
)
def test_nll_refuses_options_that_do_not_apply(runner, tmp_path, args, message):
    result = runner.invoke(app, ["nll", _tokens(tmp_path), "-p", "token_logprob", *args], prog_name="cecli")
    assert result.exit_code == 2
    assert message in result.stderr


def test_nll_without_labels_needs_one_column(runner, tmp_path):
    result = runner.invoke(app, ["nll", _full(tmp_path), "-p", "lp_*"], prog_name="cecli")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"cecli: error: {tmp_path / 'full.csv'}: 3 prediction columns and no labels")


# --- focal loss (Lin et al. 2017) -----------------------------------------------------------------------------

BINARY = [(1, 0.9), (0, 0.2), (1, 0.3), (0, 0.75)]
LOGITS = [(1, 2.0), (0, -1.0), (1, -0.5), (0, 3.0)]
ROWS = [(0, [0.7, 0.2, 0.1]), (1, [0.1, 0.6, 0.3]), (2, [0.5, 0.25, 0.25])]


def _binary(tmp_path, rows):
    path = tmp_path / "binary.csv"
    path.write_text("y,p\n" + "".join(f"{y},{p!r}\n" for y, p in rows), encoding="utf-8")
    return str(path)


def _onehot(tmp_path, sparse: bool):
    path = tmp_path / ("sparse.csv" if sparse else "onehot.csv")
    head = "y,p_0,p_1,p_2\n" if sparse else "y_0,y_1,y_2,p_0,p_1,p_2\n"
    lines = [
        (str(y) if sparse else ",".join("1" if c == y else "0" for c in range(3))) + "," + ",".join(map(repr, row))
        for y, row in ROWS
    ]
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _keras_binary_focal(y, p, gamma, alpha=None):
    """Keras BinaryFocalCrossentropy per sample: bce * (1 - p_t)^gamma, times alpha_t with class balancing."""
    bce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    loss = (1 - p_t) ** gamma * bce
    return loss if alpha is None else (y * alpha + (1 - y) * (1 - alpha)) * loss


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 1.0])
def test_bce_focal_is_keras_binary_focal_crossentropy(runner, tmp_path, gamma, alpha):
    args = ["bce", _binary(tmp_path, BINARY), "--focal-gamma", str(gamma), "--like", "keras"]
    if alpha is not None:
        args += ["--class-balancing", "--focal-alpha", str(alpha)]
    document = _json(runner, args)
    expected = [_keras_binary_focal(y, p, gamma, alpha) for y, p in BINARY]
    assert document["per_sample"] == pytest.approx(expected, rel=1e-13, abs=1e-300)
    assert document["value"] == pytest.approx(math.fsum(expected) / len(expected), rel=1e-13, abs=1e-300)
    assert document["options"]["focal_gamma"] == gamma
    assert document["options"]["focal_alpha"] == (0.25 if alpha is None else alpha)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.0, 1.0])
def test_bce_focal_like_torch_is_torchvision_sigmoid_focal_loss(runner, tmp_path, gamma, alpha):
    """torchvision.ops.sigmoid_focal_loss: ce_loss * (1 - p_t)^gamma * (alpha y + (1 - alpha)(1 - y)), mean."""
    args = ["bce", _binary(tmp_path, LOGITS), "--from-logits", "--focal-gamma", str(gamma), "--like", "torch"]
    if alpha is not None:
        args += ["--focal-alpha", str(alpha)]
    document = _json(runner, args)
    a = 0.25 if alpha is None else alpha
    expected = []
    for y, x in LOGITS:
        p = 1 / (1 + math.exp(-x))
        ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
        p_t = p * y + (1 - p) * (1 - y)
        expected.append(ce * (1 - p_t) ** gamma * (a * y + (1 - a) * (1 - y)))
    assert document["value"] == pytest.approx(math.fsum(expected) / len(expected), rel=1e-12, abs=1e-300)
    assert document["options"]["class_balancing"] is True


@pytest.mark.parametrize("command", ["cce", "sparse"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 1.0])
def test_categorical_focal_is_keras_categorical_focal_crossentropy(runner, tmp_path, command, gamma, alpha):
    """Keras CategoricalFocalCrossentropy: -sum_c alpha (1 - p_c)^gamma y_c log p_c; alpha defaults to 0.25."""
    args = [command, _onehot(tmp_path, command == "sparse"), "--focal-gamma", str(gamma), "--like", "keras"]
    if alpha is not None:
        args += ["--focal-alpha", str(alpha)]
    document = _json(runner, args)
    a = 0.25 if alpha is None else alpha
    expected = [-a * (1 - row[y]) ** gamma * math.log(row[y]) for y, row in ROWS]
    assert document["per_sample"] == pytest.approx(expected, rel=1e-13, abs=1e-300)
    assert document["value"] == pytest.approx(math.fsum(expected) / len(expected), rel=1e-13, abs=1e-300)
    assert document["options"]["focal_alpha"] == a


def test_softmax_focal_uses_the_log_softmax(runner, tmp_path):
    path = tmp_path / "logits.csv"
    scores = [(0, [2.0, -1.0, 0.5]), (2, [1e4, 0.0, -1e4])]
    path.write_text("y,s_0,s_1,s_2\n" + "".join(f"{y},{','.join(map(repr, s))}\n" for y, s in scores))
    document = _json(runner, ["softmax", str(path), "-y", "y", "-p", "s_*", "--focal-gamma", "2"])
    expected = []
    for y, s in scores:
        top = max(s)
        log_p = s[y] - top - math.log(math.fsum(math.exp(v - top) for v in s))
        expected.append(-((1 - math.exp(log_p)) ** 2) * log_p)
    assert document["per_sample"] == pytest.approx(expected, rel=1e-13, abs=0)
    assert document["per_sample"][1] == 2e4  # finite for logits ±1e4: no log(softmax(x))


@pytest.mark.parametrize(
    "args",
    [
        ["bce", "BINARY"],
        ["bce", "BINARY", "--eps", "0"],
        ["cce", "ONEHOT"],
        ["sparse", "SPARSE"],
        ["sparse", "SPARSE", "--label-smoothing", "0.1"],
    ],
)
def test_focal_gamma_zero_is_exactly_plain_cross_entropy(runner, tmp_path, args):
    files = {"BINARY": _binary(tmp_path, BINARY), "ONEHOT": _onehot(tmp_path, False), "SPARSE": _onehot(tmp_path, True)}
    args = [files.get(a, a) for a in args]
    plain, focal = _json(runner, args), _json(runner, [*args, "--focal-gamma", "0"])
    assert focal["per_sample"] == plain["per_sample"]
    assert focal["value"] == plain["value"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bce", "--focal-gamma", "-1"], "--focal-gamma must be finite and >= 0; received -1.0"),
        (
            ["bce", "--focal-gamma", "1", "--focal-alpha", "1.5", "--class-balancing"],
            "--focal-alpha must be in [0, 1]; received 1.5",
        ),
        (["bce", "--focal-alpha", "0.5"], "--focal-alpha needs --focal-gamma (--focal-gamma 0 is cross-entropy)"),
        (["bce", "--class-balancing"], "--class-balancing needs --focal-gamma (--focal-gamma 0 is cross-entropy)"),
        (
            ["bce", "--focal-gamma", "1", "--focal-alpha", "0.5"],
            "--focal-alpha on bce needs --class-balancing (alpha weighs the classes only then)",
        ),
        (
            ["bce", "--focal-gamma", "1", "--pos-weight", "2"],
            "--pos-weight cannot be combined with --focal-gamma (focal loss has no pos_weight)",
        ),
        (
            ["bce", "--focal-gamma", "1", "--like", "torch"],
            "--like torch: torchvision's sigmoid_focal_loss takes logits; pass --from-logits",
        ),
        (["bce", "--focal-gamma", "1", "--like", "sklearn"], "--like sklearn: scikit-learn has no focal loss"),
    ],
)
def test_bad_focal_options_are_usage_errors(runner, tmp_path, args, message):
    result = runner.invoke(app, [args[0], _binary(tmp_path, BINARY), *args[1:]], prog_name="cecli")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"cecli: error: {message}"


@pytest.mark.parametrize("command", ["entropy", "kl", "nll"])
def test_focal_options_do_not_apply_to_other_losses(runner, tmp_path, command):
    result = runner.invoke(app, [command, _binary(tmp_path, BINARY), "--focal-gamma", "1"], prog_name="cecli")
    assert result.exit_code == 2
    assert "No such option: --focal-gamma" in result.stderr


# --- generalized cross-entropy (Zhang & Sabuncu 2018) ----------------------------------------------------------


@pytest.mark.parametrize("command", ["cce", "sparse"])
@pytest.mark.parametrize("q", [1e-3, 0.25, 0.7, 1.0])
def test_gce_is_one_minus_p_to_the_q_over_q(runner, tmp_path, command, q):
    document = _json(runner, [command, _onehot(tmp_path, command == "sparse"), "--gce-q", str(q), "--like", "keras"])
    expected = [(1 - row[y] ** q) / q for y, row in ROWS]
    assert document["per_sample"] == pytest.approx(expected, rel=1e-12, abs=0)
    assert document["value"] == pytest.approx(math.fsum(expected) / len(expected), rel=1e-12, abs=0)
    assert document["options"]["gce_q"] == q


def test_gce_tends_to_cross_entropy_as_q_goes_to_zero(runner, tmp_path):
    path = _onehot(tmp_path, True)
    plain = [-math.log(row[y]) for y, row in ROWS]
    for q in (1e-4, 1e-6, 1e-8):
        got = _json(runner, ["sparse", path, "--gce-q", str(q)])["per_sample"]
        # (1 - e^{-q l}) / q = l - q l^2 / 2 + ...: the gap shrinks with q
        assert got == pytest.approx(plain, rel=q * max(plain), abs=0)
        assert all(g < c for g, c in zip(got, plain, strict=True))


def test_gce_decreases_as_the_true_class_probability_grows(runner, tmp_path):
    probabilities = [0.0, 0.01, 0.2, 0.5, 0.9, 1.0]
    path = tmp_path / "p.csv"
    path.write_text("y,p_0,p_1\n" + "".join(f"1,{1 - p!r},{p!r}\n" for p in probabilities), encoding="utf-8")
    got = _json(runner, ["sparse", str(path), "--gce-q", "0.5"])["per_sample"]
    assert got == pytest.approx([(1 - p**0.5) / 0.5 for p in probabilities], rel=1e-15, abs=1e-300)
    assert got[0] == 2.0 and got[-1] == 0.0  # p = 0 is the finite 1/q, without clipping
    assert all(a > b for a, b in zip(got, got[1:], strict=False))


def test_softmax_gce_uses_the_softmax_of_the_scores(runner, tmp_path):
    path = tmp_path / "logits.csv"
    scores = [(0, [2.0, -1.0, 0.5]), (1, [0.0, 0.0, 0.0])]
    path.write_text("y,s_0,s_1,s_2\n" + "".join(f"{y},{','.join(map(repr, s))}\n" for y, s in scores))
    got = _json(runner, ["softmax", str(path), "-y", "y", "-p", "s_*", "--gce-q", "0.5"])["per_sample"]
    expected = []
    for y, s in scores:
        p = math.exp(s[y]) / math.fsum(math.exp(v) for v in s)
        expected.append((1 - p**0.5) / 0.5)
    assert got == pytest.approx(expected, rel=1e-14, abs=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gce-q", "0"], "--gce-q must be in (0, 1]; received 0.0"),
        (["--gce-q", "1.5"], "--gce-q must be in (0, 1]; received 1.5"),
        (["--gce-q", "0.5", "--focal-gamma", "1"], "--focal-gamma cannot be combined with --gce-q"),
        (["--gce-q", "0.5", "--class-weights", "1,1,1"], "--class-weights cannot be combined with --gce-q"),
        (
            ["--gce-q", "0.5", "--eps", "0.01"],
            "--eps cannot be combined with --gce-q (GCE is finite at p = 0 and never clips)",
        ),
        (["--gce-q", "0.5", "--like", "sklearn"], "--like sklearn: the library has no generalized cross-entropy"),
    ],
)
def test_bad_gce_options_are_usage_errors(runner, tmp_path, args, message):
    result = runner.invoke(app, ["sparse", _onehot(tmp_path, True), *args], prog_name="cecli")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"cecli: error: {message}"


@pytest.mark.parametrize("command", ["bce", "entropy", "kl", "nll"])
def test_gce_does_not_apply_to_other_losses(runner, tmp_path, command):
    result = runner.invoke(app, [command, _binary(tmp_path, BINARY), "--gce-q", "0.5"], prog_name="cecli")
    assert result.exit_code == 2
    assert "No such option: --gce-q" in result.stderr


# --- sample_data/tokens.csv and its README one-liner -----------------------------------------------------------


def test_the_readme_token_perplexity_one_liner_prints_the_documented_and_derived_numbers(tmp_path):
    import csv
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Log-probabilities: `cecli nll`", 1)[1].split("\n## ", 1)[0]
    command, printed = re.search(
        r"```sh\n(cecli nll [^\n]+)\n```\n\nprints\n\n```text\n(.*?)```", section, re.S
    ).groups()
    shell = command.replace("cecli ", f"{sys.executable} -m cecli ", 1).replace("| python ", f"| {sys.executable} ")
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(shell, shell=True, cwd=root, capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == printed
    # ... and the numbers are exp(mean NLL) of the file's tokens, derived here.
    with (root / "sample_data" / "tokens.csv").open(encoding="utf-8") as f:
        rows = [(row["doc_id"], -float(row["token_logprob"])) for row in csv.DictReader(f)]
    docs = {}
    for doc, nll in rows:
        docs.setdefault(doc, []).append(nll)
    per_doc = {doc: math.exp(math.fsum(v) / len(v)) for doc, v in docs.items()}
    lines = dict(line.rsplit(" ", 1) for line in printed.splitlines())
    assert {doc: float(lines[doc]) for doc in per_doc} == pytest.approx(per_doc, rel=1e-15, abs=0)
    assert float(lines["corpus"]) == pytest.approx(math.exp(math.fsum(n for _, n in rows) / len(rows)), rel=1e-15)
    assert float(lines["mean of documents"]) == pytest.approx(sum(per_doc.values()) / len(per_doc), rel=1e-15)


def test_bce_focal_with_label_smoothing_smooths_before_everything(runner, tmp_path):
    """Keras: y' = y (1 - s) + s / 2 in the cross-entropy, the focal factor and alpha_t alike."""
    s, gamma, alpha = 0.1, 2.0, 0.25
    document = _json(
        runner,
        ["bce", _binary(tmp_path, BINARY), "--focal-gamma", "2", "--class-balancing", "--label-smoothing", str(s)],
    )
    expected = []
    for y, p in BINARY:
        t = y * (1 - s) + s / 2
        bce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
        factor = (t * (1 - p) + (1 - t) * p) ** gamma
        expected.append((t * alpha + (1 - t) * (1 - alpha)) * factor * bce)
    assert document["per_sample"] == pytest.approx(expected, rel=1e-13, abs=0)


def test_bce_focal_of_huge_logits_is_finite_and_exact(runner, tmp_path):
    rows = [(0, 1e4), (1, -1e4), (1, 1e4), (0, -1e4)]
    document = _json(runner, ["bce", _binary(tmp_path, rows), "--from-logits", "--focal-gamma", "2"])
    # softplus(1e4) = 1e4 exactly in float64, with p_t = exp(-1e4) = 0 so (1 - p_t)^2 = 1; the right side gives 0.
    assert document["per_sample"] == [1e4, 1e4, 0.0, 0.0]


def test_bce_focal_of_certain_probabilities_without_clipping(runner, tmp_path):
    rows = [(1, 1.0), (0, 0.0), (1, 0.0), (0, 1.0)]
    result = runner.invoke(
        app, ["bce", _binary(tmp_path, rows), "--eps", "0", "--focal-gamma", "2", "-f", "json"], prog_name="cecli"
    )
    document = json.loads(result.stdout)
    assert document["per_sample"] == [0.0, 0.0, None, None]  # the sure wrong answers are an honest inf
    assert document["nonfinite_rows"] == [{"row": 3, "loss": "inf"}, {"row": 4, "loss": "inf"}]  # sample numbers


@pytest.mark.parametrize(
    "args",
    [
        ["nll", "TOKENS", "-p", "token_logprob", "--by", "doc_id"],
        ["sparse", "SPARSE", "--focal-gamma", "2", "--like", "keras"],
        ["sparse", "SPARSE", "--gce-q", "0.5"],
        ["bce", "BINARY", "--focal-gamma", "0.5", "--class-balancing"],
    ],
)
def test_the_dask_engine_gives_the_local_numbers(runner, tmp_path, args):
    files = {
        "TOKENS": _tokens(tmp_path),
        "SPARSE": _onehot(tmp_path, True),
        "BINARY": _binary(tmp_path, BINARY),
    }
    args = [files.get(a, a) for a in args] + ["--summary-only"]
    local, dask = _json(runner, args), _json(runner, [*args, "--engine", "dask"])
    for key in ("value", "perplexity", "by", "group_perplexity_mean", "options"):
        assert dask.get(key) == local.get(key), key


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_nll_reads_every_format_alike(runner, tmp_path, fmt):
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "tokens.parquet"
        table = pa.table({"doc_id": [d for d, _ in TOKENS], "token_logprob": [v for _, v in TOKENS]})
        pq.write_table(table, path)
    else:
        path = tmp_path / "tokens.ndjson"
        path.write_text("".join(json.dumps({"doc_id": d, "token_logprob": v}) + "\n" for d, v in TOKENS))
    args = ["-p", "token_logprob", "--by", "doc_id", "--summary-only"]
    other, csv = _json(runner, ["nll", str(path), *args]), _json(runner, ["nll", _tokens(tmp_path), *args])
    for key in ("value", "perplexity", "by", "group_perplexity_mean"):
        assert other[key] == csv[key], key
    assert other["perplexity"] == pytest.approx(math.exp(math.fsum(-v for _, v in TOKENS) / len(TOKENS)), rel=1e-15)


def test_nll_bad_log_prob_in_ndjson_names_the_record(runner, tmp_path):
    path = tmp_path / "tokens.ndjson"
    path.write_text('{"token_logprob": -0.5}\n{"token_logprob": 0.25}\n')
    result = runner.invoke(app, ["nll", str(path), "-p", "token_logprob"], prog_name="cecli")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"cecli: error: {path}:2:token_logprob: log-probability 0.25 is above 0")


# --- issue 16 leftovers: Keras' categorical defaults, smoothing, -w, the options block, the Dask engine -------------


def _log_softmax(scores: list[float], y: int) -> float:
    """log softmax(scores)[y] as a max-shifted log-sum-exp (Keras and PyTorch on logits)."""
    top = max(scores)
    return scores[y] - top - math.log(math.fsum(math.exp(v - top) for v in scores))


SCORES = [(0, [2.0, -1.0, 0.5]), (2, [0.25, 1.5, -0.75]), (1, [-2.0, 3.0, 1.0])]


def _scores(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("y,s_0,s_1,s_2\n" + "".join(f"{y},{','.join(map(repr, s))}\n" for y, s in SCORES))
    return str(path)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 5.0])
def test_softmax_focal_like_keras_is_categorical_focal_crossentropy_from_logits(runner, tmp_path, gamma):
    """Keras CategoricalFocalCrossentropy(from_logits=True), p = softmax(s): -alpha (1 - p_y)^gamma log p_y.

    Keras' alpha defaults to 0.25.
    """
    document = _json(runner, ["softmax", _scores(tmp_path), "-y", "y", "-p", "s_*", "--focal-gamma", str(gamma),
                              "--like", "keras"])  # fmt: skip
    expected = []
    for y, s in SCORES:
        log_p = _log_softmax(s, y)
        expected.append(-0.25 * (1 - math.exp(log_p)) ** gamma * log_p)
    assert document["per_sample"] == pytest.approx(expected, rel=1e-13, abs=0)
    # Keras' "sum_over_batch_size": the sum over the number of rows.
    assert document["value"] == pytest.approx(math.fsum(expected) / len(expected), rel=1e-13, abs=0)
    options = document["options"]
    assert (options["focal_alpha"], options["focal_gamma"], options["like"]) == (0.25, gamma, "keras")
    # Logits are never clipped nor divided by their sum: neither option applied to this number.
    assert (options["eps"], options["renormalize"], options["log_floor"]) == (None, None, None)


@pytest.mark.parametrize("like", [[], ["--like", "keras"]])
@pytest.mark.parametrize("s", [0.1, 0.3])
def test_cce_focal_with_label_smoothing_is_keras_categorical_focal_crossentropy(runner, tmp_path, like, s):
    """Keras: y' = y (1 - s) + s / C first; then -sum_c alpha (1 - p_c)^gamma y'_c log p_c (alpha 0.25 under Keras)."""
    gamma, alpha = 2.0, (0.25 if like else 1.0)
    document = _json(
        runner, ["cce", _onehot(tmp_path, False), "--focal-gamma", "2", "--label-smoothing", str(s), *like]
    )
    expected = []
    for y, row in ROWS:
        smoothed = [(1.0 if c == y else 0.0) * (1 - s) + s / 3 for c in range(3)]
        expected.append(
            -math.fsum(alpha * (1 - p) ** gamma * t * math.log(p) for t, p in zip(smoothed, row, strict=True))
        )
    assert document["per_sample"] == pytest.approx(expected, rel=1e-13, abs=0)
    assert document["options"]["label_smoothing"] == s
    assert document["options"]["focal_alpha"] == alpha
    # The focal loss clips at eps but never divides rows by their sum (these rows sum to 1 anyway).
    assert (document["options"]["eps"], document["options"]["renormalize"]) == (1e-7, None)


def test_the_options_block_keeps_renormalize_where_it_applied(runner, tmp_path):
    """Plain cce and GCE divide rows by their sum (Keras: GCE takes the probabilities as given)."""
    plain = _json(runner, ["cce", _onehot(tmp_path, False)])["options"]
    gce = _json(runner, ["sparse", _onehot(tmp_path, True), "--gce-q", "0.5"])["options"]
    gce_keras = _json(runner, ["sparse", _onehot(tmp_path, True), "--gce-q", "0.5", "--like", "keras"])["options"]
    assert (plain["renormalize"], gce["renormalize"], gce_keras["renormalize"]) == (
        "before_clip",
        "before_clip",
        "none",
    )
    assert (gce["eps"], gce["focal_alpha"], gce["focal_gamma"]) == (0.0, None, None)


WEIGHTS = [2.0, 0.5, 1.0, 3.0]


def _weighted(tmp_path, kind: str) -> str:
    """A file with a sample-weight column `w` beside the rows of `kind` (binary, sparse or tokens)."""
    path = tmp_path / f"weighted-{kind}.csv"
    if kind == "binary":
        lines = ["y,p,w", *(f"{y},{p!r},{w!r}" for (y, p), w in zip(BINARY, WEIGHTS, strict=True))]
    elif kind == "sparse":
        lines = [
            "y,p_0,p_1,p_2,w",
            *(f"{y},{','.join(map(repr, r))},{w!r}" for (y, r), w in zip(ROWS, WEIGHTS[:3], strict=True)),
        ]
    else:
        lines = ["doc_id,token_logprob,w", *(f"{d},{v!r},{w!r}" for (d, v), w in zip(TOKENS[:4], WEIGHTS, strict=True))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("kind", "args", "formula"),
    [
        # Keras BinaryFocalCrossentropy, gamma 2, class balancing with alpha 0.25.
        ("binary", ["bce", "-y", "y", "-p", "p", "--focal-gamma", "2", "--class-balancing"],
         lambda y, p, keras: _keras_binary_focal(y, p, 2.0, 0.25)),
        # Keras CategoricalFocalCrossentropy of the one-hot class: alpha 1 without --like, Keras' 0.25 with it.
        ("sparse", ["sparse", "-y", "y", "-p", "p_*", "--focal-gamma", "0.5"],
         lambda y, row, keras: -(0.25 if keras else 1.0) * (1 - row[y]) ** 0.5 * math.log(row[y])),
        # GCE (1 - p_y^q) / q.
        ("sparse", ["sparse", "-y", "y", "-p", "p_*", "--gce-q", "0.7"],
         lambda y, row, keras: (1 - row[y] ** 0.7) / 0.7),
        # NLL of the true token's log-probability: -log p.
        ("tokens", ["nll", "-p", "token_logprob"], lambda doc, lp, keras: -lp),
    ],
)  # fmt: skip
@pytest.mark.parametrize("like", [False, True])
def test_sample_weights_weigh_focal_gce_and_nll(runner, tmp_path, kind, args, formula, like):
    """-w: the mean is sum(w l) / sum(w); Keras' sample_weight divides sum(w l) by the number of rows."""
    if like and args[0] == "nll":  # --like applies to bce, cce, sparse and softmax only
        result = runner.invoke(app, ["nll", _weighted(tmp_path, kind), *args[1:], "-w", "w", "--like", "keras"])
        assert result.exit_code == 2 and "No such option: --like" in result.stderr
        return
    rows = {"binary": BINARY, "sparse": ROWS, "tokens": TOKENS}[kind][: len(WEIGHTS)]
    document = _json(runner, [args[0], _weighted(tmp_path, kind), *args[1:], "-w", "w", *(["--like", "keras"] * like)])
    losses = [formula(*row, like) for row in rows]
    weights = WEIGHTS[: len(rows)]
    assert document["per_sample"] == pytest.approx(losses, rel=1e-13, abs=0)  # per sample: unweighted
    total = math.fsum(w * loss for w, loss in zip(weights, losses, strict=True))
    expected = total / (len(rows) if like else math.fsum(weights))
    assert document["value"] == pytest.approx(expected, rel=1e-13, abs=0)


@pytest.mark.parametrize(
    ("args", "formula"),
    [
        (["bce", "BINARY", "--focal-gamma", "2", "--like", "keras"], lambda y, p: _keras_binary_focal(y, p, 2.0)),
        (["sparse", "SPARSE", "--focal-gamma", "2", "--like", "keras"],
         lambda y, row: -0.25 * (1 - row[y]) ** 2 * math.log(row[y])),
        (["cce", "ONEHOT", "--gce-q", "0.25"], lambda y, row: (1 - row[y] ** 0.25) / 0.25),
    ],
)  # fmt: skip
def test_focal_and_gce_on_the_dask_engine_are_the_published_formulas(runner, tmp_path, args, formula):
    files = {"BINARY": _binary(tmp_path, BINARY), "SPARSE": _onehot(tmp_path, True), "ONEHOT": _onehot(tmp_path, False)}
    rows = BINARY if "BINARY" in args else ROWS
    document = _json(runner, [files.get(a, a) for a in args] + ["--summary-only", "--engine", "dask", "-q"])
    losses = [formula(*row) for row in rows]
    assert document["value"] == pytest.approx(math.fsum(losses) / len(losses), rel=1e-13, abs=0)
    assert document["count"] == len(rows)
