"""Shared fixtures: project paths, the seed examples, a CliRunner and a deterministic terminal environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = PROJECT_ROOT / "sample_data"
# A copy of the design card's worked examples, kept in the repository so a fresh clone runs every test.
SEED_EXAMPLES = PROJECT_ROOT / "tests" / "data" / "seed_examples.json"


@pytest.fixture(autouse=True)
def _deterministic_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed width, no colour, no debug tracebacks: rich output is the same on every machine (STYLE.md #27)."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.delenv("CECLI_DEBUG", raising=False)


@pytest.fixture(scope="session")
def output_schema():
    """A validator for cecli/schema.json, the schema of the JSON document cecli prints."""
    import jsonschema

    schema = json.loads((PROJECT_ROOT / "cecli" / "schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator
    validator.check_schema(schema)
    return validator(schema)


@pytest.fixture(autouse=True)
def _every_json_output_matches_the_schema(monkeypatch: pytest.MonkeyPatch, output_schema) -> None:
    """Every cecli JSON document a test prints through CliRunner is validated against cecli/schema.json.

    Output that is not one JSON object with a ``schema_version`` key (a table, NDJSON lines, a value) is left alone.
    """
    invoke = CliRunner.invoke

    def invoke_and_validate(self, *args, **kwargs):
        result = invoke(self, *args, **kwargs)
        try:
            document = json.loads(result.stdout)
        except ValueError:
            return result
        if isinstance(document, dict) and "schema_version" in document:
            output_schema.validate(_representative(document))  # raises jsonschema.ValidationError, naming the key
        return result

    monkeypatch.setattr(CliRunner, "invoke", invoke_and_validate)


def _representative(document: dict) -> dict:
    """`document` with a long ``per_sample`` cut to one value of each JSON type it holds plus its extremes.

    The schema constrains those values by type (and could by range), so this checks the same as the whole list,
    which would take jsonschema about a second per 100,000 values.
    """
    values = document.get("per_sample")
    if not isinstance(values, list) or len(values) <= 64:
        return document
    numbers = [value for value in values if isinstance(value, int | float) and not isinstance(value, bool)]
    kept = {type(value): value for value in values}  # includes None, bools and strings, should any appear
    return {**document, "per_sample": [*kept.values(), *([min(numbers), max(numbers)] if numbers else [])]}


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture
def sample_data() -> Path:
    """The project's sample_data/ directory (files written by sample_data/make_sample_data.py)."""
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def seed_cases() -> list[dict]:
    """The worked examples from tests/data/seed_examples.json."""
    return json.loads(SEED_EXAMPLES.read_text(encoding="utf-8"))["cases"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Return ``write(name, text_or_bytes) -> Path`` that writes a file (text as UTF-8) in tmp_path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return write


@pytest.fixture
def disk_full_after(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``disk_full_after(room)``: cecli's ``--out`` file fails with ENOSPC once `room` bytes are written."""
    import errno
    import io
    import os

    from cecli.io import writers

    def fill(room: int) -> None:
        class Disk(io.FileIO):
            written = 0

            def write(self, data) -> int:
                if Disk.written + len(data) > room:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                Disk.written += len(data)
                return super().write(data)

        class FullDisk(writers._OutFile, Disk):  # cecli's file over a disk that fills up
            pass

        monkeypatch.setattr(writers, "_OutFile", FullDisk)
        # A reader still blocked when the run stops is kept until the process exits (cecli.files._ABANDONED);
        # a list of this test's own lets it go at the end of the test, not at the interpreter's teardown.
        monkeypatch.setattr("cecli.files._ABANDONED", [])

    return fill


@pytest.fixture
def cli(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``cli(*args, input=None)`` runs cecli in-process from tmp_path; returns Click's result."""
    from cecli.cli import app

    monkeypatch.chdir(tmp_path)

    def run(*args: str, input: bytes | str | None = None):
        return runner.invoke(app, list(args), input=input, prog_name="cecli")

    return run


@pytest.fixture
def cecli(cli):
    """``cecli(*args, input=None)`` as :func:`cli`; returns (exit code, stdout, stderr)."""

    def run(*args: str, input: bytes | str | None = None):
        result = cli(*args, input=input)
        return result.exit_code, result.stdout, result.stderr

    return run
