"""The command line end to end: exit codes, JSON schema, output formats, stdin, --out and the real entry point."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli import __version__

OK_CSV = "y_true,y_pred\n1,0.9\n0,0.2\n"
L1, L2 = -math.log(0.9), -math.log1p(-0.2)  # bce computes log(1 - p) as log1p(-p)
SUM = math.fsum([L1, L2])  # reductions are exact sums rounded once
JSON_KEYS = {
    "schema_version", "cecli_version", "loss", "unit", "reduction", "value", "count", "rows", "mean", "sum",
    "weight_sum", "min", "max", "options", "input", "per_sample", "warnings",
}  # fmt: skip
OPTION_KEYS = {
    "from_logits", "eps", "label_smoothing", "pos_weight", "class_weights", "ignore_index", "temperature",
    "reduction", "base", "unit",
}  # fmt: skip
INPUT_KEYS = {
    "path", "format", "labels_path", "label_columns", "prediction_columns", "weight_column", "keep_columns", "classes",
}  # fmt: skip


def _reject(token: str):
    raise ValueError(f"non-standard JSON token {token}")


def strict_json(text: str):
    return json.loads(text, parse_constant=_reject)


@pytest.fixture
def ok_csv(write_file):
    return write_file("ok.csv", OK_CSV)


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return strict_json(result.stdout)


# --------------------------------------------------------------------------- exit codes and gates


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        pytest.param(["--fail-above", "0.2"], 0, "", id="above-passes"),
        pytest.param(["--fail-below", "0.1"], 0, "", id="below-passes"),
        pytest.param(
            ["--fail-above", "0.1"],
            1,
            f"cecli: gate failed: mean bce loss {SUM / 2!r} > 0.1 (--fail-above)\n",
            id="above-fails",
        ),
        pytest.param(
            ["--fail-below", "0.2"],
            1,
            f"cecli: gate failed: mean bce loss {SUM / 2!r} < 0.2 (--fail-below)\n",
            id="below-fails",
        ),
        pytest.param(
            ["--reduction", "sum", "--fail-above", "0.3"],
            1,
            f"cecli: gate failed: sum bce loss {SUM!r} > 0.3 (--fail-above)\n",
            id="sum-above-fails",
        ),
        pytest.param(["--fail-above", "0.2", "--fail-below", "0.1"], 0, "", id="inside-band"),
    ],
)
def test_gates(cli, ok_csv, args, code, stderr):
    result = cli("bce", "ok.csv", "--value-only", *args)
    assert result.exit_code == code
    assert result.stderr == stderr
    assert float(result.stdout) == pytest.approx((L1 + L2) / (1 if "sum" in args else 2), rel=1e-12)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(["bce", "ok.csv"], 0, id="ok"),
        pytest.param(["bce", "ok.csv", "--fail-above", "0"], 1, id="gate"),
        pytest.param(["bce", "ok.csv", "--reduction", "avg"], 2, id="usage"),
        pytest.param(["bce", "nope.csv"], 3, id="bad-input"),
    ],
)
def test_exit_codes(cli, ok_csv, args, code):
    assert cli(*args).exit_code == code


# --------------------------------------------------------------------------- JSON


def test_json_schema(cli, ok_csv):
    document = _json(cli("bce", "ok.csv", "-f", "json"))
    assert JSON_KEYS <= set(document)
    assert OPTION_KEYS <= set(document["options"])
    assert INPUT_KEYS <= set(document["input"])
    assert document["schema_version"] == 1
    assert document["cecli_version"] == __version__
    assert (document["loss"], document["unit"], document["reduction"]) == ("bce", "nats", "mean")
    assert (document["count"], document["rows"], document["weight_sum"]) == (2, 2, 2.0)
    assert document["per_sample"] == pytest.approx([L1, L2], rel=1e-12)
    assert document["value"] == document["mean"] == pytest.approx((L1 + L2) / 2, rel=1e-12)
    assert document["sum"] == pytest.approx(L1 + L2, rel=1e-12)
    assert (document["min"], document["max"]) == (min(document["per_sample"]), max(document["per_sample"]))
    assert document["input"]["label_columns"] == ["y_true"]
    assert document["input"]["prediction_columns"] == ["y_pred"]
    assert document["input"]["format"] == "csv"
    assert document["options"]["eps"] == 1e-7
    assert document["warnings"] == []


def test_json_is_the_default_when_stdout_is_not_a_terminal(cli, ok_csv):
    assert set(_json(cli("bce", "ok.csv"))) >= JSON_KEYS


def test_summary_only_drops_per_sample(cli, ok_csv):
    document = _json(cli("bce", "ok.csv", "--summary-only"))
    assert "per_sample" not in document
    assert document["count"] == 2


def test_non_finite_loss_is_null_and_named_in_warnings(cli, write_file):
    write_file("z.csv", "y_true,y_pred\n1,0\n0,0.2\n")
    result = cli("bce", "z.csv", "--eps", "0", "-q")
    document = _json(result)
    assert document["per_sample"][0] is None
    assert document["value"] is None
    assert document["warnings"]
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout


@pytest.mark.parametrize(
    ("reduction", "value"),
    [pytest.param("sum", L1 + L2, id="sum"), pytest.param("mean", (L1 + L2) / 2, id="mean")],
)
def test_reduction(cli, ok_csv, reduction, value):
    document = _json(cli("bce", "ok.csv", "--reduction", reduction))
    assert document["reduction"] == reduction
    assert document["value"] == pytest.approx(value, rel=1e-12)


def test_reduction_none_has_null_value_and_per_sample(cli, ok_csv):
    document = _json(cli("bce", "ok.csv", "--reduction", "none"))
    assert document["value"] is None
    assert document["per_sample"] == pytest.approx([L1, L2], rel=1e-12)


@pytest.mark.parametrize(("base", "unit", "log"), [("2", "bits", math.log(2)), ("10", "bans", math.log(10))])
def test_base(cli, ok_csv, base, unit, log):
    nats = _json(cli("bce", "ok.csv"))
    other = _json(cli("bce", "ok.csv", "--base", base))
    assert other["unit"] == unit
    assert other["value"] == pytest.approx(nats["value"] / log, rel=1e-12)
    assert other["per_sample"] == pytest.approx([v / log for v in nats["per_sample"]], rel=1e-12)


# --------------------------------------------------------------------------- line formats and value-only


def test_ndjson_lines(cli, write_file):
    write_file("k.csv", "id,y_true,y_pred\na,1,0.9\nb,0,0.2\n")
    result = cli("bce", "k.csv", "-f", "ndjson", "--keep", "id")
    assert result.exit_code == 0
    lines = [strict_json(line) for line in result.stdout.splitlines()]
    assert [(r["row"], r["id"]) for r in lines] == [(1, "a"), (2, "b")]
    assert [r["loss"] for r in lines] == pytest.approx([L1, L2], rel=1e-12)


def test_csv_lines(cli, write_file):
    write_file("k.csv", "id,y_true,y_pred\na,1,0.9\nb,0,0.2\n")
    result = cli("bce", "k.csv", "-f", "csv", "--keep", "id")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header == "row,loss,id"
    parsed = [row.split(",") for row in rows]
    assert [(r[0], r[2]) for r in parsed] == [("1", "a"), ("2", "b")]
    assert [float(r[1]) for r in parsed] == pytest.approx([L1, L2], rel=1e-12)


def test_value_only(cli, ok_csv):
    result = cli("bce", "ok.csv", "--value-only")
    assert result.exit_code == 0
    assert float(result.stdout) == pytest.approx((L1 + L2) / 2, rel=1e-12)
    assert result.stdout.count("\n") == 1


def test_value_only_with_reduction_none_prints_one_value_a_line(cli, ok_csv):
    result = cli("bce", "ok.csv", "--value-only", "--reduction", "none")
    assert [float(v) for v in result.stdout.splitlines()] == pytest.approx([L1, L2], rel=1e-12)


def test_value_only_precision(cli, ok_csv):
    assert cli("bce", "ok.csv", "--value-only", "--precision", "3").stdout == "0.164\n"


# --------------------------------------------------------------------------- table


def test_table_precision(cli, ok_csv):
    result = cli("bce", "ok.csv", "-f", "table", "--precision", "3")
    assert result.exit_code == 0
    assert "0.105" in result.stdout and "0.223" in result.stdout and "0.164" in result.stdout
    assert "0.1054" not in result.stdout


def test_table_shows_rows_and_a_more_rows_caption(cli, write_file, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    lines = "".join(f"r{i},{i % 2},0.{i % 9 + 1}\n" for i in range(25))
    write_file("t.csv", "id,y_true,y_pred\n" + lines)
    result = cli("bce", "t.csv", "-f", "table", "--keep", "id")
    assert result.exit_code == 0
    assert "r0" in result.stdout and "r19" in result.stdout
    assert "r20" not in result.stdout
    assert "5 more rows" in result.stdout
    assert f"{-math.log(0.1):.6f}" in result.stdout  # row 1: y=1, p=0.1


MARKUP = "[bold]x[/bold]"


def test_markup_in_data_prints_literally_in_the_table(cli, write_file, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    write_file("m.csv", f"id,{MARKUP},y_true,y_pred\na,[red]v[/red],1,0.9\nb,z,0,0.2\n")
    result = cli("bce", "m.csv", "-f", "table", "--keep", "2", "--color", "always")
    assert result.exit_code == 0
    assert MARKUP in result.stdout
    assert "[red]v[/red]" in result.stdout


def test_keep_accepts_an_exact_name_that_looks_like_a_glob(cli, write_file):
    write_file("m.csv", f"id,{MARKUP},y_true,y_pred\na,v,1,0.9\nb,z,0,0.2\n")
    result = cli("bce", "m.csv", "-f", "ndjson", "--keep", MARKUP)
    assert result.exit_code == 0, result.stderr
    assert [strict_json(line)[MARKUP] for line in result.stdout.splitlines()] == ["v", "z"]


def test_json_has_no_markup_or_ansi(cli, write_file):
    write_file("m.csv", f"id,{MARKUP},y_true,y_pred\na,[red]v[/red],1,0.9\nb,z,0,0.2\n")
    result = cli("bce", "m.csv", "--keep", "2", "-f", "json", "--top", "2")
    assert "\x1b[" not in result.stdout
    document = _json(result)
    assert document["input"]["keep_columns"] == [MARKUP]


# --------------------------------------------------------------------------- stdin


def _parquet_bytes(tmp_path) -> bytes:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"y_true": [1, 0], "y_pred": [0.9, 0.2]}), path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("fmt", "payload"),
    [
        pytest.param("csv", OK_CSV.encode(), id="csv"),
        pytest.param("ndjson", b'{"y_true": 1, "y_pred": 0.9}\n{"y_true": 0, "y_pred": 0.2}\n', id="ndjson"),
        pytest.param("json", b'[{"y_true": 1, "y_pred": 0.9}, {"y_true": 0, "y_pred": 0.2}]', id="json"),
        pytest.param("parquet", None, id="parquet"),
        pytest.param("csv", b"1,0.9\n0,0.2\n", id="headerless-csv"),
    ],
)
def test_stdin_is_sniffed(cli, tmp_path, fmt, payload):
    data = payload if payload is not None else _parquet_bytes(tmp_path)
    for args in (["bce"], ["bce", "-"]):
        document = _json(cli(*args, input=data))
        assert document["input"]["format"] == fmt
        assert document["per_sample"] == pytest.approx([L1, L2], rel=1e-12)


# --------------------------------------------------------------------------- options through the CLI


def test_labels_from_a_second_file(cli, write_file):
    write_file("p.csv", "y_pred\n0.9\n0.2\n")
    write_file("y.csv", "y_true\n1\n0\n")
    document = _json(cli("bce", "p.csv", "--labels", "y.csv"))
    assert document["per_sample"] == pytest.approx([L1, L2], rel=1e-12)
    assert document["input"]["labels_path"] == "y.csv"


def test_sample_weights_give_the_weighted_mean(cli, write_file):
    write_file("w.csv", "y_true,y_pred,w\n1,0.9,1\n0,0.2,3\n1,0.6,0.5\n")
    losses = [-math.log(0.9), -math.log(0.8), -math.log(0.6)]
    weights = [1, 3, 0.5]
    document = _json(cli("bce", "w.csv", "-w", "w"))
    expected = sum(w * v for w, v in zip(weights, losses, strict=True)) / sum(weights)
    assert document["value"] == pytest.approx(expected, rel=1e-12)
    assert document["weight_sum"] == 4.5
    assert document["input"]["weight_column"] == "w"
    assert document["input"]["prediction_columns"] == ["y_pred"]


def test_ignore_index(cli, write_file):
    write_file("s.csv", "label,p_0,p_1\n0,0.2,0.8\n-1,0.5,0.5\n1,0.3,0.7\n")
    document = _json(cli("sparse", "s.csv", "--ignore-index", "-1"))
    assert document["per_sample"][1] is None
    assert document["per_sample"][0] == pytest.approx(-math.log(0.2), rel=1e-12)
    assert document["per_sample"][2] == pytest.approx(-math.log(0.7), rel=1e-12)
    assert (document["count"], document["rows"]) == (2, 3)
    assert document["value"] == pytest.approx((-math.log(0.2) - math.log(0.7)) / 2, rel=1e-12)


def test_sparse_class_name_labels(cli, write_file):
    write_file("s.csv", "label,p_cat,p_dog\ncat,0.2,0.8\ndog,0.4,0.6\n")
    document = _json(cli("sparse", "s.csv"))
    assert document["per_sample"] == pytest.approx([-math.log(0.2), -math.log(0.6)], rel=1e-12)
    assert document["input"]["prediction_columns"] == ["p_cat", "p_dog"]


# --------------------------------------------------------------------------- --out


def _read_out(path):
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".ndjson":
        return [strict_json(line) for line in path.read_text().splitlines()]
    import csv

    rows = list(csv.DictReader(path.read_text().splitlines()))
    return [{"row": int(r["row"]), "loss": float(r["loss"]), "id": r["id"]} for r in rows]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_out_file_matches_per_sample(cli, write_file, tmp_path, suffix):
    write_file("k.csv", "id,y_true,y_pred\na,1,0.9\nb,0,0.2\nc,1,0.6\n")
    document = _json(cli("bce", "k.csv", "--keep", "id", "--out", f"losses{suffix}"))
    assert document["out"] == f"losses{suffix}"
    records = _read_out(tmp_path / f"losses{suffix}")
    assert [r["loss"] for r in records] == document["per_sample"]
    assert [(r["row"], r["id"]) for r in records] == [(1, "a"), (2, "b"), (3, "c")]


def test_out_parquet_row_groups_gather_batches(cli, write_file, tmp_path, monkeypatch):
    """Small batches are buffered into row groups of ROW_GROUP_ROWS rows (not one tiny group per batch)."""
    monkeypatch.setattr("cecli.io.writers.ROW_GROUP_ROWS", 10)
    write_file("k.csv", "id,y_true,y_pred\n" + "".join(f"r{i},{i % 2},0.25\n" for i in range(25)))
    document = _json(cli("bce", "k.csv", "--keep", "id", "--batch-rows", "4", "--out", "losses.parquet"))
    out = pq.ParquetFile(tmp_path / "losses.parquet")
    assert [out.metadata.row_group(i).num_rows for i in range(out.metadata.num_row_groups)] == [12, 12, 1]
    records = out.read().to_pylist()
    assert [r["loss"] for r in records] == document["per_sample"]
    assert [(r["row"], r["id"]) for r in records] == [(i + 1, f"r{i}") for i in range(25)]


def test_out_refuses_to_overwrite_the_input(cli, ok_csv):
    result = cli("bce", "ok.csv", "--out", "ok.csv")
    assert result.exit_code == 2
    assert (
        result.stderr == "cecli: error: --out ok.csv is the input ok.csv (write the per-sample losses somewhere else)\n"
    )
    assert ok_csv.read_text() == OK_CSV


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_out_is_not_left_behind_after_an_error(cli, write_file, tmp_path, suffix):
    rows = "".join(f"{i % 2},0.5\n" for i in range(40))
    write_file("in/bad.csv", "y_true,y_pred\n" + rows + "1,1.5\n")
    (tmp_path / "out").mkdir()
    result = cli("bce", "in/bad.csv", "--batch-rows", "4", "--out", f"out/losses{suffix}")
    assert result.exit_code == 3
    assert result.stderr.startswith("cecli: error: in/bad.csv:42:y_pred: probability 1.5 is outside [0, 1]")
    assert os.listdir(tmp_path / "out") == []


# --------------------------------------------------------------------------- other commands


def test_columns_command(cli, write_file):
    write_file("c.csv", "id,y_true,y_pred\na,1,0.9\n")
    result = cli("columns", "c.csv")
    assert result.exit_code == 0
    assert result.stdout == "1\tid\tstring\n2\ty_true\tint64\n3\ty_pred\tdouble\n"


def test_version(cli):
    result = cli("--version")
    assert (result.exit_code, result.stdout) == (0, f"cecli {__version__}\n")


def test_no_arguments_is_a_usage_error_naming_the_commands(cli):
    result = cli()
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("cecli: error: missing command, one of: ")
    for name in ("bce", "cce", "sparse", "softmax", "entropy", "columns"):
        assert name in result.stderr


def test_no_arguments_prints_no_empty_error(cli):
    assert "cecli: error:  " not in cli().stderr


# --------------------------------------------------------------------------- the real entry point


def _env() -> dict:
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}


def test_python_m_cecli_real_run(ok_csv, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "bce", "ok.csv", "-f", "json"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert strict_json(done.stdout)["per_sample"] == pytest.approx([L1, L2], rel=1e-12)


def test_closed_pipe_ends_quietly(write_file, tmp_path):
    write_file("big.csv", "y_true,y_pred\n" + "".join(f"{i % 2},0.{i % 9 + 1}\n" for i in range(200_000)))
    command = f"{sys.executable} -m cecli bce big.csv -f ndjson | head -1"
    done = subprocess.run(command, shell=True, cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert done.stdout.count("\n") == 1
    assert strict_json(done.stdout)["row"] == 1
    assert done.stderr == ""


def test_no_input_and_empty_stdin(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "bce"],
        cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr == "cecli: error: <stdin>: the input is empty (give a file with a header and rows of data)\n"
