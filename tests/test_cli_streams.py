"""Streams, signals and exit status through a real process (DESIGN.md "Exit codes and errors").

Every test runs ``python -m cecli`` with real pipes and descriptors: a pipe whose reader has gone, /dev/full,
a closed stdin/stdout/stderr, an ASCII-only output encoding, Ctrl-C while the CLI is still importing. Each
asserts the exact exit status, the exact stderr and what reached stdout. No timing: a closed pipe is closed
before cecli writes, a large output is larger than any pipe buffer, and Ctrl-C waits for a marker.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cecli import __version__
from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120

OK_CSV = "y_true,y_pred,g\n1,0.9,a\n0,0.2,b\n"
OK_MEAN = (-math.log(0.9) - math.log(0.8)) / 2  # -log p for y = 1, -log(1 - p) for y = 0
MEAN_LINE = re.compile(rb"(\d+\.\d+)\n")
FULL = "cecli: error: cannot write the output: No space left on device\n"
CLOSED = "cecli: error: cannot write the output: stdout is closed\n"


def _env(**extra: str) -> dict:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(PROJECT_ROOT), **extra}
    env.pop("CECLI_DEBUG", None)
    return env


def _run(args, cwd, *, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close=(), **env):
    """Run cecli; `close` lists the standard descriptors to close in the child (``<&-``, ``>&-``, ``2>&-``)."""

    def close_fds() -> None:
        for fd in close:
            os.close(fd)

    return subprocess.run(
        [sys.executable, "-m", "cecli", *map(str, args)],
        cwd=cwd,
        env=_env(**env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=close_fds if close else None,
        timeout=TIMEOUT,
    )


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "ok.csv").write_text(OK_CSV)
    return tmp_path


# --------------------------------------------------------------------------- stdout closed by its reader: 141


COMMANDS = [
    pytest.param(["bce", "ok.csv", "-f", "table"], id="table"),
    pytest.param(["bce", "ok.csv", "-f", "json"], id="json"),
    pytest.param(["bce", "ok.csv", "-f", "csv"], id="csv"),
    pytest.param(["bce", "ok.csv", "-f", "ndjson"], id="ndjson"),
    pytest.param(["bce", "ok.csv", "--value-only"], id="value-only"),
    pytest.param(["bce", "ok.csv", "--by", "g", "-f", "table"], id="table-by"),
    pytest.param(["columns", "ok.csv"], id="columns"),
    pytest.param(["--version"], id="version"),
    pytest.param(["--help"], id="help"),
    pytest.param(["bce", "--help"], id="command-help"),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_stdout_closed_by_its_reader_is_141_and_quiet(folder, args):
    # `cecli ... | true`: the reader is gone before cecli writes, so every write meets EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = _run(args, folder, stdout=write_end)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, b"")


@pytest.mark.parametrize(
    ("args", "first"),
    [
        pytest.param(["-f", "json"], b'{"schema_v', id="json"),
        pytest.param(["--value-only", "--reduction", "none"], b"0.01005033", id="value-only-per-sample"),
    ],
)
def test_reader_closing_in_the_middle_of_one_large_write_is_141(tmp_path, args, first):
    # 200,000 rows give a document of megabytes, written in one call: far more than a pipe holds, so the
    # reader's close always lands in the middle of that write.
    rows = "".join(f"{i % 2},0.{i % 97 + 1:02d}\n" for i in range(200_000))
    (tmp_path / "big.csv").write_text("y_true,y_pred\n" + rows)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cecli", "bce", "big.csv", *args],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        head = proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    # The first row is y = 0, p = 0.01: -log(0.99).
    assert f"{-math.log(0.99):.17g}".startswith("0.01005033")
    assert (proc.returncode, err, head) == (141, b"", first)


# --------------------------------------------------------------------------- stdout cannot be written: 3


@pytest.mark.parametrize("args", COMMANDS)
def test_stdout_on_a_full_disk_is_one_line_and_3(folder, args):
    with open("/dev/full", "wb") as full:
        done = _run(args, folder, stdout=full)
    assert (done.returncode, done.stderr.decode()) == (3, FULL)


@pytest.mark.parametrize(
    "args", [param for param in COMMANDS if param.id in ("table", "json", "columns", "version", "help")]
)
def test_closed_stdout_is_one_line_and_3(folder, args):
    done = _run(args, folder, stdout=None, close=(1,))
    assert (done.returncode, done.stderr.decode()) == (3, CLOSED)


def test_closed_stdout_takes_no_file_descriptor_of_out(folder):
    # With fd 1 closed, the first file cecli opens would get number 1; --out must still be whole and correct.
    done = _run(["bce", "ok.csv", "--value-only", "--out", "o.csv"], folder, stdout=None, close=(1,))
    assert (done.returncode, done.stderr.decode()) == (3, CLOSED)
    with open(folder / "o.csv", newline="") as written:
        rows = list(csv.reader(written))
    assert rows[0] == ["row", "loss"]
    assert [int(row) for row, _ in rows[1:]] == [1, 2]
    assert [float(loss) for _, loss in rows[1:]] == pytest.approx([-math.log(0.9), -math.log(0.8)], rel=1e-15)


# --------------------------------------------------------------------------- stdin closed: usage error


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        pytest.param(
            ["bce", "-"], "cecli: error: stdin (-) is closed (pipe data into cecli, or give a file path)\n", id="dash"
        ),
        pytest.param(
            ["bce"],
            "cecli: error: no INPUT given and stdin is closed (give a file path, or pipe data into cecli)\n",
            id="no-input",
        ),
        pytest.param(
            ["bce", "ok.csv", "--labels", "-"],
            "cecli: error: stdin (-) is closed (pipe data into cecli, or give a file path)\n",
            id="labels-dash",
        ),
        pytest.param(
            ["columns", "-"],
            "cecli: error: stdin (-) is closed (pipe data into cecli, or give a file path)\n",
            id="columns",
        ),
    ],
)
def test_closed_stdin_is_a_usage_error(folder, args, stderr):
    done = _run(args, folder, stdin=None, close=(0,))
    assert (done.returncode, done.stderr.decode(), done.stdout) == (2, stderr, b"")


# --------------------------------------------------------------------------- stderr closed or full


STDERR_CASES = [
    pytest.param(["bce", "missing.csv"], 3, None, id="bad-input"),
    pytest.param(["bce", "ok.csv", "--delimiter", ";;"], 2, None, id="usage"),
    pytest.param(["bce", "ok.csv", "--bogus"], 2, None, id="unknown-option"),
    pytest.param(["bce", "ok.csv", "--value-only", "--fail-above", "0.1"], 1, OK_MEAN, id="gate"),
    pytest.param(["bce", "ok.csv", "--value-only"], 0, OK_MEAN, id="ok"),
]


def _value(stdout: bytes) -> float | None:
    if stdout == b"":
        return None
    matched = MEAN_LINE.fullmatch(stdout)
    assert matched, stdout
    return float(matched[1])


@pytest.mark.parametrize(("args", "code", "value"), STDERR_CASES)
@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_exit_status_does_not_depend_on_writing_the_message(folder, args, code, value, stderr):
    if stderr == "full":
        with open("/dev/full", "wb") as full:
            done = _run(args, folder, stderr=full)
    else:
        done = _run(args, folder, stderr=None, close=(2,))
    assert done.returncode == code
    assert _value(done.stdout) == (None if value is None else pytest.approx(value, rel=1e-15))


@pytest.mark.parametrize(("args", "code", "value"), STDERR_CASES)
def test_the_same_commands_with_stderr_writable(folder, args, code, value):
    # The control for the test above: the same exit status, and a message when there is something to say.
    done = _run(args, folder)
    assert done.returncode == code
    assert _value(done.stdout) == (None if value is None else pytest.approx(value, rel=1e-15))
    assert (done.stderr == b"") == (code == 0)
    assert done.stderr.count(b"\n") == (code != 0)


# --------------------------------------------------------------------------- an output encoding without é


def test_ascii_output_encoding_escapes_what_it_cannot_encode(tmp_path):
    (tmp_path / "u.csv").write_text("y_true,y_pred,café\n1,0.9,é\n0,0.2,ü\n", encoding="utf-8")
    columns = _run(["columns", "u.csv"], tmp_path, PYTHONIOENCODING="ascii")
    assert (columns.returncode, columns.stderr) == (0, b"")
    assert columns.stdout == b"1\ty_true\tint64\n2\ty_pred\tdouble\n3\tcaf\\xe9\tstring\n"
    lines = _run(
        ["bce", "u.csv", "-y", "y_true", "-p", "y_pred", "--keep", "café", "-f", "csv"],
        tmp_path,
        PYTHONIOENCODING="ascii",
    )
    assert (lines.returncode, lines.stderr) == (0, b"")
    rows = list(csv.reader(lines.stdout.decode("ascii").splitlines()))
    assert [row[::2] for row in rows] == [["row", "caf\\xe9"], ["1", "\\xe9"], ["2", "\\xfc"]]
    assert [float(row[1]) for row in rows[1:]] == pytest.approx([-math.log(0.9), -math.log(0.8)], rel=1e-15)
    table = _run(
        ["bce", "u.csv", "-y", "y_true", "-p", "y_pred", "--keep", "café", "-f", "table"],
        tmp_path,
        PYTHONIOENCODING="ascii",
    )
    assert (table.returncode, table.stderr) == (0, b"")
    assert "caf\\xe9" in table.stdout.decode("ascii")
    error = _run(["bce", "u.csv", "-p", "café"], tmp_path, PYTHONIOENCODING="ascii")
    assert error.returncode == 3
    assert (
        error.stderr
        == b"cecli: error: u.csv:2:caf\\xe9: not a number: '\\xe9' (every cell of this column must be a number)\n"
    )


def test_ascii_output_encoding_keeps_json_valid(tmp_path):
    (tmp_path / "u.csv").write_text("y_true,y_pred,café\n1,0.9,é\n0,0.2,ü\n", encoding="utf-8")
    done = _run(
        ["bce", "u.csv", "-y", "y_true", "-p", "y_pred", "--keep", "café", "--top", "1", "-f", "json"],
        tmp_path,
        PYTHONIOENCODING="ascii",
    )
    assert (done.returncode, done.stderr) == (0, b"")
    document = json.loads(done.stdout.decode("ascii"))
    assert document["input"]["keep_columns"] == ["café"]
    assert document["top"] == [{"row": 2, "loss": pytest.approx(-math.log(0.8), rel=1e-15), "café": "ü"}]


# --------------------------------------------------------------------------- Ctrl-C from the first moment

# Runs `python -m cecli ARGS` with an import hook that, on the first import of MODULE, prints a marker on
# stdout and then waits: the test sends SIGINT while cecli is inside that import.
_STALL_IMPORT = """
import os, runpy, sys, time

MODULE = sys.argv[1]

class Stall:
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            sys.meta_path.remove(self)
            os.write(1, b"importing\\n")
            time.sleep(60)
        return None

sys.meta_path.insert(0, Stall())
sys.argv = ["cecli", *sys.argv[2:]]
runpy.run_module("cecli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    ("module", "args"),
    [
        pytest.param("typer", ["--version"], id="importing-typer"),  # before cecli.cli exists
        pytest.param("typer", ["bce", "ok.csv"], id="importing-typer-bce"),
        pytest.param("numpy", ["bce", "ok.csv", "--value-only"], id="importing-numpy"),  # inside the command
    ],
)
def test_ctrl_c_while_importing_is_130_and_one_line(folder, module, args):
    proc = subprocess.Popen(
        [sys.executable, "-c", _STALL_IMPORT, module, *args],
        cwd=folder,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline() == b"importing\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, err, out) == (130, b"cecli: error: interrupted\n", b"")


# --------------------------------------------------------------------------- data never reaches the terminal raw

ESC = "\x1b[31m"


def test_by_column_name_and_values_are_escaped_in_the_table(runner, tmp_path, monkeypatch):
    (tmp_path / "e.csv").write_text(f"y_true,y_pred,g{ESC}\n1,0.9,a{ESC}\n0,0.2,b\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bce", "e.csv", "-y", "y_true", "-p", "y_pred", "--by", f"g{ESC}", "-f", "table"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert "\x1b" not in result.stdout
    assert "by 'g\\x1b[31m'" in result.stdout  # the title
    assert "'a\\x1b[31m'" in result.stdout  # the group's row


def test_columns_listing_escapes_field_names_inside_types(runner, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    field = f"f{ESC}"
    pq.write_table(pa.table({"s": pa.array([{field: 1}], pa.struct([(field, pa.int64())]))}), tmp_path / "s.parquet")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["columns", "s.parquet"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "1\ts\t'struct<f\\x1b[31m: int64>'\n"


def test_usage_error_escapes_what_the_user_typed(runner):
    result = runner.invoke(app, ["bce", f"--x{ESC}"], prog_name="cecli")
    assert result.exit_code == 2
    assert result.stderr == "cecli: error: No such option: --x\\x1b[31m (see 'cecli bce --help')\n"


def test_version_line(folder):
    done = _run(["--version"], folder)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"cecli {__version__}\n".encode(), b"")


def test_stdout_left_non_blocking_by_another_process_still_gets_everything(tmp_path):
    # A shared pipe or terminal can be left O_NONBLOCK (node.js does it): a full pipe is EAGAIN, not an error.
    import fcntl

    rows = "".join(f"{i % 2},0.{i % 97 + 1:02d}\n" for i in range(100_000))
    (tmp_path / "big.csv").write_text("y_true,y_pred\n" + rows)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETFL, fcntl.fcntl(write_end, fcntl.F_GETFL) | os.O_NONBLOCK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cecli", "bce", "big.csv", "-f", "json"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as output:
            chunks = iter(lambda: output.read(4096), b"")  # small reads: the pipe is full most of the time
            data = b"".join(chunks)
        err = proc.stderr.read()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert (proc.returncode, err) == (0, b"")
    document = json.loads(data)
    assert document["count"] == len(document["per_sample"]) == 100_000
    # Rows cycle through y = i % 2 and p = 0.01 ... 0.97; the first two are -log(1 - 0.01) and -log(0.02).
    assert document["per_sample"][:2] == pytest.approx([-math.log(0.99), -math.log(0.02)], rel=1e-15)
