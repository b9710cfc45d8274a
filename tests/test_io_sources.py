"""Inputs and outputs as paths: folder and glob expansion through links, --out safety, remote reads.

Issue 11 ("lost or doubled input") and issue 12 (--out that cannot be written, remote reads
that hang). Every case runs the user's command and asserts the exact number or error line.
Expected losses are written out with `math` from the rows in the test.
"""

from __future__ import annotations

import errno
import glob
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cecli.io.expand import expand_sources, would_read

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WAIT = 120  # seconds a subprocess may take before the test gives up on it (not a timing assertion)
NOTHING_WRITTEN = "nothing was written; choose another place"
NO_ANSWER = "check the URL and the network; CECLI_REMOTE_TIMEOUT sets the wait"

A_CSV = "y_true,y_pred\n1,0.9\n0,0.2\n"  # losses -log 0.9, -log 0.8
B_CSV = "y_true,y_pred\n1,0.6\n"  # loss -log 0.6
C_CSV = "y_true,y_pred\n0,0.3\n"  # loss -log 0.7
A_LOSSES = [-math.log(0.9), -math.log(0.8)]
B_LOSSES = [-math.log(0.6)]
C_LOSSES = [-math.log(0.7)]


def _mean(losses: list[float]) -> float:
    return math.fsum(losses) / len(losses)


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _process(args, *, cwd, env=None, stdin=subprocess.DEVNULL, preexec_fn=None) -> subprocess.Popen:
    # Dummy S3 credentials: the client then does not look for an instance's metadata service first.
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}
    environment = {**os.environ, **aws, "NO_COLOR": "1", "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    environment.pop("CECLI_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cecli", *map(str, args)],
        cwd=cwd,
        env=environment,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"cecli did not end within {WAIT} s") from None
    return process.returncode, out, err


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- folders and globs


@pytest.fixture
def runs(tmp_path) -> Path:
    """dump/run1/a.csv, dump/run2/b.csv and the links of issue 11: latest -> run2, loop -> ."""
    _write(tmp_path / "dump" / "run1" / "a.csv", A_CSV)
    _write(tmp_path / "dump" / "run2" / "b.csv", B_CSV)
    (tmp_path / "dump" / "latest").symlink_to("run2")
    (tmp_path / "dump" / "loop").symlink_to(".")
    return tmp_path / "dump"


@pytest.mark.parametrize("source", ["dump", "dump/**/*.csv", "dump/*/*.csv", "dump/**", "dump/*"])
def test_links_do_not_read_a_file_twice(cli, runs, source):
    document = _json(cli("bce", source))
    # Each file once, under its path without links (latest/b.csv and loop/... are the same files).
    assert document["input"]["paths"] == ["dump/run1/a.csv", "dump/run2/b.csv"]
    assert document["rows"] == 3
    assert document["value"] == pytest.approx(_mean(A_LOSSES + B_LOSSES), rel=1e-15)


@pytest.mark.parametrize("source", ["dump", "dump/**/*.csv"])
def test_a_link_loop_gives_one_file_once(cli, tmp_path, source):
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    (tmp_path / "dump" / "loop").symlink_to(".")
    (tmp_path / "dump" / "up").symlink_to("..")
    document = _json(cli("bce", source))
    assert document["input"]["paths"] == ["dump/a.csv"]
    assert document["per_sample"] == pytest.approx(A_LOSSES, rel=1e-15)


def test_a_linked_folder_outside_the_input_is_read(cli, tmp_path):
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    _write(tmp_path / "elsewhere" / "c.csv", C_CSV)
    (tmp_path / "dump" / "extra").symlink_to("../elsewhere")
    document = _json(cli("bce", "dump"))
    assert document["input"]["paths"] == ["dump/a.csv", "dump/extra/c.csv"]
    assert document["per_sample"] == pytest.approx(A_LOSSES + C_LOSSES, rel=1e-15)


def test_file_links_and_hard_links_in_a_folder_are_read_once(cli, tmp_path):
    _write(tmp_path / "dump" / "z.csv", A_CSV)
    (tmp_path / "dump" / "0-link.csv").symlink_to("z.csv")  # sorts first, but goes through a link
    os.link(tmp_path / "dump" / "z.csv", tmp_path / "dump" / "z2.csv")  # the same inode, no link to follow
    document = _json(cli("bce", "dump"))
    assert document["input"]["paths"] == ["dump/z.csv"]
    assert document["rows"] == 2


def test_hidden_entries_are_not_examined(cli, tmp_path):
    """An editor's lock (a dangling `.#name` link) or a `_tmp` link does not stop the run."""
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    (tmp_path / "dump" / ".#a.csv").symlink_to("nobody@host.123")
    (tmp_path / "dump" / "_staging").symlink_to("missing-folder")
    assert _json(cli("bce", "dump"))["input"]["paths"] == ["dump/a.csv"]


@pytest.mark.parametrize("source", ["dump", "dump/*.csv"])
def test_a_broken_link_is_an_error_that_names_it(cli, tmp_path, source):
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    (tmp_path / "dump" / "gone.csv").symlink_to("deleted.csv")
    result = cli("bce", source)
    assert result.exit_code == 3
    assert result.stderr == (
        "cecli: error: dump/gone.csv: cannot follow: No such file or directory "
        "(make it readable, or move it out of the input)\n"
    )


def test_a_link_cycle_is_an_error_that_names_it(cli, tmp_path):
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    (tmp_path / "dump" / "x").symlink_to("y")
    (tmp_path / "dump" / "y").symlink_to("x")
    result = cli("bce", "dump")
    assert result.exit_code == 3
    assert result.stderr == (
        "cecli: error: dump/x: cannot follow: Too many levels of symbolic links "
        "(make it readable, or move it out of the input)\n"
    )


@pytest.mark.parametrize("source", ["dump", "dump/**/*.csv", "file://{root}/dump"])
def test_an_unreadable_folder_is_an_error_not_a_silent_skip(cli, tmp_path, monkeypatch, source):
    # The suite runs as root here, which reads any folder; the refusal is the kernel's, so it is
    # raised where the kernel would raise it: listing dump/secret.
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    _write(tmp_path / "dump" / "secret" / "b.csv", B_CSV)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.abspath(path) == str(tmp_path / "dump" / "secret"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = cli("bce", source.format(root=tmp_path))
    assert result.exit_code == 3
    shown = "dump/secret" if "://" not in source else f"{tmp_path}/dump/secret"
    assert result.stderr == (
        f"cecli: error: {shown}: cannot list this folder: Permission denied "
        "(make it readable, or move it out of the input)\n"
    )


PATTERNS = [
    "*.csv",
    "dump/*.csv",
    "dump/**/*.csv",
    "dump/**",
    "**/*.parquet",
    "dump/?.csv",
    "dump/[ab].csv",
    "dump/*/x.csv",
    "dump/.hidden/*.csv",
    "dump/**/.*.csv",
    "nothing/*.csv",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_globs_without_links_match_like_the_standard_library(tmp_path, monkeypatch, pattern):
    """Without links, a glob lists what glob.glob(recursive=True) lists (a matched folder read as a folder)."""
    monkeypatch.chdir(tmp_path)
    for name in [
        "top.csv",
        "dump/a.csv",
        "dump/b.csv",
        "dump/ab.csv",
        "dump/.h.csv",
        "dump/_s.csv",
        "dump/p.parquet",
        "dump/one/x.csv",
        "dump/one/y.parquet",
        "dump/two/deep/x.csv",
        "dump/.hidden/x.csv",
        "dump/_under/x.csv",
        "dump/notes.txt",
    ]:
        _write(tmp_path / name, "y_true,y_pred\n1,0.5\n")
    expected: set[str] = set()
    for match in glob.glob(pattern, recursive=True):
        if os.path.isdir(match):
            expected.update(expand_sources([match]))
        else:
            expected.add(match)
    if not expected:
        with pytest.raises(Exception, match="the pattern matches no file"):
            expand_sources([pattern])
    else:
        assert expand_sources([pattern]) == sorted(expected)


def test_the_same_file_given_twice_is_scored_twice_with_a_warning(cli, tmp_path):
    _write(tmp_path / "a.csv", A_CSV)
    os.link(tmp_path / "a.csv", tmp_path / "again.csv")
    result = cli("bce", "a.csv", "./a.csv", "again.csv", "--reduction", "sum")
    document = _json(result)
    assert document["rows"] == 6
    assert document["value"] == pytest.approx(3 * math.fsum(A_LOSSES), rel=1e-15)
    warning = "the same file is given 3 times (a.csv, ./a.csv, again.csv); it is scored each time"
    assert document["warnings"] == [warning]
    assert result.stderr == f"cecli: warning: {warning}\n"


def test_a_folder_and_a_file_inside_it_warn_once_per_repeated_file(cli, tmp_path):
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    _write(tmp_path / "dump" / "b.csv", B_CSV)
    result = cli("bce", "dump", "dump/b.csv")
    document = _json(result)
    assert document["input"]["paths"] == ["dump/a.csv", "dump/b.csv", "dump/b.csv"]
    assert document["per_sample"] == pytest.approx(A_LOSSES + B_LOSSES + B_LOSSES, rel=1e-15)
    assert result.stderr == (
        "cecli: warning: the same file is given 2 times (dump/b.csv, dump/b.csv); it is scored each time\n"
    )


# --------------------------------------------------------------------------- --out is never an input


@pytest.fixture
def inputs(tmp_path) -> Path:
    _write(tmp_path / "in.csv", A_CSV)
    _write(tmp_path / "dump" / "a.csv", A_CSV)
    _write(tmp_path / "dump" / "b.csv", B_CSV)
    _write(tmp_path / "labels.csv", "y_true\n1\n0\n")
    _write(tmp_path / "preds.csv", "y_pred\n0.9\n0.2\n")
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")
    (tmp_path / "soft.csv").symlink_to("in.csv")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "out", "named"),
    [
        (["in.csv"], "in.csv", "in.csv"),
        (["file://{root}/in.csv"], "in.csv", "file://{root}/in.csv"),
        (["file://{root}/in.csv?unused=1"], "{root}/in.csv", "file://{root}/in.csv?unused=1"),
        (["hard.csv"], "in.csv", "hard.csv"),
        (["in.csv"], "hard.csv", "in.csv"),
        (["soft.csv"], "in.csv", "soft.csv"),
        (["in.csv"], "soft.csv", "in.csv"),
        (["dump"], "dump/b.csv", "dump/b.csv"),
        (["dump/*.csv"], "dump/a.csv", "dump/a.csv"),
        (["file://{root}/dump"], "dump/a.csv", "file://{root}/dump/a.csv"),
        (["preds.csv", "--labels", "labels.csv", "-y", "y_true", "-p", "y_pred"], "labels.csv", "labels.csv"),
    ],
)
def test_out_that_is_an_input_is_refused(cli, inputs, args, out, named):
    args = [arg.format(root=inputs) for arg in args]
    out, named = out.format(root=inputs), named.format(root=inputs)
    before = {path: path.read_bytes() for path in inputs.rglob("*.csv")}
    result = cli("bce", *args, "--out", out)
    assert result.exit_code == 2
    assert result.stderr == (
        f"cecli: error: --out {out} is the input {named} (write the per-sample losses somewhere else)\n"
    )
    assert {path: path.read_bytes() for path in inputs.rglob("*.csv")} == before
    assert sorted(os.listdir(inputs)) == ["dump", "hard.csv", "in.csv", "labels.csv", "preds.csv", "soft.csv"]


def test_out_that_is_the_file_on_stdin_is_refused(tmp_path):
    """`cecli bce - --out in.csv < in.csv` replaced its input; stdin is compared by device and inode."""
    path = _write(tmp_path / "in.csv", A_CSV)
    with path.open("rb") as stdin:
        code, out, err = _finish(_process(["bce", "-", "--out", "in.csv"], cwd=tmp_path, stdin=stdin))
    assert (code, out) == (2, "")
    assert err == "cecli: error: --out in.csv is the input <stdin> (write the per-sample losses somewhere else)\n"
    assert path.read_text() == A_CSV
    assert os.listdir(tmp_path) == ["in.csv"]


@pytest.mark.parametrize(
    ("source", "out", "hint"),
    [
        ("dump", "dump/losses.csv", "starting with _"),
        ("dump", "dump/new/losses.parquet", "starting with _"),
        ("dump/*.csv", "dump/losses.csv", "the pattern does not match"),
        ("dump/**", "dump/x/losses.ndjson", "the pattern does not match"),
        ("file://{root}/dump", "dump/losses.csv", "starting with _"),
    ],
)
def test_out_where_a_later_run_would_read_it_is_refused(cli, inputs, source, out, hint):
    (inputs / "dump" / "new").mkdir()
    (inputs / "dump" / "x").mkdir()
    source = source.format(root=inputs)
    result = cli("bce", source, "--out", out)
    assert result.exit_code == 2
    assert result.stderr == (
        f"cecli: error: --out {out} is inside the input {source}, so a later run would read it as data "
        f"(write it elsewhere, or under a name {hint})\n"
    )
    assert sorted(os.listdir(inputs / "dump")) == ["a.csv", "b.csv", "new", "x"]


@pytest.mark.parametrize(("source", "out"), [("dump", "dump/_losses.csv"), ("dump/*.csv", "dump/new/losses.csv")])
def test_out_beside_the_data_where_no_run_reads_it_is_written(cli, inputs, source, out):
    (inputs / "dump" / "new").mkdir()
    document = _json(cli("bce", source, "--out", out))
    assert document["per_sample"] == pytest.approx(A_LOSSES + B_LOSSES, rel=1e-15)
    lines = (inputs / out).read_text().splitlines()
    assert lines[0] == "row,loss"  # as -f csv writes it
    assert [float(line.split(",")[1]) for line in lines[1:]] == pytest.approx(A_LOSSES + B_LOSSES, rel=1e-15)
    # ... and the next run over the same INPUT reads the same files.
    assert _json(cli("bce", source))["input"]["paths"] == ["dump/a.csv", "dump/b.csv"]


def test_dask_out_folder_inside_an_input_folder_is_refused(cli, inputs):
    result = cli("bce", "dump", "--engine", "dask", "--out", "dump/parts")
    assert result.exit_code == 2
    assert result.stderr == (
        "cecli: error: --out dump/parts is inside the input dump, so a later run would read it as data "
        "(write it elsewhere, or under a name starting with _)\n"
    )
    assert sorted(os.listdir(inputs / "dump")) == ["a.csv", "b.csv"]


# --------------------------------------------------------------------------- --out cannot be written


def test_out_that_is_a_folder_is_a_usage_error(cli, inputs):
    (inputs / "losses.csv").mkdir()
    result = cli("bce", "in.csv", "--out", "losses.csv")
    assert result.exit_code == 2
    assert result.stderr == "cecli: error: --out losses.csv is a folder (give a file name, such as losses.csv)\n"
    assert os.listdir(inputs / "losses.csv") == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_out_larger_than_the_system_allows_is_one_line_and_leaves_nothing(tmp_path, suffix):
    """A real refusal by the kernel, for any user: the file-size limit (EFBIG), as a full disk would refuse."""
    _write(tmp_path / "big.csv", "y_true,y_pred\n" + "1,0.5\n" * 20_000)
    (tmp_path / "out").mkdir()

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    target = tmp_path / "out" / f"losses{suffix}"
    process = _process(
        ["bce", "big.csv", "--out", target, "--batch-rows", "1000"], cwd=tmp_path, preexec_fn=limit_file_size
    )
    code, out, err = _finish(process)
    assert (code, out) == (3, "")
    assert err == f"cecli: error: {target}: cannot write --out: File too large ({NOTHING_WRITTEN})\n"
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("room", [0, 4096])
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_a_full_disk_is_one_line_and_leaves_nothing(cli, inputs, disk_full_after, suffix, room):
    """ENOSPC from the file system once `room` bytes are written; the temporary file is removed."""
    disk_full_after(room)
    _write(inputs / "many.csv", "y_true,y_pred\n" + "1,0.25\n" * 3000)
    (inputs / "out").mkdir()
    result = cli("bce", "many.csv", "--out", f"out/losses{suffix}", "--batch-rows", "500")
    assert result.exit_code == 3
    assert result.stderr == (
        f"cecli: error: out/losses{suffix}: cannot write --out: No space left on device ({NOTHING_WRITTEN})\n"
    )
    assert os.listdir(inputs / "out") == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_folder_that_refuses_new_files_is_one_line(cli, inputs, monkeypatch, code):
    """Read-only file system or permission denied when the temporary file is created (root bypasses chmod)."""

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    result = cli("bce", "in.csv", "--out", "losses.csv")
    assert result.exit_code == 3
    assert result.stderr == (f"cecli: error: losses.csv: cannot write --out: {os.strerror(code)} ({NOTHING_WRITTEN})\n")
    assert not (inputs / "losses.csv").exists()


# --------------------------------------------------------------------------- remote reads


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers; yields (port, accepted event)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted = threading.Event()
    connections = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connections.append(connection)
            accepted.set()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for connection in connections:
        connection.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_s3_endpoint_that_refuses_ends_with_one_line(tmp_path):
    port = _closed_port()
    url = f"s3://bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    code, out, err = _finish(_process(["bce", url], cwd=tmp_path, env={"CECLI_REMOTE_TIMEOUT": "1"}))
    assert (code, out) == (3, "")
    prefix = f"cecli: error: {url}: cannot list: When getting information for key 'x.csv' in bucket 'bucket': "
    assert err.startswith(prefix), err
    assert f"Failed to connect to 127.0.0.1 port {port}" in err or f"Failed to connect to 127.0.0.1:{port}" in err
    assert err.endswith(" (check the URL and your credentials)\n") and err.count("\n") == 1


def test_an_endpoint_that_never_answers_ends_at_the_deadline(tmp_path, silent_server):
    """Even where cecli cannot bound the client itself (a query option only from_uri knows), the open gives up."""
    port, _ = silent_server
    url = f"s3://bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1&tls_verify_certificates=0"
    code, out, err = _finish(_process(["bce", url], cwd=tmp_path, env={"CECLI_REMOTE_TIMEOUT": "0.5"}))
    assert (code, out) == (3, "")
    assert err == (f"cecli: error: {url}: no answer within 1.5 s ({NO_ANSWER})\n")


def test_an_s3_endpoint_that_never_answers_times_out(tmp_path, silent_server):
    """cecli's own S3 client: 2 attempts of CECLI_REMOTE_TIMEOUT each, or the deadline, whichever comes first."""
    port, _ = silent_server
    url = f"s3://bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    code, out, err = _finish(_process(["bce", url], cwd=tmp_path, env={"CECLI_REMOTE_TIMEOUT": "1"}))
    assert (code, out) == (3, "")
    assert err in (f"cecli: error: {url}: no answer within 3 s ({NO_ANSWER})\n",) or (
        err.startswith(f"cecli: error: {url}: cannot list: ")
        and "Timeout was reached" in err
        and err.endswith(" (check the URL and your credentials)\n")
        and err.count("\n") == 1
    ), err


def test_ctrl_c_during_a_remote_wait_ends_the_run(tmp_path, silent_server):
    port, accepted = silent_server
    url = f"s3://bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    # A shell's background job starts with SIGINT ignored; a user's Ctrl-C finds the default.
    process = _process(["bce", url], cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert accepted.wait(WAIT), "cecli never connected"
    process.send_signal(signal.SIGINT)
    assert _finish(process) == (130, "", "cecli: error: interrupted\n")


def test_sigterm_during_a_remote_wait_ends_the_run(tmp_path, silent_server):
    port, accepted = silent_server
    url = f"s3://bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    process = _process(["bce", url], cwd=tmp_path)
    assert accepted.wait(WAIT), "cecli never connected"
    process.send_signal(signal.SIGTERM)
    assert _finish(process) == (128 + signal.SIGTERM, "", "")


def test_remote_filesystems_are_built_with_bounded_waits(monkeypatch):
    from datetime import timedelta

    from cecli.io.remote import _filesystem

    monkeypatch.setenv("CECLI_REMOTE_TIMEOUT", "7")
    gcs, path = _filesystem("gs://bucket/dump/x.parquet")
    assert path == "bucket/dump/x.parquet"
    assert gcs.__reduce__()[1][0]["retry_time_limit"] == timedelta(seconds=7)
    gcs, _ = _filesystem("gs://bucket/x.parquet?retry_limit_seconds=45")  # the user's own setting wins
    assert gcs.__reduce__()[1][0]["retry_time_limit"] == timedelta(seconds=45)
    s3, path = _filesystem("s3://AKIA:se%2Fcret@bucket/dump/x%20y.csv?region=eu-west-1&scheme=http")
    assert path == "bucket/dump/x y.csv"
    options = s3.__reduce__()[1][0]
    assert (options["connect_timeout"], options["request_timeout"]) == (7.0, 7.0)
    assert (options["region"], options["scheme"]) == ("eu-west-1", "http")
    assert (options["access_key"], options["secret_key"]) == ("AKIA", "se/cret")


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "nan"])
def test_a_bad_remote_timeout_is_a_usage_error(cli, monkeypatch, value):
    monkeypatch.setenv("CECLI_REMOTE_TIMEOUT", value)
    result = cli("bce", "s3://bucket/x.csv?region=us-east-1")
    assert result.exit_code == 2
    assert result.stderr == f"cecli: error: CECLI_REMOTE_TIMEOUT must be a number of seconds > 0; received {value!r}\n"


def test_plain_paths_never_look_at_the_remote_timeout(cli, inputs, monkeypatch):
    monkeypatch.setenv("CECLI_REMOTE_TIMEOUT", "abc")
    assert _json(cli("bce", "in.csv"))["per_sample"] == pytest.approx(A_LOSSES, rel=1e-15)


# --------------------------------------------------------------------------- secrets in URLs


def test_url_credentials_never_reach_an_error_line(tmp_path):
    port = _closed_port()
    url = (
        f"s3://AKIAEXAMPLE:s3cr3t%2Fvalue@bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    )
    code, out, err = _finish(_process(["bce", url], cwd=tmp_path, env={"CECLI_REMOTE_TIMEOUT": "1"}))
    assert (code, out) == (3, "")
    shown = f"s3://***@bucket/x.csv?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    assert err.startswith(f"cecli: error: {shown}: cannot list: "), err
    assert "AKIAEXAMPLE" not in err and "s3cr3t" not in err


@pytest.mark.parametrize("key", ["secret_key", "access_key", "session_token", "X-Amz-Signature"])
def test_secret_query_values_are_redacted_in_errors_and_json(cli, inputs, key):
    url = f"file://{inputs}/in.csv?{key}=TOPSECRET&keep=1"
    document = _json(cli("bce", url))
    assert document["input"]["path"] == f"file://{inputs}/in.csv?{key}=***&keep=1"
    assert document["input"]["paths"] == [f"file://{inputs}/in.csv?{key}=***&keep=1"]
    assert document["per_sample"] == pytest.approx(A_LOSSES, rel=1e-15)
    missing = cli("bce", f"file://{inputs}/missing.csv?{key}=TOPSECRET")
    assert missing.exit_code == 3
    assert missing.stderr.startswith(f"cecli: error: file://{inputs}/missing.csv?{key}=***: ")
    assert "TOPSECRET" not in missing.stderr


def test_secrets_in_a_folder_url_stay_hidden_in_every_listed_path(cli, inputs):
    document = _json(cli("bce", f"file://{inputs}/dump?secret_key=TOPSECRET"))
    assert document["input"]["paths"] == [
        f"file://{inputs}/dump/a.csv?secret_key=***",
        f"file://{inputs}/dump/b.csv?secret_key=***",
    ]
    assert document["value"] == pytest.approx(_mean(A_LOSSES + B_LOSSES), rel=1e-15)


@pytest.mark.parametrize(
    ("source", "out", "read"),
    [
        ("dump", "dump/x.csv", True),
        ("dump", "dump/deep/x.parquet", True),
        ("dump", "dump/_x.csv", False),
        ("dump", "dump/.cache/x.csv", False),
        ("dump", "dump/x.txt", False),
        ("dump", "other/x.csv", False),
        ("file://{root}/dump", "dump/x.csv", True),
        ("dump", "file://{root}/dump/x.csv", True),
        ("dump/*.csv", "dump/x.csv", True),
        ("dump/*.csv", "dump/x.parquet", False),
        ("dump/*.csv", "dump/deep/x.csv", False),
        ("dump/**/*.csv", "dump/deep/x.csv", True),
        (".", "s3://bucket/losses/part-00000.parquet", False),
        ("s3://bucket/dump", "dump/x.csv", False),
        ("-", "x.csv", False),
    ],
)
def test_would_read_says_where_a_later_run_reads(tmp_path, monkeypatch, source, out, read):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dump").mkdir()
    assert would_read(source.format(root=tmp_path), out.format(root=tmp_path)) is read


_DIRS = ["a", "b", "ab", ".h", "_u"]
_FILES = ["a.csv", "b.csv", "x.parquet", ".h.csv", "_s.csv", "n.txt"]
_SEGMENTS = ["*", "**", "?", "a*", "*.csv", "[ab]*", "a", "b", ".h*", "*.parquet", "_*"]


@settings(max_examples=60, deadline=None)
@given(
    files=st.lists(
        st.tuples(st.lists(st.sampled_from(_DIRS), max_size=2), st.sampled_from(_FILES)), min_size=1, max_size=8
    ),
    pattern=st.lists(st.sampled_from(_SEGMENTS), min_size=1, max_size=3),
)
def test_globs_match_like_the_standard_library_on_any_tree(files, pattern):
    """Without links, a glob lists the files glob.glob(recursive=True) lists, a matched folder read as a folder."""
    import tempfile

    from cecli.errors import InputError

    assume(any(ch in part for part in pattern for ch in "*?["))  # else it is a path, not a glob
    with tempfile.TemporaryDirectory() as root:
        for folders, name in files:
            _write(Path(root, *folders, name), "y_true,y_pred\n1,0.5\n")
        text = os.path.join(root, *pattern)
        expected: set[str] = set()
        for match in glob.glob(text, recursive=True):
            if not os.path.exists(match):  # glob.glob("x/**") gives "x/" even where there is no x
                continue
            if not os.path.isdir(match):
                expected.add(match)
                continue
            try:
                expected.update(expand_sources([match]))
            except InputError:  # a matched folder without data files adds none
                pass
        if expected:
            assert expand_sources([text]) == sorted(expected)
        else:
            with pytest.raises(InputError, match="the pattern matches no file"):
                expand_sources([text])


def test_an_out_path_that_cannot_be_resolved_is_left_to_the_write(tmp_path, monkeypatch):
    """would_read answers False when a path cannot be resolved; writing it then names the real reason."""
    (tmp_path / "dump").mkdir()

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os.path, "realpath", refuse)
    assert would_read(str(tmp_path / "dump"), str(tmp_path / "dump" / "out.csv")) is False
