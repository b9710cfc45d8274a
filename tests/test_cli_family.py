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
