"""`--like keras|torch|sklearn`: cecli's reduced value equals what each library computes.

The expected numbers were printed by running the libraries themselves (keras 3.15.1 on TensorFlow in
float64, torch 2.13.0, scikit-learn 1.9.1) on the inputs below; see README "Matching a library" and the
research notes' section 5 "Test vectors". They are copied here as literals: these tests never import the
libraries.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

import cecli
from cecli.cli import app
from cecli.errors import OptionError
from cecli.options import SKLEARN_EPS, TORCH_LOG_FLOOR

REL = 1e-6  # the libraries' numbers are compared to 1e-6, relative

S = "s_0,s_1,s_2"  # the score columns of the T10 files

# The inputs of the test vectors, as CSV files.
FILES = {
    "t1": "y_true,y_pred\n0,0\n1,0.5\n1,1\n",
    "t2": "y_true,y_pred\n1,0\n1,0.5\n0,1\n",
    "t3": "y_true,y_pred,w\n0,0.1,1\n1,0.6,2\n1,0.8,0.5\n",
    "t4": "y_a,y_b,p_a,p_b,w\n1,0,0.9,0.2,1\n0,1,0.3,0.6,3\n",
    "t5": "y_true,logit\n1,50\n0,-50\n1,-50\n",
    "t5p": "y_true,logit\n1,0.5\n0,-1\n1,2\n",
    "t7": "y_0,y_1,y_2,p_0,p_1,p_2\n1,0,0,.2,.2,.2\n0,0,1,.5,.3,.4\n",
    "t7s": "y,p_0,p_1,p_2\n0,.2,.2,.2\n2,.5,.3,.4\n",
    "t8": "y_0,y_1,y_2,p_0,p_1,p_2\n1,0,0,0,.5,.5\n0,1,0,0,1,0\n",
    "t8s": "y,p_0,p_1,p_2\n0,0,.5,.5\n1,0,1,0\n",
    "t9": "y_0,y_1,y_2,p_0,p_1,p_2,w\n.7,.2,.1,.6,.3,.1,1\n0,1,0,.2,.5,.3,2\n.25,.25,.5,.1,.1,.8,0.5\n",
    "t10": "y,s_0,s_1,s_2,w\n0,2,1,0,1\n2,50,-50,0,2\n1,0,0,0,0.5\n",
    "t10oh": "y_0,y_1,y_2,s_0,s_1,s_2\n1,0,0,2,1,0\n0,0,1,50,-50,0\n0,1,0,0,0,0\n",
    "t11b": "y_true,y_pred\n1,.8\n1,.3\n1,.6\n",
    "t12": "y,p_0,p_1\n0,1e-9,0.5\n",
    "t12c": "y_0,y_1,p_0,p_1\n1,0,1e-9,0.5\n",
    "ml": "y_a,y_b,p_a,p_b\n1,0,.9,.2\n0,1,.3,.6\n",
}

CW = (1.0, 2.0, 0.5)
# case -> (loss, file, keyword arguments of cecli.compute)
CASES = {
    "T1": ("bce", "t1", {}),
    "T2": ("bce", "t2", {}),
    "T3": ("bce", "t3", {"p": "y_pred", "weight": "w"}),
    "T3u": ("bce", "t3", {"p": "y_pred"}),
    "T4": ("bce", "t4", {"y": "y_a,y_b", "p": "p_a,p_b"}),
    "T4w": ("bce", "t4", {"y": "y_a,y_b", "p": "p_a,p_b", "weight": "w"}),
    "T5": ("bce", "t5", {"from_logits": True}),
    "T5p": ("bce", "t5p", {"from_logits": True, "pos_weight": (2.0,)}),
    "T6": ("bce", "t3", {"p": "y_pred", "label_smoothing": 0.1}),
    "T7": ("cce", "t7", {}),
    "T7s": ("sparse", "t7s", {}),
    "T8": ("cce", "t8", {}),
    "T8s": ("sparse", "t8s", {}),
    "T9": ("cce", "t9", {"p": "p_*", "y": "y_*"}),
    "T9ls": ("cce", "t9", {"p": "p_*", "y": "y_*", "label_smoothing": 0.1}),
    "T9w": ("cce", "t9", {"p": "p_*", "y": "y_*", "weight": "w"}),
    "T10": ("softmax", "t10", {"y": "y", "p": S}),
    "T10/sparse": ("sparse", "t10", {"y": "y", "p": S, "from_logits": True}),
    "T10w": ("sparse", "t10", {"y": "y", "p": S, "from_logits": True, "weight": "w"}),
    "T10cw": ("softmax", "t10", {"y": "y", "p": S, "class_weights": CW}),
    "T10cw/onehot": ("softmax", "t10oh", {"class_weights": CW}),
    "T10ls/onehot": ("softmax", "t10oh", {"label_smoothing": 0.1}),
    "T10ls/int": ("softmax", "t10", {"y": "y", "p": S, "label_smoothing": 0.1}),
    "T10cwls": ("softmax", "t10", {"y": "y", "p": S, "class_weights": CW, "label_smoothing": 0.1}),
    "T10cwls/onehot": ("softmax", "t10oh", {"class_weights": CW, "label_smoothing": 0.1}),
    "T10ig": ("sparse", "t10", {"y": "y", "p": S, "from_logits": True, "ignore_index": 2}),
    "T10igw/sample": ("sparse", "t10", {"y": "y", "p": S, "from_logits": True, "ignore_index": 2, "weight": "w"}),
    "T10igw/class": ("sparse", "t10", {"y": "y", "p": S, "from_logits": True, "ignore_index": 2, "class_weights": CW}),
    "T10igls": ("sparse", "t10", {"y": "y", "p": S, "from_logits": True, "ignore_index": 2, "label_smoothing": 0.1}),
    "T11b": ("bce", "t11b", {}),
    "T11c": ("bce", "t3", {"p": "y_pred", "weight": "w", "reduction": "sum"}),
    "T12": ("sparse", "t12", {}),
    "T12/cce": ("cce", "t12c", {}),
}


def vector(id_: str, case: str, expected: float) -> pytest.param:
    like = id_.split("-")[1]
    return pytest.param(case, like, expected, id=id_)


VECTORS = [
    # from running keras 3.15.1, TensorFlow backend, float64 (see README 'Matching a library')
    vector("T1-keras", "T1", 0.23104912685331838),
    vector("T2-keras", "T2", 10.976446161000979),
    vector("T3-keras", "T3", 0.41286117961563756),
    vector("T3u-keras", "T3u", 0.27977656357934227),
    vector("T4-keras", "T4", 0.29900115866918980),
    vector("T4w-keras", "T4w", 0.73275144252155144),
    vector("T5-keras", "T5", 16.666666666666668),
    vector("T6-keras", "T6", 0.34625963102208007),
    vector("T7-keras", "T7", 1.0986122886681096),
    vector("T7s-keras", "T7s", 1.0986122886681096),
    vector("T8-keras", "T8", 8.0590478754791626),
    vector("T8s-keras", "T8s", 8.0590479754791566),
    vector("T9-keras", "T9", 0.92821416983828586),
    vector("T9ls-keras", "T9ls", 0.97264003236232688),
    vector("T9w-keras", "T9w", 0.94878584299924640),
    vector("T10-keras", "T10", 17.168739417704163),
    vector("T10-keras-sparse", "T10/sparse", 17.168739417704163),
    vector("T10w-keras", "T10w", 33.652304036259480),
    vector("T10cw-keras", "T10cw", 9.2016101805935318),
    vector("T10cw-keras-onehot", "T10cw/onehot", 9.2016101805935318),
    vector("T10ls-keras", "T10ls/onehot", 17.202072751037495),
    vector("T10ig-keras", "T10ig", 0.75310912655624518),
    vector("T10igw-keras", "T10igw/sample", 0.47845605438921762),
    vector("T11b-keras", "T11b", 0.64598065980204555),
    vector("T11c-keras", "T11c", 1.2385835388469126),
    vector("T12-keras", "T12", 15.424948670398354),
    vector("T12-keras-cce", "T12/cce", 16.11809565095832),
    # from running torch 2.13.0 (see README 'Matching a library')
    vector("T1-torch", "T1", 0.23104906018664842),
    vector("T2-torch", "T2", 66.897715726853320),
    vector("T3-torch", "T3", 0.41286117961563756),
    vector("T3u-torch", "T3u", 0.27977656357934227),
    vector("T4-torch", "T4", 0.29900115866918975),
    vector("T4w-torch", "T4w", 0.73275144252155133),
    vector("T5-torch", "T5", 16.666666666666668),
    vector("T5p-torch", "T5p", 0.50509055932146041),
    vector("T10-torch", "T10", 17.168739417704163),
    vector("T10-torch-sparse", "T10/sparse", 17.168739417704163),
    vector("T10cw-torch", "T10cw", 7.8870944405087418),
    vector("T10cw-torch-onehot", "T10cw/onehot", 9.2016101805935318),
    vector("T10ls-torch", "T10ls/int", 17.202072751037498),
    vector("T10ls-torch-onehot", "T10ls/onehot", 17.202072751037495),
    vector("T10cwls-torch", "T10cwls", 9.3200208429901892),
    vector("T10cwls-torch-onehot", "T10cwls/onehot", 10.873357650155221),
    vector("T10ig-torch", "T10ig", 0.75310912655624507),
    vector("T10igw-torch", "T10igw/class", 0.86827684726020005),
    vector("T10igls-torch", "T10igls", 0.80310912655624511),
    vector("T11b-torch", "T11b", 0.64598065980204555),
    vector("T11c-torch", "T11c", 1.2385835388469126),
    # from running scikit-learn 1.9.1 (see README 'Matching a library')
    vector("T1-sklearn", "T1", 0.23104906018664859),
    vector("T2-sklearn", "T2", 24.260151319598084),
    vector("T3-sklearn", "T3", 0.35388101109911790),
    vector("T3u-sklearn", "T3u", 0.27977656357934227),
    vector("T7-sklearn", "T7", 1.2628643221541276),
    vector("T7s-sklearn", "T7s", 1.2628643221541276),
    vector("T8-sklearn", "T8", 18.021826694558577),
    vector("T8s-sklearn", "T8s", 18.021826694558577),
    vector("T11b-sklearn", "T11b", 0.64598065980204555),
    vector("T11c-sklearn", "T11c", 1.2385835388469126),
]

# A handful of the vectors also go through the command line.
CLI_IDS = {
    "T2-torch",
    "T3-sklearn",
    "T4w-keras",
    "T5-keras",
    "T5p-torch",
    "T8s-keras",
    "T9ls-keras",
    "T10cw-torch",
    "T10ls-keras",
    "T10igw-keras",
    "T10igw-torch",
    "T11c-sklearn",
    "T12-keras",
}
CLI_VECTORS = [v for v in VECTORS if v.id in CLI_IDS]


@pytest.fixture
def vector_file(tmp_path):
    """``vector_file(key) -> path`` of FILES[key] written as a CSV file in tmp_path."""

    def write(key: str) -> str:
        path = tmp_path / f"{key}.csv"
        path.write_text(FILES[key], encoding="utf-8")
        return str(path)

    return write


def cli_args(kwargs: dict) -> list[str]:
    """The command-line flags equivalent to `compute()` keyword arguments."""
    flags = {"y": "-y", "p": "-p", "weight": "-w", "ignore_index": "--ignore-index", "reduction": "--reduction"}
    args: list[str] = []
    for name, value in kwargs.items():
        if name == "from_logits":
            args.append("--from-logits")
        elif name in ("class_weights", "pos_weight"):
            args += ["--" + name.replace("_", "-"), ",".join(repr(float(v)) for v in value)]
        elif name == "label_smoothing":
            args += ["--label-smoothing", repr(value)]
        else:
            args += [flags[name], str(value)]
    return args


def test_every_vector_of_the_research_table_is_covered():
    names = {v.id.split("-")[0] for v in VECTORS}
    wanted = "T1 T2 T3 T3u T4 T4w T5 T5p T6 T7 T7s T8 T8s T9 T9ls T9w T10 T10w T10cw T10ls T10cwls T10ig T10igw"
    assert set((wanted + " T10igls T11b T11c T12").split()) <= names
    assert len({v.id for v in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize(("case", "like", "expected"), VECTORS)
def test_preset_matches_the_library(vector_file, case, like, expected):
    loss, file, kwargs = CASES[case]
    result = cecli.compute(loss, vector_file(file), like=like, per_sample=False, **kwargs)
    assert result.value == pytest.approx(expected, rel=REL)
    assert result.options.like == like


@pytest.mark.parametrize(("case", "like", "expected"), CLI_VECTORS)
def test_preset_matches_the_library_on_the_command_line(runner, vector_file, case, like, expected):
    loss, file, kwargs = CASES[case]
    args = [loss, vector_file(file), "--like", like, "--value-only", *cli_args(kwargs)]
    result = runner.invoke(app, args, prog_name="cecli")
    assert result.exit_code == 0, result.output
    assert float(result.stdout) == pytest.approx(expected, rel=REL)


def test_presets_differ_where_the_libraries_differ(vector_file):
    """T2: a certain wrong prediction costs -log(1e-7) (keras), 100 (torch's log clamp), -log(2.2e-16) (sklearn)."""
    path = vector_file("t2")
    values = {like: cecli.compute("bce", path, like=like, per_sample=False).value for like in ("keras", "torch")}
    values["sklearn"] = cecli.compute("bce", path, like="sklearn", per_sample=False).value
    assert values["torch"] == pytest.approx((200 + math.log(2)) / 3, rel=1e-12)
    assert values["keras"] == pytest.approx((2 * -math.log(1e-7) + math.log(2)) / 3, rel=1e-9)
    assert values["sklearn"] == pytest.approx((2 * -math.log(SKLEARN_EPS) + math.log(2)) / 3, rel=1e-9)


def test_torch_clamps_each_log_at_minus_100(write_file):
    path = write_file("d.csv", "y_true,y_pred\n1,0\n0,1\n0,0\n1,1\n")
    result = cecli.compute("bce", str(path), like="torch", reduction="none")
    assert result.per_sample.tolist() == [-TORCH_LOG_FLOOR, -TORCH_LOG_FLOOR, 0.0, 0.0]


# --- unsupported combinations: exit 2, one line on stderr ------------------------------------------------

UNSUPPORTED_FILES = {
    "b.csv": "y_true,y_pred,w\n0,0.1,1\n1,0.6,2\n",
    "c.csv": "y_0,y_1,p_0,p_1\n1,0,.4,.6\n0,1,.3,.7\n",
    "s.csv": "y,p_0,p_1,w\n0,.4,.6,1\n1,.3,.7,2\n",
    "ml.csv": FILES["ml"],
}

UNSUPPORTED = [
    pytest.param(["cce", "c.csv", "--like", "torch"], "takes logits", id="cce-torch-probabilities"),
    pytest.param(["sparse", "s.csv", "--like", "torch"], "takes logits", id="sparse-torch-probabilities"),
    pytest.param(
        ["sparse", "s.csv", "--like", "keras", "--label-smoothing", "0.1"], "label_smoothing", id="sparse-keras-ls"
    ),
    pytest.param(["bce", "b.csv", "--like", "keras", "--pos-weight", "2"], "pos_weight", id="bce-keras-pos-weight"),
    pytest.param(["bce", "b.csv", "--like", "sklearn", "--from-logits"], "logits", id="bce-sklearn-logits"),
    pytest.param(["cce", "c.csv", "--like", "sklearn", "--from-logits"], "logits", id="cce-sklearn-logits"),
    pytest.param(["softmax", "s.csv", "-y", "y", "-p", "p_0,p_1", "--like", "sklearn"], "logits", id="softmax-sklearn"),
    pytest.param(["bce", "b.csv", "--like", "torch", "--label-smoothing", "0.1"], "label_smoothing", id="bce-torch-ls"),
    pytest.param(["bce", "b.csv", "--like", "torch", "--pos-weight", "2"], "pos_weight", id="bce-torch-pos-weight"),
    pytest.param(
        ["sparse", "s.csv", "--like", "torch", "--from-logits", "-w", "w"], "sample weights", id="sparse-torch-weights"
    ),
    pytest.param(
        ["softmax", "s.csv", "-y", "y", "-p", "p_0,p_1", "--like", "torch", "-w", "w"],
        "sample weights",
        id="softmax-torch-weights",
    ),
    pytest.param(["bce", "ml.csv", "--like", "sklearn"], "multi-label", id="bce-sklearn-multi-label"),
    pytest.param(
        ["cce", "c.csv", "--like", "sklearn", "--label-smoothing", "0.1"], "--label-smoothing", id="cce-sklearn-ls"
    ),
    pytest.param(
        ["sparse", "s.csv", "--like", "sklearn", "--class-weights", "1,2"], "--class-weights", id="sparse-sklearn-cw"
    ),
    pytest.param(
        ["sparse", "s.csv", "--like", "sklearn", "--ignore-index", "1"], "--ignore-index", id="sparse-sklearn-ignore"
    ),
    pytest.param(
        ["bce", "b.csv", "--like", "sklearn", "--pos-weight", "2"], "--pos-weight", id="bce-sklearn-pos-weight"
    ),
]


@pytest.fixture
def in_unsupported_dir(tmp_path, monkeypatch):
    for name, text in UNSUPPORTED_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)


def invoke(runner, args):
    result = runner.invoke(app, args, prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("args", "why"), UNSUPPORTED)
def test_unsupported_combination_is_a_usage_error(runner, in_unsupported_dir, args, why):
    exit_code, stdout, stderr = invoke(runner, [*args, "--value-only"])
    assert exit_code == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"cecli: error: --like {args[args.index('--like') + 1]}: ")
    assert why in lines[0]


@pytest.mark.parametrize("loss", ["entropy", "kl"])
def test_entropy_and_kl_have_no_like_option(runner, in_unsupported_dir, loss):
    exit_code, stdout, stderr = invoke(runner, [loss, "c.csv", "--like", "keras"])
    assert exit_code == 2
    assert stdout == ""
    assert "--like" in stderr
    with pytest.raises(OptionError, match="--like"):
        cecli.compute(loss, "c.csv", like="keras")


def test_unknown_preset_is_a_usage_error(runner, in_unsupported_dir):
    exit_code, _, stderr = invoke(runner, ["bce", "b.csv", "--like", "pytorch"])
    assert exit_code == 2
    assert "keras" in stderr
    with pytest.raises(OptionError, match="unknown --like"):
        cecli.compute("bce", "b.csv", like="pytorch")


# --- the JSON "options" block ----------------------------------------------------------------------------

PRESET_OPTIONS = [
    pytest.param(
        ["bce", "b.csv"],
        {"like": None, "eps": 1e-7, "log_floor": None, "renormalize": None, "mean_denominator": "weights"},
        id="bce-default",
    ),
    pytest.param(
        ["bce", "b.csv", "--like", "keras"],
        {"like": "keras", "eps": 1e-7, "log_floor": None, "mean_denominator": "count", "class_weights_as": "label"},
        id="bce-keras",
    ),
    pytest.param(
        ["cce", "c.csv", "--like", "keras"],
        {"like": "keras", "eps": 1e-7, "renormalize": "before_clip", "mean_denominator": "count"},
        id="cce-keras",
    ),
    pytest.param(
        ["sparse", "s.csv", "--like", "keras"],
        {"like": "keras", "eps": 1e-7, "renormalize": "after_clip", "class_weights_as": "label"},
        id="sparse-keras",
    ),
    pytest.param(
        ["bce", "b.csv", "--like", "torch"],
        {"like": "torch", "eps": 0.0, "log_floor": -100.0, "mean_denominator": "elements", "class_weights_as": "loss"},
        id="bce-torch",
    ),
    pytest.param(
        ["sparse", "s.csv", "--like", "torch", "--from-logits"],
        {"like": "torch", "eps": None, "log_floor": None, "mean_denominator": "weights", "from_logits": True},
        id="sparse-torch-logits",
    ),
    pytest.param(
        ["softmax", "s.csv", "-y", "y", "-p", "p_0,p_1", "--like", "torch"],
        {"like": "torch", "eps": None, "mean_denominator": "weights", "class_weights_as": "loss"},
        id="softmax-torch",
    ),
    pytest.param(
        ["bce", "b.csv", "--like", "sklearn"],
        {"like": "sklearn", "eps": 2.220446049250313e-16, "renormalize": None, "mean_denominator": "weights"},
        id="bce-sklearn",
    ),
    pytest.param(
        ["cce", "c.csv", "--like", "sklearn"],
        {"like": "sklearn", "eps": 2.220446049250313e-16, "renormalize": "none", "log_floor": None},
        id="cce-sklearn",
    ),
    pytest.param(
        ["sparse", "s.csv", "--like", "sklearn"],
        {"like": "sklearn", "eps": 2.220446049250313e-16, "renormalize": "none", "mean_denominator": "weights"},
        id="sparse-sklearn",
    ),
    pytest.param(
        ["cce", "c.csv", "--like", "keras", "--eps", "0.01"],
        {"like": "keras", "eps": 0.01, "renormalize": "before_clip", "mean_denominator": "count"},
        id="cce-keras-explicit-eps",
    ),
    pytest.param(
        ["bce", "b.csv", "--like", "torch", "--eps", "0.001"],
        {"like": "torch", "eps": 0.001, "log_floor": -100.0},
        id="bce-torch-explicit-eps",
    ),
    pytest.param(
        ["sparse", "s.csv", "--like", "sklearn", "--eps", "0"],
        {"like": "sklearn", "eps": 0.0, "renormalize": "none"},
        id="sparse-sklearn-explicit-eps",
    ),
]
PRESET_KEYS = {"like", "eps", "log_floor", "renormalize", "mean_denominator", "class_weights_as"}


@pytest.mark.parametrize(("args", "expected"), PRESET_OPTIONS)
def test_json_options_show_the_preset(runner, in_unsupported_dir, args, expected):
    result = runner.invoke(app, [*args, "-f", "json", "--summary-only", "-q"], prog_name="cecli")
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert PRESET_KEYS <= set(options)
    assert {k: options[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("like", "eps", "expected"),
    [
        # y = [1, 1, 0], p = [0, 0.5, 1]: two certain mistakes, each clipped to -log(eps).
        pytest.param("keras", 0.01, (2 * -math.log(0.01) + math.log(2)) / 3, id="keras"),
        pytest.param("torch", 1e-3, (2 * -math.log(1e-3) + math.log(2)) / 3, id="torch"),
        pytest.param("sklearn", 1e-4, (2 * -math.log(1e-4) + math.log(2)) / 3, id="sklearn"),
    ],
)
def test_explicit_eps_overrides_the_preset(vector_file, like, eps, expected):
    result = cecli.compute("bce", vector_file("t2"), like=like, eps=eps, per_sample=False)
    assert result.options.eps == eps
    assert result.value == pytest.approx(expected, rel=1e-9)


def test_keras_mean_divides_by_the_count_not_the_weights(vector_file):
    """Σw·l / N (keras "sum_over_batch_size") versus Σw·l / Σw (sklearn) on the same weighted rows."""
    path = vector_file("t3")
    keras = cecli.compute("bce", path, p="y_pred", weight="w", like="keras", per_sample=False)
    sklearn = cecli.compute("bce", path, p="y_pred", weight="w", like="sklearn", per_sample=False)
    assert keras.value * 3 == pytest.approx(sklearn.value * 3.5, rel=1e-6)
    # weight_sum is Σw under every preset; the preset's own divisor is `denominator`
    assert (keras.partial.weight_sum, keras.denominator) == (3.5, 3.0)
    assert (sklearn.partial.weight_sum, sklearn.denominator) == (3.5, 3.5)
    assert keras.partial.mean == sklearn.partial.mean == sklearn.value


def test_sklearn_warning_does_not_claim_rows_were_renormalised(vector_file):
    result = cecli.compute("sparse", vector_file("t7s"), like="sklearn", per_sample=False)
    assert result.value == pytest.approx(1.2628643221541276, rel=REL)  # computed on the raw rows, as sklearn
    assert any("do not sum to 1" in w for w in result.warnings)
    assert not any("divided by their sum" in w for w in result.warnings)
    assert any("used as given" in w for w in result.warnings)


# --- differential table: every --like x --reduction x shape x weighting, against the documented formulas ---------
#
# The expected numbers are derived here from each library's documented reduction, written out in plain Python
# (math + fractions), never from cecli's output:
# - Keras 3 (losses.Loss.__call__ -> reduce_values): the per-sample loss is the mean over the last axis
#   (multi-label bce), times sample_weight; "sum_over_batch_size" divides the sum by the number of samples N
#   (ignore_class rows leave N); "sum" is the sum; class_weight becomes a sample weight by label.
# - PyTorch (BCELoss / BCEWithLogitsLoss): the loss is the N x k element matrix times weight (broadcast per row);
#   "mean" divides the sum of all elements by N * k, "sum" adds all of them, "none" returns the matrix (cecli's
#   per-sample value is its row mean). cross_entropy(weight=w, ignore_index=K) with class-index targets: each
#   term is w[y] * (-log softmax(x)[y]); "mean" divides by sum(w[y]) over non-ignored rows; with probability
#   (one-hot) targets the terms are -sum_c w_c y_c log softmax(x)_c and "mean" divides by N.
# - scikit-learn log_loss(y, p, sample_weight=w): clip to float64 eps, -log p[y] (no renormalisation),
#   np.average(l, weights=w) (normalize=True) or sum(w * l) (normalize=False); no multi-label, no logits.
# - cecli without --like: README "Numeric conventions": mean = Σw·l / Σw (class-weighted integer labels:
#   Σw·l / Σ w·w_y, as PyTorch), sum = Σw·l, per-sample losses as Keras clips and renormalises them.
# cecli's JSON keys keep their meaning in every case: mean = Σw·l / Σw, sum = Σw·l, weight_sum = Σw, with
# l the per-sample value; `value` is the library's number and `denominator` what its mean divides by.

DIFF_W = [1.0, 2.5, 0.3, 3.0]
DIFF_BCE = {  # four rows; k = 1 and k = 3 label columns
    1: {"y": [[1], [0], [1], [0]], "p": [[0.9], [0.2], [0.35], [0.7]], "x": [[2.0], [-1.0], [0.3], [1.5]]},
    3: {
        "y": [[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]],
        "p": [[0.9, 0.2, 0.6], [0.3, 0.1, 0.8], [0.7, 0.6, 0.4], [0.2, 0.9, 0.3]],
        "x": [[2.0, -1.0, 0.5], [-0.3, -2.0, 1.2], [0.8, 0.1, -0.6], [-1.5, 2.2, -0.4]],
    },
}
DIFF_LABELS = [0, 2, 1, 2]
DIFF_P = [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.7, 0.2], [0.5, 0.25, 0.25]]
DIFF_S = [[2.0, 1.0, 0.0], [0.0, 0.5, 1.5], [-1.0, 2.0, 0.0], [1.0, 0.0, 0.5]]
DIFF_CW = (0.7, 1.9, 1.3)
DIFF_PW = {1: (1.7,), 3: (1.7, 0.6, 2.2)}
DIFF_IGNORE = 2
KERAS_EPS, DEFAULT_EPS = 1e-7, 1e-7


def _diff_files(tmp_path):
    """The three CSV files of the table: bce with 1 and 3 label columns, and class labels (int and one-hot)."""
    paths = {}
    for k, data in DIFF_BCE.items():
        names = ["y", "p", "x"] if k == 1 else [f"{c}_{j}" for c in "ypx" for j in "abc"]
        rows = [[*data["y"][i], *data["p"][i], *data["x"][i], DIFF_W[i]] for i in range(4)]
        text = ",".join([*names, "w"]) + "\n" + "".join(",".join(map(repr, r)) + "\n" for r in rows)
        paths[f"bce{k}"] = tmp_path / f"bce{k}.csv"
        paths[f"bce{k}"].write_text(text, encoding="utf-8")
    header = "y,y_0,y_1,y_2,p_0,p_1,p_2,s_0,s_1,s_2,w\n"
    rows = [
        [label, *[int(c == label) for c in range(3)], *DIFF_P[i], *DIFF_S[i], DIFF_W[i]]
        for i, label in enumerate(DIFF_LABELS)
    ]
    paths["classes"] = tmp_path / "classes.csv"
    paths["classes"].write_text(header + "".join(",".join(map(repr, r)) + "\n" for r in rows), encoding="utf-8")
    return paths


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _log_softmax(row: list[float]) -> list[float]:
    top = max(row)
    total = math.log(sum(math.exp(v - top) for v in row))
    return [v - top - total for v in row]


def _clip(p: float, eps: float) -> float:
    return min(max(p, eps), 1 - eps) if eps else p


def _bce_elements(like, k, logits, pos_weight):
    """The N x k matrix of per-element losses -(pw y log p + (1 - y) log(1 - p)), as each library computes it."""
    data = DIFF_BCE[k]
    pw = pos_weight or (1.0,) * k
    if len(pw) == 1:
        pw = pw * k
    matrix = []
    for i in range(4):
        row = []
        for j in range(k):
            y = data["y"][i][j]
            if logits:  # exact log-sigmoid (BCEWithLogitsLoss, Keras from_logits, cecli)
                log_p, log_q = _log_sigmoid(data["x"][i][j]), _log_sigmoid(-data["x"][i][j])
            else:
                eps = {"keras": KERAS_EPS, "sklearn": SKLEARN_EPS, "torch": 0.0, None: DEFAULT_EPS}[like]
                p = _clip(data["p"][i][j], eps)
                log_p, log_q = math.log(p), math.log1p(-p)
                if like == "torch":  # BCELoss clamps each log at -100
                    log_p, log_q = max(log_p, TORCH_LOG_FLOOR), max(log_q, TORCH_LOG_FLOOR)
            row.append(-(pw[j] * y * log_p + (1 - y) * log_q))
        matrix.append(row)
    return matrix


def _class_losses(like, loss, logits, class_weights):
    """Per-row -log p[y] (times the class weight where the library puts it in the loss) and each row's w_y."""
    losses, label_weights = [], []
    for i, label in enumerate(DIFF_LABELS):
        if logits:
            log_p = _log_softmax(DIFF_S[i])
        elif like == "sklearn":  # clip to float64 eps, no renormalisation
            log_p = [math.log(_clip(p, SKLEARN_EPS)) for p in DIFF_P[i]]
        elif like == "keras" and loss == "sparse":  # TensorFlow: log-softmax of log(clip(p))
            clipped = [_clip(p, KERAS_EPS) for p in DIFF_P[i]]
            log_p = [math.log(c) - math.log(sum(clipped)) for c in clipped]
        else:  # Keras categorical and cecli: divide by the row sum, then clip
            total = sum(DIFF_P[i])
            log_p = [math.log(_clip(p / total, DEFAULT_EPS)) for p in DIFF_P[i]]
        weight = class_weights[label] if class_weights else 1.0
        losses.append(weight * -log_p[label])  # one-hot rows: -Σ w_c y_c log p_c is the same term
        label_weights.append(weight)
    return losses, label_weights


def _fsum(values) -> Fraction:
    return sum((Fraction(v) for v in values), Fraction(0))


def _expected(like, loss, k, logits, extras):
    """(per-sample l or None for ignored rows, counted a_i, library value for mean, for sum, denominator)."""
    a = DIFF_W if "w" in extras else [1.0] * 4
    if loss == "bce":
        elements = _bce_elements(like, k, logits, DIFF_PW[k] if "pw" in extras else None)
        per_sample = [sum(map(Fraction, row)) / k for row in elements]  # Keras and cecli: mean over the row
        counted = list(range(4))
        if like == "torch":  # all N * k elements, each times its row's weight
            total = sum((Fraction(a[i]) * Fraction(v) for i in counted for v in elements[i]), Fraction(0))
            return per_sample, a, total / (4 * k), total, Fraction(4 * k)
        weighted = sum((Fraction(a[i]) * per_sample[i] for i in counted), Fraction(0))
        denominator = Fraction(4) if like == "keras" else _fsum(a)
        return per_sample, a, weighted / denominator, weighted, denominator
    cw = DIFF_CW if "cw" in extras else None
    losses, label_weights = _class_losses(like, loss, logits, cw)
    per_sample = [Fraction(v) for v in losses]
    counted = [i for i, label in enumerate(DIFF_LABELS) if not ("ig" in extras and label == DIFF_IGNORE)]
    weighted = sum((Fraction(a[i]) * per_sample[i] for i in counted), Fraction(0))
    if like == "keras":
        denominator = Fraction(len(counted))  # sum_over_batch_size; ignored rows leave N
    elif cw and loss == "sparse" and like in (None, "torch"):
        denominator = sum((Fraction(a[i]) * Fraction(label_weights[i]) for i in counted), Fraction(0))
    elif like == "torch":
        denominator = Fraction(len(counted))  # probability targets: / N
    else:
        denominator = sum((Fraction(a[i]) for i in counted), Fraction(0))
    per_sample = [v if i in counted else None for i, v in enumerate(per_sample)]
    return per_sample, a, weighted / denominator, weighted, denominator


def _refused(like, loss, k, logits, extras) -> bool:
    """README "Matching a library", row "not available (exit 2)"."""
    if like == "keras":
        return "pw" in extras
    if like == "torch":
        return (loss != "bce" and (not logits or "w" in extras)) or (loss == "bce" and "pw" in extras and not logits)
    if like == "sklearn":
        return logits or bool({"cw", "ig", "pw"} & set(extras)) or k > 1
    return False


DIFF_SHAPES = {  # name -> (loss, k, extras allowed)
    "bce-single": ("bce", 1, ["", "w", "pw", "w+pw"]),
    "bce-multi": ("bce", 3, ["", "w", "pw", "w+pw"]),
    "sparse": ("sparse", 1, ["", "w", "cw", "ig", "cw+ig", "w+cw", "w+cw+ig"]),
    "cce": ("cce", 1, ["", "w", "cw", "w+cw"]),
}
DIFF_CASES = [
    pytest.param(like, shape, logits, extras, id=f"{like}-{shape}-{'x' if logits else 'p'}-{extras or 'plain'}")
    for like in (None, "keras", "torch", "sklearn")
    for shape, (_, _, extra_list) in DIFF_SHAPES.items()
    for logits in (False, True)
    for extras in extra_list
]


def _diff_args(path, loss, k, logits, extras, like, reduction) -> list[str]:
    if loss == "bce":
        y, p = ("y", "x" if logits else "p") if k == 1 else ("y_a,y_b,y_c", "x_a,x_b,x_c" if logits else "p_a,p_b,p_c")
    else:
        y = "y" if loss == "sparse" else "y_0,y_1,y_2"
        p = "s_0,s_1,s_2" if logits else "p_0,p_1,p_2"
    args = [loss, str(path), "-y", y, "-p", p, "--reduction", reduction, "-f", "json", "-q"]
    args += ["--from-logits"] if logits else []
    args += ["-w", "w"] if "w" in extras.split("+") else []
    args += ["--class-weights", ",".join(map(repr, DIFF_CW))] if "cw" in extras else []
    args += ["--pos-weight", ",".join(map(repr, DIFF_PW[k]))] if "pw" in extras else []
    args += ["--ignore-index", str(DIFF_IGNORE)] if "ig" in extras else []
    return args + (["--like", like] if like else [])


@pytest.fixture(scope="module")
def diff_files(tmp_path_factory):
    return _diff_files(tmp_path_factory.mktemp("differential"))


def _diff_compute_kwargs(loss, k, logits, extras, like, reduction) -> dict:
    """The `cecli.compute` keyword arguments equal to :func:`_diff_args`."""
    args = _diff_args("-", loss, k, logits, extras, like, reduction)
    kwargs = {"y": args[3], "p": args[5], "reduction": reduction, "like": like, "from_logits": logits}
    kwargs.update({"weight": "w"} if "w" in extras.split("+") else {})
    kwargs.update({"class_weights": DIFF_CW} if "cw" in extras else {})
    kwargs.update({"pos_weight": DIFF_PW[k]} if "pw" in extras else {})
    kwargs.update({"ignore_index": DIFF_IGNORE} if "ig" in extras else {})
    return kwargs


@pytest.mark.parametrize(("like", "shape", "logits", "extras"), DIFF_CASES)
def test_differential_table(runner, diff_files, like, shape, logits, extras):
    """--reduction mean through the command line; sum and none through compute(), the same JSON document."""
    loss, k, _ = DIFF_SHAPES[shape]
    parts = extras.split("+") if extras else []
    path = diff_files[f"bce{k}" if loss == "bce" else "classes"]
    exit_code, stdout, stderr = invoke(runner, _diff_args(path, loss, k, logits, extras, like, "mean"))
    if _refused(like, loss, k, logits, parts):
        assert (exit_code, stdout) == (2, "")
        assert stderr.startswith(f"cecli: error: --like {like}: ") and stderr.count("\n") == 1
        with pytest.raises(OptionError):
            cecli.compute(loss, str(path), **_diff_compute_kwargs(loss, k, logits, extras, like, "sum"))
        return
    assert (exit_code, stderr) == (0, "")
    documents = {"mean": json.loads(stdout)}
    for reduction in ("sum", "none"):
        kwargs = _diff_compute_kwargs(loss, k, logits, extras, like, reduction)
        documents[reduction] = json.loads(json.dumps(cecli.compute(loss, str(path), **kwargs).to_dict()))
    per_sample, a, mean_value, sum_value, denominator = _expected(like, loss, k, logits, parts)
    counted = [i for i, v in enumerate(per_sample) if v is not None]
    weighted = sum((Fraction(a[i]) * per_sample[i] for i in counted), Fraction(0))
    weight_sum = sum((Fraction(a[i]) for i in counted), Fraction(0))
    expected_per_sample = [None if v is None else pytest.approx(float(v), rel=1e-12) for v in per_sample]
    for reduction, document in documents.items():
        expected_value = {"mean": mean_value, "sum": sum_value, "none": None}[reduction]
        if expected_value is None:
            assert document["value"] is None
        else:
            assert document["value"] == pytest.approx(float(expected_value), rel=1e-12), reduction
        # The keys keep their documented meaning under every preset.
        assert document["mean"] == pytest.approx(float(weighted / weight_sum), rel=1e-12)
        assert document["sum"] == pytest.approx(float(weighted), rel=1e-12)
        assert document["weight_sum"] == float(weight_sum)
        assert document["denominator"] == pytest.approx(float(denominator), rel=1e-15)
        assert document["count"] == len(counted)
        assert document["per_sample"] == expected_per_sample
        assert document["warnings"] == []


# --- --by and --per-class use the preset's denominators, group by group -----------------------------------------

GROUPED_BCE = "y_a,y_b,p_a,p_b,w,g\n1,0,0.9,0.2,1,a\n0,1,0.3,0.6,3,b\n1,1,0.8,0.7,0.5,a\n"
GROUPED_ROWS = [((1, 0), (0.9, 0.2), 1.0, "a"), ((0, 1), (0.3, 0.6), 3.0, "b"), ((1, 1), (0.8, 0.7), 0.5, "a")]


def _element(y: int, p: float) -> Fraction:
    return Fraction(-math.log(p) if y else -math.log1p(-p))


@pytest.mark.parametrize(
    ("like", "reduction"),
    [("keras", "mean"), ("keras", "sum"), ("torch", "mean"), ("torch", "sum"), (None, "mean"), (None, "sum")],
)
def test_by_groups_use_the_presets_denominator(runner, write_file, like, reduction):
    path = write_file("g.csv", GROUPED_BCE)
    args = ["bce", str(path), "-y", "y_a,y_b", "-p", "p_a,p_b", "-w", "w", "--by", "g", "--reduction", reduction]
    exit_code, stdout, stderr = invoke(
        runner, [*args, "-f", "json", "--summary-only"] + (["--like", like] if like else [])
    )
    assert (exit_code, stderr) == (0, "")
    groups = {row["key"]["g"]: row for row in json.loads(stdout)["by"]}
    for name in ("a", "b"):
        rows = [r for r in GROUPED_ROWS if r[3] == name]
        elements = sum(
            (Fraction(w) * _element(y, p) for ys, ps, w, _ in rows for y, p in zip(ys, ps, strict=True)), Fraction(0)
        )
        weighted = elements / 2  # Σ w·l with l the mean of the row's 2 columns
        weight_sum = sum((Fraction(w) for *_, w, _ in rows), Fraction(0))
        denominator = {"keras": len(rows), "torch": 2 * len(rows), None: weight_sum}[like]
        value = (
            (elements if like == "torch" else weighted)
            if reduction == "sum"
            else (elements / denominator if like == "torch" else weighted / denominator)
        )
        group = groups[name]
        assert group["value"] == pytest.approx(float(value), rel=1e-12)
        assert group["denominator"] == float(denominator)
        assert group["mean"] == pytest.approx(float(weighted / weight_sum), rel=1e-12)
        assert group["weight_sum"] == float(weight_sum)


def test_per_class_uses_the_class_weighted_denominator(runner, write_file):
    """PyTorch cross_entropy(weight=w): a class's mean is Σ w_c l / Σ w_c over its rows, the mean of its -log p."""
    path = write_file("c.csv", "y,s_0,s_1,s_2\n0,2,1,0\n2,0,0.5,1.5\n0,-1,2,0\n1,1,0,0.5\n")
    rows = [(0, [2.0, 1.0, 0.0]), (2, [0.0, 0.5, 1.5]), (0, [-1.0, 2.0, 0.0]), (1, [1.0, 0.0, 0.5])]
    args = ["softmax", str(path), "-y", "y", "-p", "s_0,s_1,s_2", "--class-weights", "0.7,1.9,1.3", "--per-class"]
    exit_code, stdout, stderr = invoke(runner, [*args, "--like", "torch", "-f", "json", "--summary-only"])
    assert (exit_code, stderr) == (0, "")
    document = json.loads(stdout)
    weights = (0.7, 1.9, 1.3)
    for entry in document["per_class"]:
        c = entry["index"]
        nll = [-_log_softmax(s)[y] for y, s in rows if y == c]
        terms = [Fraction(weights[c]) * Fraction(v) for v in nll]
        assert entry["value"] == pytest.approx(float(sum(terms) / (len(nll) * Fraction(weights[c]))), rel=1e-12)
        assert entry["denominator"] == float(len(nll) * Fraction(weights[c]))
        assert entry["weight_sum"] == len(nll)  # no sample weights: Σw is the row count
    # the classes add up to the whole: Σ value·denominator = value·denominator of the total
    total = sum(Fraction(e["value"]) * Fraction(e["denominator"]) for e in document["per_class"])
    assert float(total) == pytest.approx(document["value"] * document["denominator"], rel=1e-12)
