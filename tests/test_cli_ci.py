"""``--ci``, ``--bootstrap`` and ``--seed`` on the loss commands (issue 15, part 1).

Expected values are derived independently: the standard error written out with NumPy on per-sample losses
computed here from the file's numbers (the issue's formula), the normal quantile from ``statistics.NormalDist``,
``scipy.stats.bootstrap(method="percentile")`` for the bootstrap, and simulation with a known true mean for
coverage. Invariance is checked byte for byte on the JSON cecli prints.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from scipy import stats

from cecli.cli import app
from cecli.uncertainty import POISSON_THRESHOLDS, BootstrapState, NormalState, poisson_counts

Z95 = NormalDist().inv_cdf(0.975)


# --------------------------------------------------------------------------- helpers


def _run(runner, *args: str) -> dict:
    result = runner.invoke(app, [*map(str, args), "-f", "json", "--summary-only"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _text(runner, *args: str) -> str:
    result = runner.invoke(app, [*map(str, args), "-f", "json", "--summary-only"])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _se(losses, weights=None, denominators=None) -> float:
    """The issue's ratio-estimator standard error, written out: sqrt(n/(n-1) Σ (y - m x)²) / Σ x."""
    losses = np.asarray(losses, dtype=np.float64)
    a = np.ones_like(losses) if weights is None else np.asarray(weights, dtype=np.float64)
    x = a if denominators is None else np.asarray(denominators, dtype=np.float64)
    y = a * losses
    m = y.sum() / x.sum()
    n = np.count_nonzero(x)
    return math.sqrt(n / (n - 1) * np.sum((y - m * x) ** 2)) / x.sum()


def _close(actual: float, expected: float, rel: float = 1e-12) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


def _sparse_table(rng, rows: int, classes: int = 3, first_id: int = 0) -> tuple[dict, np.ndarray]:
    """Probability rows (summing to 1 up to rounding), labels, a weight and a split; and the per-sample losses."""
    p = rng.dirichlet(np.full(classes, 2.0), size=rows) * 0.98 + 0.02 / classes  # every p >= 0.0067: no clipping
    labels = rng.integers(0, classes, rows)
    columns = {
        "id": np.arange(first_id, first_id + rows),
        "label": labels,
        "w": rng.choice([0.0, 0.5, 1.0, 2.0, 3.25], rows),
        "split": rng.choice(["a", "b", "c"], rows),
    }
    columns.update({f"p_{j}": p[:, j] for j in range(classes)})
    # cecli renormalises each row before taking the log (its default, Keras'): the same here
    losses = -np.log(p[np.arange(rows), labels] / p.sum(axis=1))
    return columns, losses


def _write_csv(path: Path, columns: dict) -> Path:
    names = list(columns)
    lines = [",".join(names)]
    for i in range(len(columns[names[0]])):
        lines.append(
            ",".join(repr(float(columns[n][i])) if columns[n].dtype.kind == "f" else str(columns[n][i]) for n in names)
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sparse_dump(tmp_path):
    rng = np.random.default_rng(1515)
    columns, losses = _sparse_table(rng, 240)
    return _write_csv(tmp_path / "dump.csv", columns), columns, losses


SPARSE = ["sparse", "-y", "label", "-p", "p_*"]


# --------------------------------------------------------------------------- normal: the formula, exactly


def test_normal_stderr_and_interval_are_the_formula(runner, sparse_dump):
    path, columns, losses = sparse_dump
    document = _run(runner, *SPARSE, path, "--ci", "95")
    se = np.std(losses, ddof=1) / math.sqrt(losses.size)  # unit weights: exactly s / sqrt(n)
    assert _close(document["stderr"], se)
    assert _close(document["stderr"], _se(losses))
    ci = document["ci"]
    assert set(ci) == {"level", "low", "high", "method", "resamples", "seed"}
    assert (ci["level"], ci["method"], ci["resamples"], ci["seed"]) == (0.95, "normal", None, None)
    assert _close(ci["low"], document["value"] - Z95 * se) and _close(ci["high"], document["value"] + Z95 * se)
    assert _close(document["value"], losses.mean())
    assert document["warnings"] == []


def test_normal_interval_at_another_level(runner, sparse_dump):
    path, _, losses = sparse_dump
    ci = _run(runner, *SPARSE, path, "--ci", "99.9")["ci"]
    z = NormalDist().inv_cdf(0.9995)
    assert ci["level"] == 0.999
    assert _close(ci["high"] - ci["low"], 2 * z * _se(losses), 1e-11)


def test_weighted_stderr_per_group_and_per_class(runner, sparse_dump):
    path, columns, losses = sparse_dump
    w = columns["w"]
    document = _run(runner, *SPARSE, path, "-w", "w", "--ci", "90", "--by", "split", "--per-class")
    z = NormalDist().inv_cdf(0.95)
    assert _close(document["stderr"], _se(losses, w))
    # the form for weights: sqrt(n/(n-1) Σ w²(l - m)²) / Σ w, n = rows with w != 0
    m = np.sum(w * losses) / w.sum()
    n = np.count_nonzero(w)
    assert _close(document["stderr"], math.sqrt(n / (n - 1) * np.sum(w**2 * (losses - m) ** 2)) / w.sum())
    for entry in document["by"]:
        rows = columns["split"] == entry["key"]["split"]
        assert _close(entry["stderr"], _se(losses[rows], w[rows]))
        assert _close(entry["ci"]["low"], entry["value"] - z * entry["stderr"])
        assert _close(entry["ci"]["high"], entry["value"] + z * entry["stderr"])
    assert [entry["key"]["split"] for entry in document["by"]] == ["a", "b", "c"]
    for entry in document["per_class"]:
        rows = columns["label"] == entry["index"]
        assert _close(entry["stderr"], _se(losses[rows], w[rows]))
        assert entry["ci"]["method"] == "normal"
    assert len(document["per_class"]) == 3


def test_keras_mean_over_rows_is_the_interval_of_its_value(runner, sparse_dump):
    """--like keras divides Σw·l by the row count: each row's denominator share is 1, its numerator w·l."""
    path, columns, losses = sparse_dump
    w = columns["w"]
    document = _run(runner, *SPARSE, path, "-w", "w", "--like", "keras", "--ci", "95")
    assert _close(document["value"], np.sum(w * losses) / losses.size)
    assert _close(document["stderr"], _se(w * losses, None, np.ones(losses.size)))
    assert _close(document["ci"]["low"], document["value"] - Z95 * document["stderr"])


def test_class_weights_interval_uses_the_class_weighted_denominator(runner, sparse_dump):
    """PyTorch's weighted mean: Σ w_y·l / Σ w_y; a row's numerator is w_y·l and its denominator w_y."""
    path, columns, losses = sparse_dump
    class_weights = np.array([0.5, 2.0, 1.25])
    wy = class_weights[columns["label"]]
    document = _run(runner, *SPARSE, path, "--class-weights", "0.5,2,1.25", "--ci", "95")
    assert _close(document["value"], np.sum(wy * losses) / wy.sum())
    assert _close(document["stderr"], _se(wy * losses, None, wy))


def test_ignored_rows_are_not_in_the_interval(runner, sparse_dump):
    path, columns, losses = sparse_dump
    counted = columns["label"] != 1
    document = _run(runner, *SPARSE, path, "--ignore-index", "1", "--ci", "95")
    assert document["count"] == np.count_nonzero(counted)
    assert _close(document["stderr"], _se(losses[counted]))


def test_nll_rows_give_the_textbook_standard_error(runner, tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text("lp\n-0.5\n-1.25\n-2.0\n-0.125\n")
    document = _run(runner, "nll", path, "-p", "lp", "--ci", "95")
    losses = [0.5, 1.25, 2.0, 0.125]
    mean = math.fsum(losses) / 4
    s = math.sqrt(math.fsum((v - mean) ** 2 for v in losses) / 3)
    assert document["value"] == mean
    assert _close(document["stderr"], s / 2)


# --------------------------------------------------------------------------- undefined: null and a warning


def test_infinite_loss_gives_null_statistics_and_a_warning(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("y,p\n1,0.0\n0,0.2\n1,0.7\n")
    for extra in ([], ["--bootstrap", "50"]):
        document = _run(runner, "bce", path, "--eps", "0", "--ci", "95", *extra)
        assert document["stderr"] is None
        assert (document["ci"]["low"], document["ci"]["high"]) == (None, None)
        assert "the confidence interval is null: a loss is infinite or NaN" in document["warnings"]


def test_one_row_has_no_interval(runner, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("y,p\n1,0.5\n")
    document = _run(runner, "bce", path, "--ci", "95")
    assert document["stderr"] is None and document["ci"]["low"] is None
    assert "the confidence interval is null: it needs at least 2 rows with a non-zero weight" in document["warnings"]


def test_a_zero_weight_row_with_an_infinite_loss_does_not_count(runner, tmp_path):
    """0 · inf = 0, as in the mean: the row adds nothing to the normal sums nor to any resample."""
    path = tmp_path / "zero.csv"
    path.write_text("y,p,w\n1,0.0,0\n0,0.25,1\n1,0.5,2\n0,0.5,1\n")
    losses, w = np.array([-math.log(0.75), -math.log(0.5), -math.log(0.5)]), np.array([1.0, 2.0, 1.0])
    for extra in ([], ["--bootstrap", "200"]):
        document = _run(runner, "bce", path, "-y", "y", "-p", "p", "-w", "w", "--eps", "0", "--ci", "95", *extra)
        assert _close(document["stderr"], _se(losses, w))
        assert document["ci"]["low"] is not None and document["ci"]["high"] is not None


# --------------------------------------------------------------------------- usage errors: exit 2, one line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ci", "0.95"],
            "--ci must be a percentage from 1 to below 100; received 0.95 (give the level as a percentage: --ci 95)",
        ),
        (
            ["--ci", "100"],
            "--ci must be a percentage from 1 to below 100; received 100.0 (give a percentage such as 95)",
        ),
        (["--ci", "0"], "--ci must be a percentage from 1 to below 100; received 0.0 (give a percentage such as 95)"),
        (["--ci", "nan"], "--ci must be a percentage from 1 to below 100; received nan (give a percentage such as 95)"),
        (["--ci", "-5"], "--ci must be a percentage from 1 to below 100; received -5.0 (give a percentage such as 95)"),
        (["--seed", "3"], "--seed is for --bootstrap; the normal interval draws nothing (add --bootstrap N)"),
        (
            ["--bootstrap", "0"],
            "--bootstrap needs 1 to 1,000,000 resamples; received 0 (1000 or more for a 95 % interval)",
        ),
        (["--bootstrap", "10", "--seed", "-1"], "--seed must be an integer from 0 to 2**64 - 1; received -1"),
        (
            ["--ci", "95", "--reduction", "sum"],
            "--ci is an interval of a mean; a --reduction sum grows with the number of rows (use --reduction mean)",
        ),
        (
            ["--bootstrap", "10", "--reduction", "none"],
            "--ci needs a reduced value; --reduction none has none (use --reduction mean)",
        ),
        (
            ["--ci", "95", "--value-only"],
            "--value-only cannot be combined with --ci (--value-only prints just the reduced number)",
        ),
        (
            ["--bootstrap", "9", "--value-only"],
            "--value-only cannot be combined with --bootstrap (--value-only prints just the reduced number)",
        ),
        (["--ci", "95", "-f", "csv"], "--ci cannot be combined with -f csv (-f csv prints only per-sample lines)"),
        (
            ["--bootstrap", "9", "-f", "ndjson"],
            "--bootstrap cannot be combined with -f ndjson (-f ndjson prints only per-sample lines)",
        ),
    ],
)
def test_bad_interval_options_exit_2_with_one_line(runner, tmp_path, args, message):
    path = tmp_path / "ok.csv"
    path.write_text("y,p\n1,0.9\n0,0.2\n")
    result = runner.invoke(app, ["bce", str(path), *args])
    assert result.exit_code == 2
    assert result.stderr == f"cecli: error: {message}\n"
    assert result.stdout == ""


# --------------------------------------------------------------------------- the table


def test_table_shows_stderr_and_the_interval(runner, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("lp,doc\n-0.5,a\n-1.25,a\n-2.0,b\n-0.125,b\n")
    result = runner.invoke(app, ["nll", str(path), "-p", "lp", "--ci", "95", "-f", "table", "--summary-only"])
    assert result.exit_code == 0, result.stderr
    se = math.sqrt(math.fsum((v - 0.96875) ** 2 for v in (0.5, 1.25, 2.0, 0.125)) / 3) / 2
    lines = result.stdout.splitlines()
    assert any(line.split() == ["stderr", f"{se:.6f}"] for line in lines)
    low, high = 0.96875 - Z95 * se, 0.96875 + Z95 * se
    assert any(line.split() == ["95%", "CI", f"[{low:.6f},", f"{high:.6f}]", "(normal)"] for line in lines)
    boot = runner.invoke(app, ["nll", str(path), "-p", "lp", "--bootstrap", "20", "--seed", "4", "-f", "table"])
    assert "(bootstrap, 20 resamples, seed 4)" in boot.stdout


# --------------------------------------------------------------------------- bootstrap


def test_poisson_counts_by_comparison_equal_the_inverse_cdf_table():
    """Every 16-bit uniform maps to the number of thresholds at or below it (the documented inverse CDF)."""
    from cecli.uncertainty.draws import _poisson_of_uniforms

    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = np.searchsorted(np.asarray(POISSON_THRESHOLDS), np.arange(65536), side="right").reshape(256, 256)
    assert np.array_equal(_poisson_of_uniforms(every), expected.astype(np.float64))
    assert _poisson_of_uniforms(every).max() == len(POISSON_THRESHOLDS)


def test_bootstrap_interval_is_the_percentile_of_resampled_means(runner, sparse_dump):
    """The CLI's interval, rebuilt here from the documented draws: counts of global rows 0.., means, quantiles."""
    path, _, losses = sparse_dump
    document = _run(runner, *SPARSE, path, "--bootstrap", "300", "--seed", "11")
    counts = poisson_counts(11, 0, losses.size, 300)
    means = (counts * losses[:, None]).sum(axis=0) / counts.sum(axis=0)
    low, high = np.quantile(means, [0.025, 0.975])
    assert (document["ci"]["level"], document["ci"]["method"]) == (0.95, "bootstrap")
    assert (document["ci"]["resamples"], document["ci"]["seed"]) == (300, 11)
    assert _close(document["ci"]["low"], low, 1e-12) and _close(document["ci"]["high"], high, 1e-12)
    assert _close(document["stderr"], _se(losses))  # stderr stays the normal method's


def test_bootstrap_seed_defaults_to_0_and_changes_the_draws(runner, sparse_dump):
    path = sparse_dump[0]
    default = _run(runner, *SPARSE, path, "--bootstrap", "200")
    assert default["ci"]["seed"] == 0
    assert _run(runner, *SPARSE, path, "--bootstrap", "200", "--seed", "0")["ci"] == default["ci"]
    assert _run(runner, *SPARSE, path, "--bootstrap", "200", "--seed", "1")["ci"] != default["ci"]


def test_bootstrap_agrees_with_scipy_percentile(runner, tmp_path):
    """scipy.stats.bootstrap(method="percentile") on the same losses: the ends agree within Monte-Carlo error.

    With N resamples the standard error of an estimated 2.5 % quantile is about sqrt(0.025 · 0.975 / N) /
    φ(1.96) · se = 0.042 se for N = 4000 and 0.027 se for SciPy's 9999; 0.25 se is five of their combined.
    """
    rng = np.random.default_rng(7)
    losses = rng.gamma(3.0, 0.3, size=400)
    path = tmp_path / "lp.csv"
    path.write_text("lp\n" + "".join(f"{-float(v)!r}\n" for v in losses))
    ci = _run(runner, "nll", path, "-p", "lp", "--bootstrap", "4000")["ci"]
    reference = stats.bootstrap(
        (losses,), np.mean, method="percentile", n_resamples=9999, confidence_level=0.95, random_state=3
    ).confidence_interval
    se = _se(losses)
    assert abs(ci["low"] - reference.low) <= 0.25 * se
    assert abs(ci["high"] - reference.high) <= 0.25 * se


# --------------------------------------------------------------------------- coverage


def test_normal_and_bootstrap_intervals_cover_the_true_mean_95_percent():
    """2,000 datasets of 100 losses from Gamma(4, 0.25) (true mean 1): each 95 % interval covers 1 in 93-97 % of them.

    One grouped state per method (a dataset is a group of its own rows): every dataset gets its own draws.
    """
    datasets, rows = 2000, 100
    rng = np.random.default_rng(15)
    losses = rng.gamma(4.0, 0.25, size=datasets * rows)
    codes = np.repeat(np.arange(datasets), rows)
    normal = NormalState.grouped(codes, losses)
    covered = sum(abs(normal[d].mean - 1.0) <= Z95 * normal[d].stderr for d in range(datasets))
    assert 0.93 <= covered / datasets <= 0.97
    boot = BootstrapState.grouped(codes, losses, first_row=0, resamples=400, seed=5)
    intervals = [boot[d].interval(0.95) for d in range(datasets)]
    covered = sum(low <= 1.0 <= high for low, high in intervals)
    assert 0.93 <= covered / datasets <= 0.97


def test_cli_interval_covers_a_known_mean(runner, tmp_path):
    """Through the CLI: 40 files of 60 rows of known mean 1; the 95 % normal interval covers it in 33 to 40 of them."""
    rng = np.random.default_rng(21)
    covered = 0
    for k in range(40):
        path = tmp_path / f"d{k}.csv"
        path.write_text("lp\n" + "".join(f"{-float(v)!r}\n" for v in rng.gamma(4.0, 0.25, size=60)))
        ci = _run(runner, "nll", path, "-p", "lp", "--ci", "95")["ci"]
        covered += ci["low"] <= 1.0 <= ci["high"]
    assert 33 <= covered <= 40  # binomial(40, 0.95): P(< 33) < 0.1 %


# --------------------------------------------------------------------------- invariance, byte for byte


INTERVALS = [["--ci", "95"], ["--bootstrap", "64", "--seed", "9"]]


@pytest.mark.parametrize("interval", INTERVALS)
def test_same_json_for_any_batch_size(runner, sparse_dump, interval):
    path = sparse_dump[0]
    args = [*SPARSE, path, "-w", "w", "--by", "split", "--per-class", *interval]
    texts = {rows: _text(runner, *args, "--batch-rows", rows) for rows in (1, 7, 65536)}
    assert texts[1] == texts[7] == texts[65536]
    assert "ci" in json.loads(texts[1])["by"][0]


def _without_input(text: str) -> dict:
    document = json.loads(text)
    del document["input"]  # names the files and their format, which differ by construction
    return document


@pytest.mark.parametrize("interval", INTERVALS)
def test_same_numbers_for_one_file_split_files_csv_and_parquet(runner, tmp_path, interval):
    rng = np.random.default_rng(99)
    columns, _ = _sparse_table(rng, 150)
    table = pa.table(columns)
    one = tmp_path / "one.csv"
    pa_csv.write_csv(table, one)
    parquet = tmp_path / "one.parquet"
    pq.write_table(table, parquet)
    parts = tmp_path / "parts"
    parts.mkdir()
    for k, (start, stop) in enumerate([(0, 1), (1, 57), (57, 58), (58, 150)]):
        writer = pq.write_table if k % 2 else (lambda t, p: pa_csv.write_csv(t, p))
        suffix = "parquet" if k % 2 else "csv"
        writer(table.slice(start, stop - start), parts / f"part-{k}.{suffix}")
    args = ["-w", "w", "--by", "split", "--per-class", *interval]
    reference = _without_input(_text(runner, *SPARSE, one, *args))
    assert _without_input(_text(runner, *SPARSE, parquet, *args)) == reference
    split = sorted(parts.iterdir())
    assert _without_input(_text(runner, *SPARSE, *split, *args)) == reference
    assert reference["ci"]["low"] < reference["value"] < reference["ci"]["high"]


# --------------------------------------------------------------------------- both engines


@pytest.fixture
def shards(tmp_path):
    """Seven shards of uneven sizes, Parquet and CSV, with ids continuing from shard to shard."""
    folder = tmp_path / "shards"
    folder.mkdir()
    rng = np.random.default_rng(4242)
    first = 0
    for k, rows in enumerate([30, 1, 45, 12, 60, 7, 33]):
        columns, _ = _sparse_table(rng, rows, first_id=first)
        table = pa.table(columns)
        if k % 3 == 2:
            pa_csv.write_csv(table, folder / f"shard-{k}.csv")
        else:
            pq.write_table(table, folder / f"shard-{k}.parquet")
        first += rows
    return folder


@pytest.mark.parametrize("interval", [{"ci": 95}, {"bootstrap": 64, "seed": 77}])
def test_dask_engine_gives_the_local_engine_json(runner, shards, monkeypatch, interval):
    """One task per file (TASK_FILES = 1), so under --bootstrap the engine must count rows first to key the draws."""
    distributed = pytest.importorskip("distributed")
    from cecli import compute
    from cecli.engines import dask as dask_engine

    monkeypatch.setattr(dask_engine, "TASK_FILES", 1)
    spec = {"y": "label", "p": "p_*", "weight": "w", "by": "split", "per_class": True, **interval}
    local = compute("sparse", str(shards), **spec, per_sample=False).to_dict(per_sample=False)
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0"
    ) as cluster:
        assert len(dask_engine.plan_tasks(sorted(str(p) for p in shards.iterdir()))) == 7
        remote = compute(
            "sparse", str(shards), **spec, per_sample=False, engine="dask", scheduler=cluster.scheduler_address
        ).to_dict(per_sample=False)
        flags = ["--ci", "95"] if "ci" in interval else ["--bootstrap", "64", "--seed", "77"]
        args = [*SPARSE, shards, "-w", "w", "--by", "split", "--per-class", *flags]
        cli_local = _text(runner, *args)
        cli_dask = _text(runner, *args, "--engine", "dask", "--scheduler", cluster.scheduler_address)
    assert remote == local
    assert local["ci"]["method"] == ("normal" if "ci" in interval else "bootstrap")
    assert all(entry["ci"]["low"] is not None for entry in local["by"] + local["per_class"])
    assert cli_dask == cli_local
    # and the same numbers as the rows in one file: the row numbers keying the draws are global
    one = shards.parent / "one.parquet"
    pq.write_table(pa.concat_tables([_read(p) for p in sorted(shards.iterdir())]), one)
    assert _without_input(_text(runner, *SPARSE, one, *args[6:])) == _without_input(cli_local)


def _read(path: Path) -> pa.Table:
    table = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
    return table.select(["id", "label", "w", "split", "p_0", "p_1", "p_2"]).cast(
        pa.schema(
            [
                (n, pa.int64() if n in ("id", "label") else pa.string() if n == "split" else pa.float64())
                for n in ["id", "label", "w", "split", "p_0", "p_1", "p_2"]
            ]
        )
    )


def test_torch_multi_label_bce_mean_over_rows(runner, tmp_path):
    """--like torch bce averages all N·k elements: Σ w·(row mean) / N, so a row's numerator is w·(row mean), its
    denominator share 1."""
    rng = np.random.default_rng(31)
    rows = 50
    y = rng.integers(0, 2, size=(rows, 2)).astype(np.float64)
    p = rng.uniform(0.05, 0.95, size=(rows, 2))
    w = rng.choice([0.5, 1.0, 2.0], rows)
    columns = {"y0": y[:, 0], "y1": y[:, 1], "p0": p[:, 0], "p1": p[:, 1], "w": w}
    path = _write_csv(tmp_path / "ml.csv", columns)
    document = _run(runner, "bce", path, "-y", "y0,y1", "-p", "p0,p1", "-w", "w", "--like", "torch", "--ci", "95")
    row_means = (-(y * np.log(p) + (1 - y) * np.log1p(-p))).mean(axis=1)
    assert _close(document["value"], np.sum(w * row_means) / rows)
    assert _close(document["stderr"], _se(w * row_means, None, np.ones(rows)))


def test_dask_counting_pass_names_a_file_without_the_columns_as_scoring_does(runner, shards, monkeypatch):
    """Under --bootstrap the Dask engine first counts rows; a shard missing a column fails there with the local
    engine's line and exit code."""
    distributed = pytest.importorskip("distributed")
    from cecli.engines import dask as dask_engine

    monkeypatch.setattr(dask_engine, "TASK_FILES", 1)
    bad = shards / "shard-9.parquet"
    pq.write_table(_read(shards / "shard-0.parquet").drop(["w"]), bad)
    args = ["sparse", str(shards), "-y", "label", "-p", "p_*", "-w", "w", "--bootstrap", "10", "-f", "json"]
    local = runner.invoke(app, args)
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0"
    ) as cluster:
        remote = runner.invoke(app, [*args, "--engine", "dask", "--scheduler", cluster.scheduler_address])
    first = shards / "shard-0.parquet"
    assert local.exit_code == remote.exit_code == 3
    assert (
        local.stderr
        == f"cecli: error: {bad}: has no column 'w' like {first} (every file of a dataset needs the same columns)\n"
    )
    assert remote.stderr == local.stderr


@pytest.mark.parametrize(
    ("args", "warning"),
    [
        (
            ["--bootstrap", "64"],
            "--bootstrap 64 leaves 1.6 resamples beyond each end of the interval; its ends are "
            "rough (use --bootstrap 1000 or more)",
        ),
        (
            ["--bootstrap", "2000", "--ci", "99"],
            "--bootstrap 2000 leaves 10 resamples beyond each end of the "
            "interval; its ends are rough (use --bootstrap 5000 or more)",
        ),
        (["--bootstrap", "1000"], None),  # 25 beyond each end of a 95 % interval: (1 - 0.95) / 2 · 1000
        (["--bootstrap", "5000", "--ci", "99"], None),
    ],
)
def test_too_few_resamples_for_the_level_is_a_warning(runner, sparse_dump, args, warning):
    warnings = _run(runner, *SPARSE, sparse_dump[0], *args)["warnings"]
    assert warnings == ([warning] if warning else [])
