"""Pipes and signals: a closed stdout, SIGINT and SIGTERM mid-run, FIFOs and /dev/stdin, in real subprocesses."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hardening_helpers import OK_VALUE, TIMEOUT, cecli_process, finish, write_parquet

# --------------------------------------------------------------------------- pipes and signals


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    rows = "".join(f"{i % 2},0.{i % 97 + 1:02d}\n" for i in range(300_000))
    path.write_text("y_true,y_pred\n" + rows, encoding="ascii")
    return path


def test_stdout_closed_early_is_quiet(big_csv):
    # The same as `cecli bce big.csv -f ndjson | head -1`.
    proc = cecli_process(["bce", big_csv, "-f", "ndjson"], cwd=big_csv.parent)
    first = proc.stdout.readline()
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert json.loads(first) == {"row": 1, "loss": pytest.approx(-math.log1p(-0.01), rel=1e-12)}
    assert err == b""
    assert proc.returncode == 141


def _open_fifo_for_writing(path: Path, proc, deadline: float) -> int:
    """Open a FIFO once `proc` has opened it for reading (never blocks forever)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"cecli never opened the FIFO: {proc.stderr.read()!r}") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def _feed_without_eof(fd: int) -> None:
    # Far more than a pipe buffer (64 KiB): once os.write returns, cecli has read most of
    # it and is waiting for more, i.e. it is certainly mid-run.
    os.write(fd, b"y_true,y_pred\n" + b"1,0.5\n" * 200_000)
    time.sleep(0.3)


def test_sigint_mid_read_exits_130_promptly(tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    proc = cecli_process(["bce", fifo, "-f", "json"], cwd=tmp_path)
    fd = _open_fifo_for_writing(fifo, proc, time.monotonic() + TIMEOUT)
    try:
        _feed_without_eof(fd)
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc, timeout=10)  # a hang would be until EOF, i.e. forever
    finally:
        os.close(fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err == b"cecli: error: interrupted\n"


def test_sigint_mid_read_exits_130(tmp_path):
    # As above, but the writer closes after the signal (Ctrl-C in a shell also ends the writer).
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    proc = cecli_process(["bce", fifo, "-f", "json"], cwd=tmp_path)
    fd = _open_fifo_for_writing(fifo, proc, time.monotonic() + TIMEOUT)
    try:
        _feed_without_eof(fd)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    finally:
        os.close(fd)
    out, err = finish(proc)
    assert proc.returncode == 130
    assert err == b"cecli: error: interrupted\n"
    assert out == b""


def _sigterm_during_out(folder: Path, *, close_input: bool):
    proc = cecli_process(
        ["bce", "-", "--input-format", "csv", "-f", "json", "--out", "out.parquet", "--batch-rows", "100"],
        cwd=folder,
        stdin=subprocess.PIPE,
    )
    try:
        proc.stdin.write(b"y_true,y_pred\n" + b"1,0.5\n" * 100_000)
        proc.stdin.flush()
        deadline = time.monotonic() + TIMEOUT
        while not any(name.startswith(".out.parquet") for name in os.listdir(folder)):
            assert proc.poll() is None and time.monotonic() < deadline, "no temporary --out file appeared"
            time.sleep(0.02)
        time.sleep(0.3)  # blocked reading stdin, with rows already written to the temporary file
        proc.send_signal(signal.SIGTERM)
        if close_input:
            time.sleep(0.2)
            proc.stdin.close()
        proc.wait(timeout=10 if not close_input else TIMEOUT)  # a hang lasts until EOF
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                stream.close()
    return proc.returncode, sorted(os.listdir(folder))


def test_sigterm_during_out_leaves_nothing_promptly(tmp_path):
    code, left = _sigterm_during_out(tmp_path, close_input=False)
    assert code != 0
    assert left == []


def test_sigterm_during_out_leaves_nothing(tmp_path):
    code, left = _sigterm_during_out(tmp_path, close_input=True)
    assert code != 0
    assert left == []  # neither out.parquet nor a hidden .out.parquet.*.tmp


def _write_fifo_in_background(fifo: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(fifo, "wb") as stream:  # blocks until cecli opens the FIFO
            stream.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _parquet_bytes(path: Path) -> bytes:
    write_parquet(path, {"y_true": [1, 0], "y_pred": [0.9, 0.2]})
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_reading_a_fifo(tmp_path, kind):
    data = b"y_true,y_pred\n1,0.9\n0,0.2\n" if kind == "csv" else _parquet_bytes(tmp_path / "src.parquet")
    fifo = tmp_path / f"in.{kind}"
    os.mkfifo(fifo)
    writer = _write_fifo_in_background(fifo, data)
    proc = cecli_process(["bce", fifo, "--value-only"], cwd=tmp_path)
    out, err = finish(proc)
    writer.join(timeout=TIMEOUT)
    assert (proc.returncode, err) == (0, b"")
    assert float(out) == pytest.approx(OK_VALUE, rel=1e-12)


def test_reading_a_fifo_without_extension_sniffs_parquet(tmp_path):
    data = _parquet_bytes(tmp_path / "src.parquet")
    fifo = tmp_path / "in"
    os.mkfifo(fifo)
    writer = _write_fifo_in_background(fifo, data)
    proc = cecli_process(["bce", fifo, "--value-only"], cwd=tmp_path)
    out, err = finish(proc)
    writer.join(timeout=TIMEOUT)
    assert (proc.returncode, err) == (0, b"")
    assert float(out) == pytest.approx(OK_VALUE, rel=1e-12)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_dev_stdin_as_path(tmp_path, kind):
    data = b"y_true,y_pred\n1,0.9\n0,0.2\n" if kind == "csv" else _parquet_bytes(tmp_path / "src.parquet")
    proc = cecli_process(["bce", "/dev/stdin", "--value-only"], cwd=tmp_path, stdin=subprocess.PIPE)
    try:
        out, err = proc.communicate(data, timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (0, b"")
    assert float(out) == pytest.approx(OK_VALUE, rel=1e-12)
