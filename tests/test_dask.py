"""The optional Dask engine (``--engine dask``), on loopback only.

Three kinds of cluster must give the local engine's numbers exactly on a sharded dump: an in-process
cluster, the private local cluster cecli spawns itself, and real ``dask scheduler`` / ``dask worker``
processes found through ``DASK_SCHEDULER_ADDRESS``. Every cluster, client and process is closed in a
``finally`` (or a context manager), and the tests that spawn processes check that none is left behind.

The whole module is skipped when ``distributed`` is not installed; deselect it with
``--deselect tests/test_dask.py`` (or ``--ignore tests/test_dask.py``) on machines without Dask.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from cecli import compute
from cecli.cli import app
from cecli.errors import OptionError

distributed = pytest.importorskip("distributed")

from cecli import dask_engine  # noqa: E402 - only once Dask is known to be installed

N_CLASSES = 5
# One spec for every comparison: --by, --per-class and --top with a kept column exercise every merged part.
SPEC = {"y": "label", "p": "p_*", "by": "split", "per_class": True, "top": 3, "keep": "id"}
CLI_SPEC = ["sparse", "-y", "label", "-p", "p_*", "--by", "split", "--per-class", "--top", "3", "--keep", "id"]
DASK_BIN = Path(sys.executable).with_name("dask")
STARTUP_TIMEOUT = 30.0


# --------------------------------------------------------------------------- fixtures and helpers


def _table(rng: np.random.Generator, rows: int, first_id: int) -> pa.Table:
    logits = rng.normal(size=(rows, N_CLASSES))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    columns = {
        "id": [f"r{first_id + i}" for i in range(rows)],
        "split": rng.choice(["train", "val", "test"], rows).tolist(),
        "label": rng.integers(0, N_CLASSES, rows),
    }
    columns.update({f"p_{j}": probabilities[:, j] for j in range(N_CLASSES)})
    return pa.table(columns)


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    """A seeded sharded dump: 8 small Parquet shards and 2 CSV shards (sorted: Parquet first)."""
    folder = tmp_path / "dump"
    folder.mkdir()
    rng = np.random.default_rng(20240611)
    first_id = 0
    for shard in range(10):
        rows = 40 + 7 * shard
        table = _table(rng, rows, first_id)
        if shard < 8:
            pq.write_table(table, folder / f"shard-{shard:02d}.parquet")
        else:
            pa_csv.write_csv(table, folder / f"shard-{shard:02d}.csv")
        first_id += rows
    return folder


def _shards(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if not path.name.startswith((".", "_")))


@pytest.fixture
def in_process_cluster():
    """A scheduler and one two-threaded worker inside the test process (no sockets)."""
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def _summary(result) -> dict:
    return result.to_dict(per_sample=False)


def _env(**extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DASK_SCHEDULER_ADDRESS"}
    env.update({"NO_COLOR": "1", "COLUMNS": "100"}, **extra)
    env.pop("CECLI_DEBUG", None)
    return env


@pytest.fixture
def sessions():
    """Session ids of spawned process trees; anything still running in them is killed at teardown.

    The tests assert first (with :func:`_assert_session_empty`) that nothing was left behind;
    the teardown only keeps a failing test from leaking processes into the rest of the run.
    """
    spawned: list[int] = []
    try:
        yield spawned
    finally:
        for session in spawned:
            _kill_session(session)


def _spawn(args: list, sessions: list[int], **kwargs) -> subprocess.Popen:
    """Start `args` in a new session: every process it starts stays in that session (multiprocessing
    and ``dask worker`` do not call setsid), so :func:`_assert_session_empty` finds any left behind."""
    process = subprocess.Popen([str(arg) for arg in args], start_new_session=True, **kwargs)
    sessions.append(process.pid)
    return process


def _run_cli(args: list, *, sessions: list[int], env: dict, cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    """``python -W error -m cecli ARGS`` as a process; (exit code, stdout, stderr)."""
    process = _spawn(
        [sys.executable, "-W", "error", "-m", "cecli", *args],
        sessions,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, stdout, stderr


def _stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, wait, SIGKILL if needed."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _pids() -> list[int]:
    try:
        import psutil
    except ImportError:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    return psutil.pids()


def _is_zombie(pid: int) -> bool:
    try:
        import psutil
    except ImportError:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _session_members(session: int) -> list[int]:
    """PIDs of live (not zombie) processes in `session`."""
    members = []
    for pid in _pids():
        try:
            if os.getsid(pid) == session and not _is_zombie(pid):
                members.append(pid)
        except Exception:  # gone meanwhile (OSError, psutil.NoSuchProcess)
            continue
    return members


def _kill_session(session: int) -> None:
    for pid in _session_members(session):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _assert_session_empty(session: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := _session_members(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes left behind: {[_cmdline(pid) for pid in left]}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"<{pid}>"


@contextlib.contextmanager
def _real_cluster(folder: Path, sessions: list[int], *, worker_options: tuple = ()):
    """``dask scheduler`` and one ``dask worker`` (no nanny) on 127.0.0.1; yields the scheduler address.

    Both are terminated and waited for on the way out, and their sessions must then be empty.
    """
    scheduler_file = folder / "scheduler.json"
    logs = {name: open(folder / f"{name}.log", "w") for name in ("scheduler", "worker")}  # noqa: SIM115
    env = _env()
    processes: list[subprocess.Popen] = []
    try:
        processes.append(
            _spawn(
                [DASK_BIN, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", scheduler_file,
                 "--dashboard-address", "127.0.0.1:0"],
                sessions, cwd=folder, env=env, stdout=logs["scheduler"], stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        processes.append(
            _spawn(
                [DASK_BIN, "worker", "--scheduler-file", scheduler_file, "--host", "127.0.0.1", "--nworkers", "1",
                 "--nthreads", "1", "--dashboard-address", "127.0.0.1:0", "--no-nanny", *worker_options],
                sessions, cwd=folder, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ready(scheduler_file):
            assert all(p.poll() is None for p in processes), _logs(folder)
            assert time.monotonic() < deadline, "the scheduler did not start:\n" + _logs(folder)
            time.sleep(0.05)
        with distributed.Client(scheduler_file=str(scheduler_file), timeout="20s") as client:
            client.wait_for_workers(1, timeout=STARTUP_TIMEOUT)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        yield address
    finally:
        for process in reversed(processes):  # the worker first, so it does not wait for a scheduler to return
            _stop(process)
        for log in logs.values():
            log.close()
    for process in processes:
        assert process.returncode is not None
        _assert_session_empty(process.pid)


def _ready(scheduler_file: Path) -> bool:
    try:
        return "address" in json.loads(scheduler_file.read_text())
    except (OSError, ValueError):
        return False


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in sorted(folder.glob("*.log")))


# --------------------------------------------------------------------------- same numbers on every cluster


def test_in_process_cluster_equals_the_local_engine_exactly(dump, in_process_cluster):
    local = _summary(compute("sparse", str(dump), **SPEC, per_sample=False))
    runs = [
        _summary(compute("sparse", str(dump), **SPEC, per_sample=False, engine="dask", scheduler=in_process_cluster))
        for _ in range(2)
    ]
    assert local["count"] == local["rows"] == sum(40 + 7 * shard for shard in range(10))
    assert {"value", "mean", "sum", "accuracy", "perplexity", "histogram", "by", "per_class", "top"} <= set(local)
    assert runs[0] == local  # exact, every key: the partial sums are exact and merged in file order
    assert runs[1] == runs[0]  # and the same from run to run


def test_in_process_cluster_keeps_per_sample_values_on_the_workers(dump, in_process_cluster):
    result = compute("sparse", str(dump), y="label", p="p_*", engine="dask", scheduler=in_process_cluster)
    assert result.per_sample is None
    assert result.warnings == ["per-sample values stay on the Dask workers (use --out DIR for them)"]
    assert result.value == compute("sparse", str(dump), y="label", p="p_*", per_sample=False).value


def test_private_local_cluster_through_the_cli_equals_the_local_engine(dump, tmp_path, sessions):
    args = [*CLI_SPEC, str(dump), "--summary-only", "-f", "json"]
    local = _run_cli(args, sessions=sessions, env=_env(), cwd=tmp_path)
    started = time.monotonic()
    code, stdout, stderr = _run_cli([*args, "--engine", "dask"], sessions=sessions, env=_env(), cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert (local[0], local[2]) == (0, "")
    assert (code, stderr) == (0, "")
    assert json.loads(stdout) == json.loads(local[1])
    for session in sessions:
        _assert_session_empty(session)
    assert elapsed < 30, f"the private cluster took {elapsed:.1f} s"


def test_real_scheduler_and_worker_processes_through_the_environment(dump, tmp_path, sessions):
    args = [*CLI_SPEC, str(dump), "--summary-only", "-f", "json"]
    local = _summary(compute("sparse", str(dump), **SPEC, per_sample=False))
    with _real_cluster(tmp_path, sessions) as address:
        code, stdout, stderr = _run_cli(
            [*args, "--engine", "dask"], sessions=sessions, env=_env(DASK_SCHEDULER_ADDRESS=address), cwd=tmp_path
        )
    assert (code, stderr) == (0, "")
    assert json.loads(stdout) == json.loads(json.dumps(local))
    for session in sessions:
        _assert_session_empty(session)
