"""The JSON output's schema: shipped as cecli/schema.json, printed by `cecli schema`, strict about the keys it knows.

tests/conftest.py validates every JSON document a test prints through CliRunner against it; the tests here produce
the documents the other suites may not (every loss, nulls, breakdowns, several inputs) and check the schema rejects
what it must.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import typer

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = PROJECT_ROOT / "cecli" / "schema.json"
BCE_CSV = "id,split,y,p,w\na,train,1,0.9,1\nb,test,0,0.2,2\nc,train,1,0.6,1\n"


def _document(runner, args: list[str], **kwargs) -> dict:
    result = runner.invoke(app, [*args, "-f", "json"], prog_name="cecli", **kwargs)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cecli_schema_prints_the_shipped_file(runner):
    result = runner.invoke(app, ["schema"], prog_name="cecli")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == SCHEMA_FILE.read_text(encoding="utf-8")
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": 1}


def test_cecli_schema_loads_neither_numpy_nor_pyarrow():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "schema"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert json.loads(done.stdout)["title"] == "cecli JSON output"
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "cecli" in imported
    assert not imported & {"numpy", "pyarrow", "pydantic", "rich"}


def test_the_conftest_hook_rejects_a_document_that_breaks_the_schema(runner):
    """The autouse fixture is real: a CLI printing a cecli-looking document without the required keys fails."""
    fake = typer.Typer()

    @fake.command()
    def main() -> None:
        print(json.dumps({"schema_version": 1, "loss": "bce"}))

    with pytest.raises(jsonschema.ValidationError, match="'cecli_version' is a required property"):
        runner.invoke(fake, [])


@pytest.mark.parametrize("bad", ["inf", True, [0.5]])
def test_the_conftest_hook_checks_every_value_of_a_long_per_sample(runner, valid_document, bad):
    """Long per_sample lists are checked by their representatives (one per type, and the extremes)."""
    fake = typer.Typer()
    values = [0.25 * i for i in range(200)]

    @fake.command()
    def main() -> None:
        print(json.dumps({**valid_document, "per_sample": values}))

    assert runner.invoke(fake, []).exit_code == 0
    values[137] = bad
    with pytest.raises(jsonschema.ValidationError):
        runner.invoke(fake, [])


@pytest.mark.parametrize(
    ("args", "files", "check"),
    [
        (["bce", "in.csv", "-p", "p", "-y", "y", "-w", "w", "--keep", "id", "--by", "split", "--top", "2"], {}, "by"),
        (["bce", "in.csv", "-p", "p", "-y", "y", "--eps", "0", "--reduction", "sum"], {"p0": True}, "inf"),
        (["bce", "in.csv", "-p", "p", "-y", "y", "--reduction", "none"], {}, "none"),
        (["bce", "in.csv", "in.csv", "-p", "p", "-y", "y", "--summary-only", "--base", "2"], {}, "pooled"),
        (["sparse", "s.csv", "--per-class", "--ignore-index", "1", "--top", "1"], {}, "ignored"),
        (["softmax", "s.csv", "--like", "torch", "--temperature", "2"], {}, "softmax"),
        (["cce", "c.csv", "--class-weights", "1,2"], {}, "cce"),
        (["entropy", "e.csv", "--base", "10"], {}, "entropy"),
        (["kl", "c.csv"], {}, "kl"),
        (["bce", "in.csv", "-p", "p", "-y", "y", "--out", "o.parquet"], {}, "out"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_documents_of_every_kind_match_the_schema(runner, write_file, tmp_path, monkeypatch, args, files, check):
    monkeypatch.chdir(tmp_path)
    write_file("in.csv", BCE_CSV.replace("0.9", "0") if files.get("p0") else BCE_CSV)
    write_file("s.csv", "y,p_a,p_b\n0,0.8,0.2\n1,0.3,0.7\n0,0.4,0.6\n")
    write_file("c.csv", "y_0,y_1,p_0,p_1\n1,0,0.5,0.5\n0,1,0.25,0.75\n")
    write_file("e.csv", "p_0,p_1\n0.5,0.5\n1,0\n")
    document = _document(runner, args)  # the autouse fixture validates it
    if check == "by":
        assert [group["key"] for group in document["by"]] == [{"split": "test"}, {"split": "train"}]
        assert document["top"] == [
            {"row": 3, "loss": pytest.approx(-math.log(0.6), rel=1e-15), "id": "c"},
            {"row": 2, "loss": pytest.approx(-math.log1p(-0.2), rel=1e-15), "id": "b"},
        ]
    elif check == "inf":
        assert (document["value"], document["sum"], document["per_sample"][0]) == (None, None, None)
    elif check == "none":
        assert document["value"] is None and len(document["per_sample"]) == 3
    elif check == "pooled":
        assert document["input"]["path"] is None and document["input"]["paths"] == ["in.csv", "in.csv"]
        assert "per_sample" not in document and document["unit"] == "bits"
    elif check == "ignored":
        assert document["per_sample"][1] is None and document["count"] == 2
        assert [(c["class"], c["index"], c["count"]) for c in document["per_class"]] == [("a", 0, 2)]
    elif check == "softmax":
        assert document["options"]["like"] == "torch" and document["options"]["temperature"] == 2.0
    elif check == "cce":
        assert document["options"]["class_weights"] == [1.0, 2.0]
    elif check == "entropy":
        assert document["unit"] == "bans" and document["accuracy"] is None
        assert document["per_sample"] == [pytest.approx(math.log10(2), rel=1e-15), 0.0]
    elif check == "kl":
        assert document["accuracy"] is None and document["perplexity"] is None
    elif check == "out":
        assert document["out"] == "o.parquet"


def test_the_real_entry_point_prints_a_valid_document(output_schema, tmp_path):
    (tmp_path / "in.csv").write_text(BCE_CSV)
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "bce", "in.csv", "-y", "y", "-p", "p"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    output_schema.validate(json.loads(done.stdout))  # JSON is the default in a pipe


# --------------------------------------------------------------------------- the schema is strict where it can be


@pytest.fixture(scope="module")
def valid_document() -> dict:
    from typer.testing import CliRunner

    return json.loads(
        CliRunner().invoke(app, ["sparse", str(PROJECT_ROOT / "sample_data/seed-sparse.csv"), "-f", "json"]).stdout
    )


def _without(key):
    return lambda document: document.pop(key)


def _set(path: str, value):
    def change(document):
        *parents, last = path.split(".")
        for part in parents:
            document = document[part] if not part.isdigit() else document[int(part)]
        document[last] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _without("value"),
        _without("warnings"),
        _without("options"),
        _set("schema_version", 2),
        _set("loss", "mse"),
        _set("unit", "nat"),
        _set("count", -1),
        _set("count", 1.5),
        _set("rows", "3"),
        _set("mean", "0.5"),
        _set("weight_sum", -1.0),
        _set("accuracy", 1.5),
        _set("perplexity", 0.5),
        _set("per_sample", [0.5, "inf"]),
        _set("warnings", [None]),
        _set("options.eps", -1e-7),
        _set("options.from_logits", 0),
        _set("options.like", "jax"),
        _set("input.paths", []),
        _set("input.format", "xlsx"),
        _set("input.classes", 0),
        _set("histogram.counts", [0] * 19),
        _set("histogram.edges", [1.0] * 21),
    ],
)
def test_the_schema_rejects_a_broken_document(output_schema, valid_document, change):
    output_schema.validate(valid_document)
    broken = copy.deepcopy(valid_document)
    change(broken)
    with pytest.raises(jsonschema.ValidationError):
        output_schema.validate(broken)


def test_the_schema_allows_new_keys(output_schema, valid_document):
    """Later versions may add keys (README, JSON output): consumers ignore keys they do not know."""
    output_schema.validate({**valid_document, "a_new_key": {"anything": [1, None]}})
    output_schema.validate({**valid_document, "options": {**valid_document["options"], "new_option": 1}})
