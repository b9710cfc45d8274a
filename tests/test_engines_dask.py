"""The optional Dask engine (``--engine dask``), on loopback only.

Three kinds of cluster must give the local engine's numbers exactly on a sharded dump: an in-process
cluster, the private local cluster cecli spawns itself, and real ``dask scheduler`` / ``dask worker``
processes found through ``DASK_SCHEDULER_ADDRESS``. Every cluster, client and process is closed in a
``finally`` (or a context manager), and the tests that spawn processes check that none is left behind.

The whole module is skipped when ``distributed`` is not installed; deselect it with
``--deselect tests/test_engines_dask.py`` (or ``--ignore tests/test_engines_dask.py``) on machines without Dask.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from cecli import compute
from cecli.cli import app
from cecli.errors import InputError, OptionError, OutputError

distributed = pytest.importorskip("distributed")

from cecli.engines import dask as dask_engine  # noqa: E402 - only once Dask is known to be installed
from cecli.engines import dask_cluster, dask_task  # noqa: E402

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
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster


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


class _RealScheduler:
    """A running ``dask scheduler`` on 127.0.0.1 to which workers can be added (see :func:`_real_scheduler`)."""

    def __init__(self, folder: Path, sessions: list[int], processes: list, logs: list, security=None) -> None:
        self.folder, self.sessions, self.processes, self.logs = folder, sessions, processes, logs
        self.scheduler_file = folder / "scheduler.json"
        self.address = ""
        self.security = security  # the client's, for a TLS scheduler

    def add_worker(self, *options, cwd: Path | None = None) -> subprocess.Popen:
        """Start one ``dask worker`` (no nanny, one thread unless `options` say otherwise)."""
        log = open(self.folder / f"worker-{len(self.processes)}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        process = _spawn(
            [DASK_BIN, "worker", "--scheduler-file", self.scheduler_file, "--host", "127.0.0.1", "--nworkers", "1",
             "--nthreads", "1", "--dashboard-address", "127.0.0.1:0", "--no-nanny",
             "--local-directory", self.folder / "worker-space", *options],
            self.sessions, cwd=cwd or self.folder, env=_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def wait_for_workers(self, count: int = 1) -> None:
        with distributed.Client(self.address, timeout="20s", security=self.security) as client:
            client.wait_for_workers(count, timeout=STARTUP_TIMEOUT)


@contextlib.contextmanager
def _real_scheduler(folder: Path, sessions: list[int], *, options: tuple = (), security=None):
    """``dask scheduler`` on 127.0.0.1, without workers; yields a :class:`_RealScheduler`.

    It and every worker added are terminated and waited for on the way out, and their sessions must
    then be empty.
    """
    processes: list[subprocess.Popen] = []
    logs: list = []
    cluster = _RealScheduler(folder, sessions, processes, logs, security)
    try:
        log = open(folder / "scheduler.log", "w")  # noqa: SIM115
        logs.append(log)
        processes.append(
            _spawn(
                [DASK_BIN, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                 cluster.scheduler_file, "--dashboard-address", "127.0.0.1:0", *options],
                sessions, cwd=folder, env=_env(), stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ready(cluster.scheduler_file):
            assert processes[0].poll() is None, _logs(folder)
            assert time.monotonic() < deadline, "the scheduler did not start:\n" + _logs(folder)
            time.sleep(0.05)
        cluster.address = json.loads(cluster.scheduler_file.read_text())["address"]
        assert cluster.address.startswith(("tcp://127.0.0.1:", "tls://127.0.0.1:"))
        yield cluster
    finally:
        for process in reversed(processes):  # workers first, so they do not wait for a scheduler to return
            _stop(process)
        for log in logs:
            log.close()
    for process in processes:
        assert process.returncode is not None
        _assert_session_empty(process.pid)


@contextlib.contextmanager
def _real_cluster(folder: Path, sessions: list[int], *, worker_options: tuple = ()):
    """``dask scheduler`` and one ``dask worker`` (no nanny) on 127.0.0.1; yields the scheduler address."""
    with _real_scheduler(folder, sessions) as cluster:
        worker = cluster.add_worker(*worker_options)
        assert worker.poll() is None, _logs(folder)
        cluster.wait_for_workers(1)
        yield cluster.address


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
        _summary(
            compute(
                "sparse",
                str(dump),
                **SPEC,
                per_sample=False,
                engine="dask",
                scheduler=in_process_cluster.scheduler_address,
            )
        )
        for _ in range(2)
    ]
    assert local["count"] == local["rows"] == sum(40 + 7 * shard for shard in range(10))
    assert {"value", "mean", "sum", "accuracy", "perplexity", "histogram", "by", "per_class", "top"} <= set(local)
    assert runs[0] == local  # exact, every key: the partial sums are exact and merged in file order
    assert runs[1] == runs[0]  # and the same from run to run
    assert "cecli-task" in in_process_cluster.scheduler.task_prefixes  # it did run on this cluster


def test_in_process_cluster_keeps_per_sample_values_on_the_workers(dump, in_process_cluster):
    result = compute(
        "sparse", str(dump), y="label", p="p_*", engine="dask", scheduler=in_process_cluster.scheduler_address
    )
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


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets in LISTEN state owned by `pids` (Linux /proc)."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A = LISTEN
                    host, port = local.split(":")
                    raw = bytes.fromhex(host)
                    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]  # little-endian 32-bit words
                    address = ".".join(str(b) for b in words[0]) if width == 4 else b"".join(words).hex()
                    found.add((address, int(port, 16)))
    return found


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux /proc")
def test_private_local_cluster_listens_on_loopback_only(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    before = _listening({os.getpid()})
    with dask_cluster._cluster(None) as address:
        assert address.startswith("tcp://127.0.0.1:")
        processes = _descendants(os.getpid())
        assert len(processes) >= 3  # this process and the workers
        listening = _listening(processes) - before
    assert listening, "found no listening sockets"
    assert {host for host, _ in listening} == {"127.0.0.1"}, listening
    assert int(address.rsplit(":", 1)[1]) in {port for _, port in listening}


def test_real_scheduler_and_worker_processes_through_the_environment(dump, tmp_path, sessions):
    args = [*CLI_SPEC, str(dump), "--summary-only", "-f", "json"]
    local = _summary(compute("sparse", str(dump), **SPEC, per_sample=False))
    with _real_cluster(tmp_path, sessions) as address:
        code, stdout, stderr = _run_cli(
            [*args, "--engine", "dask"], sessions=sessions, env=_env(DASK_SCHEDULER_ADDRESS=address), cwd=tmp_path
        )
        with distributed.Client(address, timeout="20s") as client:  # it did run on this scheduler
            prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
            switch_intervals = set(client.run(sys.getswitchinterval).values())
    assert (code, stderr) == (0, "")
    assert json.loads(stdout) == json.loads(json.dumps(local))
    assert "cecli-task" in prefixes
    assert switch_intervals == {0.0005}  # the worker process got the CLI's settings from its task
    for session in sessions:
        _assert_session_empty(session)


# --------------------------------------------------------------------------- --out DIR


def test_out_folder_has_one_parquet_part_per_input_file(dump, tmp_path, in_process_cluster):
    out = tmp_path / "losses"
    spec = {"y": "label", "p": "p_*", "keep": "id", "ignore_index": 0}  # class 0 rows do not count: null
    local = compute("sparse", str(dump), **spec)
    result = compute(
        "sparse", str(dump), **spec, out=str(out), engine="dask", scheduler=in_process_cluster.scheduler_address
    )
    assert result.value == local.value
    shards = _shards(dump)
    assert sorted(os.listdir(out)) == sorted(["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(len(shards))])
    assert (out / "_SUCCESS").stat().st_size == 0
    parts = [pq.read_table(out / f"part-{index:05d}.parquet") for index in range(len(shards))]
    for part, shard in zip(parts, shards, strict=True):
        rows = pq.read_metadata(shard).num_rows if shard.suffix == ".parquet" else len(pa_csv.read_csv(shard))
        assert part.column_names == ["row", "loss", "id"]
        assert part["row"].to_pylist() == list(range(1, rows + 1))  # record numbers within that file
    table = pa.concat_tables(parts)
    losses = table["loss"].to_numpy(zero_copy_only=False)  # null -> NaN
    assert table["loss"].null_count == int((~local.counted).sum()) > 0
    np.testing.assert_array_equal(losses, local.per_sample)  # NaN where ignored, bit-equal elsewhere
    assert table["id"].to_pylist() == local.keep["id"]


def test_out_folder_must_be_new_or_empty(dump, tmp_path, runner, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    out = tmp_path / "losses"
    out.mkdir()
    (out / "old.parquet").write_bytes(b"keep me")
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"cecli: error: --out {out} holds 'old.parquet', which cecli did not write "
        "(give a new or empty folder, or one left by a failed cecli run)\n"
    )
    assert os.listdir(out) == ["old.parquet"]


# --------------------------------------------------------------------------- clear errors


def test_without_dask_installed_compute_says_how_to_install_it(dump, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    with pytest.raises(OptionError) as caught:
        compute("sparse", str(dump), y="label", p="p_*", engine="dask")
    assert "pip install 'cecli[dask]'" in str(caught.value)


def test_without_dask_installed_the_cli_exits_2(dump, monkeypatch, runner):
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = runner.invoke(app, ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask"])
    assert result.exit_code == 2
    assert result.stderr == (
        "cecli: error: --engine dask needs Dask, which is not installed (pip install 'cecli[dask]')\n"
    )


def test_unreachable_scheduler_exits_3_with_one_line(dump, monkeypatch, runner):
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1.0)  # the default 10 s is too slow for a unit test
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
    result = runner.invoke(app, args)
    assert result.exit_code == 3
    assert result.stderr == (
        "cecli: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9: Connection refused for 1 s "
        "(check --scheduler)\n"
    )


def test_corrupt_shard_is_named(dump, in_process_cluster, runner):
    bad = _shards(dump)[3]
    bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
    args = [
        "sparse",
        str(dump),
        "-y",
        "label",
        "-p",
        "p_*",
        "--engine",
        "dask",
        "--scheduler",
        in_process_cluster.scheduler_address,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"cecli: error: {bad}")
    assert result.stderr.count("\n") == 1


def test_corrupt_shard_is_named_across_processes(dump, tmp_path, sessions):
    bad = _shards(dump)[5]
    bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
    with _real_cluster(tmp_path, sessions) as address:
        code, stdout, stderr = _run_cli(
            ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler", address],
            sessions=sessions, env=_env(), cwd=tmp_path,
        )  # fmt: skip
    assert (code, stdout) == (3, "")
    assert stderr.startswith(f"cecli: error: {bad}")
    assert stderr.count("\n") == 1


NO_CECLI_PRELOAD = '''
"""Preload for `dask worker`: make `import cecli` fail, as on a worker where cecli is not installed."""
import sys


class _NoCecli:
    def find_spec(self, name, path=None, target=None):
        if name == "cecli" or name.startswith("cecli."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoCecli())
for module in [m for m in sys.modules if m == "cecli" or m.startswith("cecli.")]:
    del sys.modules[module]
'''


def test_worker_without_cecli_is_a_clear_usage_error(dump, tmp_path, sessions):
    preload = tmp_path / "no_cecli_preload.py"
    preload.write_text(textwrap.dedent(NO_CECLI_PRELOAD))
    with _real_cluster(tmp_path, sessions, worker_options=("--preload", preload)) as address:
        code, stdout, stderr = _run_cli(
            ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask"],
            sessions=sessions, env=_env(DASK_SCHEDULER_ADDRESS=address), cwd=tmp_path, timeout=15,
        )  # fmt: skip
    assert (code, stdout) == (2, "")
    assert re.fullmatch(
        r"cecli: error: the Dask worker at tcp://127\.0\.0\.1:\d+ cannot import cecli "
        r"\(install cecli, with the same version, on the scheduler and every worker\)\n",
        stderr,
    ), stderr


# --------------------------------------------------------------------------- the default engine, task planning


def test_the_local_engine_never_imports_dask(tmp_path):
    sample = tmp_path / "s.csv"
    sample.write_text("y_true,y_pred\n1,0.9\n0,0.2\n")
    code = textwrap.dedent(f"""
        import contextlib, io, sys
        from cecli.cli import app
        sys.argv = ["cecli", "bce", {str(sample)!r}, "--value-only"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            app()  # main() would end the process
        print(out.getvalue().strip(), "distributed" in sys.modules or "dask" in sys.modules)
    """)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "0.16425203348601802 False\n"


def test_plan_tasks_groups_small_files_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(dask_engine, "TASK_BYTES", 100)
    monkeypatch.setattr(dask_engine, "TASK_FILES", 3)
    sizes = [10, 20, 30, 40, 200, 5, 5, 5, 5, 60, 50, 1]
    paths = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"f{index:02d}.csv"
        path.write_bytes(b"x" * size)
        paths.append(str(path))
    paths.insert(6, str(tmp_path / "missing.csv"))  # counts 0 bytes; its task names it later
    paths.append("s3://bucket/big.parquet")  # remote files count as a whole task
    paths.append(str(tmp_path / "last.csv"))
    tasks = dask_engine.plan_tasks(paths)
    assert [pair for task in tasks for pair in task] == list(enumerate(paths))  # every file once, in order
    assert [[index for index, _ in task] for task in tasks] == [
        [0, 1, 2],  # 60 bytes, 3 files
        [3, 4],  # 40 + 200 >= 100
        [5, 6, 7],  # 5 + 0 + 5, 3 files
        [8, 9, 10],  # 3 files
        [11, 12, 13],  # 50 + 1 + remote
        [14],  # the rest
    ]


def test_plan_tasks_of_no_files_is_empty():
    assert dask_engine.plan_tasks([]) == []


# --------------------------------------------------------------------------- scheduler addresses (issue 12)

ADDRESS_HINT = "(use tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786, or tls://HOST:PORT)"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("not an address", "'not an address' is not a host name"),
        ("http://127.0.0.1:1", "http:// is not a Dask protocol"),
        ("https://scheduler.example:8786", "https:// is not a Dask protocol"),
        ("tcp://", "no host"),
        ("tcp://:8786", "no host"),
        ("tcp://127.0.0.1:99999", "port 99999 is outside 1-65535"),
        ("tcp://127.0.0.1:0", "port 0 is outside 1-65535"),
        ("tcp://127.0.0.1:eight", "the port is not a number"),
    ],
)
@pytest.mark.parametrize("given_by", ["--scheduler", "DASK_SCHEDULER_ADDRESS"])
def test_malformed_scheduler_address_is_a_usage_error(dump, runner, monkeypatch, address, why, given_by):
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask"]
    if given_by == "--scheduler":
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        args += ["--scheduler", address]
    else:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        result.stderr == f"cecli: error: {given_by} {address!r} is not a Dask scheduler address: {why} {ADDRESS_HINT}\n"
    )


@contextlib.contextmanager
def _fake_endpoint(reply: bytes | None):
    """A TCP server on 127.0.0.1 that accepts connections and sends `reply` then closes, or (None) says nothing."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if reply is None:
                accepted.append(connection)  # held open, never answered
            else:
                with contextlib.suppress(OSError):
                    connection.sendall(reply)
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()
        for connection in accepted:
            connection.close()


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (None, "it accepted the connection but did not answer within 1 s"),  # a hang of 400 s before
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "what answers there does not speak Dask's protocol"),
    ],
    ids=["silent", "http"],
)
@pytest.mark.parametrize("given_by", ["--scheduler", "DASK_SCHEDULER_ADDRESS"])
def test_endpoint_that_is_not_a_scheduler_exits_3(dump, runner, monkeypatch, reply, why, given_by):
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1.0)
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask"]
    with _fake_endpoint(reply) as address:
        if given_by == "--scheduler":
            monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
            args += ["--scheduler", address]
        else:
            monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
        result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"cecli: error: cannot reach the Dask scheduler at {address}: {why} (check {given_by})\n"


def test_a_worker_address_is_not_a_scheduler(dump, runner, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with distributed.LocalCluster(
        processes=False,
        n_workers=1,
        threads_per_worker=1,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        worker = next(iter(cluster.workers.values())).address
        args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler", worker]
        result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"cecli: error: cannot reach the Dask scheduler at {worker}: a Dask Worker answers there, not a scheduler "
        "(check --scheduler)\n"
    )


# --------------------------------------------------------------------------- options that cannot apply (issue 13)


@pytest.mark.parametrize(
    ("options", "printed"),
    [
        (["-f", "csv"], "-f csv"),
        (["-f", "ndjson"], "-f ndjson"),
        (["--value-only", "--reduction", "none"], "--value-only --reduction none"),
    ],
)
def test_per_sample_output_formats_need_out_with_dask(dump, runner, monkeypatch, options, printed):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    result = runner.invoke(app, ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", *options])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"cecli: error: --engine dask cannot be combined with {printed} "
        "(per-sample values stay on the Dask workers: write them with --out DIR)\n"
    )


@pytest.mark.parametrize(
    ("out", "shown"),
    [
        ("s3://bucket/losses", "s3://bucket/losses"),
        ("gs://bucket/losses", "gs://bucket/losses"),
        ("file:///tmp/losses", "file:///tmp/losses"),
        ("s3://AKIA:s3cr3t@bucket/losses?secret_key=abc", "s3://***@bucket/losses?secret_key=***"),
    ],
)
def test_out_url_is_refused_with_dask(dump, runner, monkeypatch, tmp_path, out, shown):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--out", out]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"cecli: error: --out {shown}: the Dask engine writes to a folder path, not a URL "
        "(give a folder every worker sees, e.g. on a shared file system)\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["dump"]  # no local folder named after the URL


# --------------------------------------------------------------------------- --out after a failed run


def test_out_folder_of_a_failed_run_is_replaced(dump, tmp_path, in_process_cluster):
    out = tmp_path / "losses"
    out.mkdir()
    (out / "part-00003.parquet").write_bytes(b"left by a failed run")
    (out / ".part-00001.parquet.x1y2z3.tmp").write_bytes(b"")  # a killed worker's temporary part
    shards = _shards(dump)
    compute("sparse", str(dump), y="label", p="p_*", out=str(out), engine="dask",
            scheduler=in_process_cluster.scheduler_address)  # fmt: skip
    assert sorted(os.listdir(out)) == ["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(len(shards))]
    assert pq.read_metadata(out / "part-00003.parquet").num_rows == 40 + 7 * 3


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (
            {"part-00000.parquet": b"", "_SUCCESS": b""},
            "--out {out} holds the result of a finished run (_SUCCESS) (remove it or give another folder)",
        ),
        (
            {"part-00000.parquet": b"", "notes.txt": b"mine"},
            "--out {out} holds 'notes.txt', which cecli did not write "
            "(give a new or empty folder, or one left by a failed cecli run)",
        ),
        (
            {"part-0.parquet": b""},  # not cecli's name for a part
            "--out {out} holds 'part-0.parquet', which cecli did not write "
            "(give a new or empty folder, or one left by a failed cecli run)",
        ),
    ],
)
def test_out_folder_with_other_contents_is_refused(dump, tmp_path, runner, monkeypatch, contents, message):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    out = tmp_path / "losses"
    out.mkdir()
    for name, data in contents.items():
        (out / name).write_bytes(data)
    result = runner.invoke(
        app, ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--out", str(out)]
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "cecli: error: " + message.format(out=out) + "\n"
    assert sorted(os.listdir(out)) == sorted(contents)  # nothing removed


# --------------------------------------------------------------------------- a failed task ends the run


def test_a_failed_task_cancels_the_others_and_leaves_no_temporary_part(dump, tmp_path, in_process_cluster, monkeypatch):
    """The first failure ends the run; the tasks still running stop at their next batch, so no part is
    written once compute() has returned, and none is left half-written."""
    from cecli import files as cecli_files
    from cecli.io.base import ReadSettings

    shards = _shards(dump)
    bad = shards[1]
    bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
    started = []
    slow_batches = cecli_files._batches

    def slow(*args, **kwargs):  # about 0.5 s a file, so that tasks are still running at the failure
        for batch in slow_batches(*args, **kwargs):
            if not started:  # as left by a worker killed while it wrote part 7
                (out / ".part-00007.parquet.k1ll3d.tmp").write_bytes(b"")
            started.append(batch)
            time.sleep(0.05)
            yield batch

    monkeypatch.setattr(cecli_files, "_batches", slow)
    monkeypatch.setattr(dask_engine, "TASK_FILES", 5)  # two tasks of 5 files, run side by side
    out = tmp_path / "losses"
    with pytest.raises(InputError) as caught:
        compute("sparse", str(dump), y="label", p="p_*", out=str(out), engine="dask", read=ReadSettings(batch_rows=10),
                scheduler=in_process_cluster.scheduler_address)  # fmt: skip
    assert str(caught.value).startswith(f"{bad}: not a readable Parquet file")
    assert started  # tasks were running when the failure came
    with distributed.Client(in_process_cluster.scheduler_address) as client:
        running = client.run(lambda dask_worker: list(dask_worker.active_threads.values()))
    assert running == {address: [] for address in running}  # nothing left running: no part can appear later
    left = sorted(os.listdir(out))
    # Task 0 fails on its second file (after about 0.2 s on the first); task 1 is then within its first file,
    # which takes 0.4 s, and stops at its next batch instead of going on through files 6 to 9. No temporary part.
    assert set(left) <= {"part-00000.parquet", "part-00005.parquet"}, left
    for name in left:  # and whole parts only
        index = int(name[5:10])
        assert pq.read_metadata(out / name).num_rows == 40 + 7 * index

    # The shard is repaired: the same command runs again into the same folder.
    pq.write_table(_table(np.random.default_rng(1), 47, 0), bad)
    started.clear()
    compute("sparse", str(dump), y="label", p="p_*", out=str(out), engine="dask",
            scheduler=in_process_cluster.scheduler_address)  # fmt: skip
    assert sorted(os.listdir(out)) == ["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(len(shards))]


# --------------------------------------------------------------------------- sizing the private cluster


@pytest.mark.parametrize(
    ("cpu_max", "v1", "expected"),
    [
        (None, None, 6),  # no cgroup: the CPU set
        ("max 100000\n", None, 6),  # no quota
        ("150000 100000\n", None, 2),  # 1.5 CPUs -> 2 workers
        ("100000 100000\n", None, 1),
        ("50000 100000\n", None, 1),  # at least one
        ("900000 100000\n", None, 6),  # a quota above the CPU set
        (None, ("200000", "100000"), 2),  # cgroup v1
        (None, ("-1", "100000"), 6),  # cgroup v1 without quota
    ],
)
def test_usable_cpus_respects_the_cpu_set_and_the_cgroup_quota(tmp_path, monkeypatch, cpu_max, v1, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    paths = {
        "v2": tmp_path / "cpu.max",
        "quota": tmp_path / "cpu.cfs_quota_us",
        "period": tmp_path / "cpu.cfs_period_us",
    }
    if cpu_max is not None:
        paths["v2"].write_text(cpu_max)
    if v1 is not None:
        paths["quota"].write_text(v1[0] + "\n")
        paths["period"].write_text(v1[1] + "\n")
    monkeypatch.setattr(dask_cluster, "CGROUP_CPU_MAX", str(paths["v2"]))
    monkeypatch.setattr(dask_cluster, "CGROUP_V1_QUOTA", (str(paths["quota"]), str(paths["period"])))
    assert dask_cluster.usable_cpus() == expected


# --------------------------------------------------------------------------- real clusters that grow, differ, fail


def test_late_worker_and_relative_paths_on_a_real_cluster(dump, tmp_path, sessions):
    """The scheduler has no worker when cecli starts: cecli says it waits, and runs once a worker joins.
    The worker runs in another working directory, so it can only find `dump` and `--out losses`
    because cecli made them absolute."""
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    dump.rename(client_dir / "dump")
    worker_dir = tmp_path / "elsewhere"
    worker_dir.mkdir()
    local = compute("sparse", str(client_dir / "dump"), y="label", p="p_*", keep="id", per_sample=True)
    args = ["sparse", "dump", "-y", "label", "-p", "p_*", "--keep", "id", "--engine", "dask", "--out", "losses",
            "--summary-only", "-f", "json", "--wait-for-workers", "60"]  # fmt: skip
    with _real_scheduler(tmp_path, sessions) as cluster:
        process = _spawn(
            [sys.executable, "-W", "error", "-m", "cecli", *args], sessions, cwd=client_dir,
            env=_env(DASK_SCHEDULER_ADDRESS=cluster.address), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            waiting = process.stderr.readline()  # blocks until cecli waits: the worker joins only then
            cluster.add_worker(cwd=worker_dir)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            _stop(process)
    assert waiting == (
        f"cecli: waiting up to 60 s for a first worker to join the Dask scheduler at {cluster.address}\n"
    )
    assert (process.returncode, stderr) == (0, "")
    assert json.loads(stdout)["value"] == local.value
    shards = _shards(client_dir / "dump")
    out = client_dir / "losses"
    assert sorted(os.listdir(out)) == ["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(len(shards))]
    table = pa.concat_tables([pq.read_table(out / f"part-{i:05d}.parquet") for i in range(len(shards))])
    np.testing.assert_array_equal(table["loss"].to_numpy(zero_copy_only=False), local.per_sample)
    assert table["id"].to_pylist() == local.keep["id"]
    assert not (worker_dir / "losses").exists()
    for session in sessions:
        _assert_session_empty(session)


OTHER_VERSION_PRELOAD = '''
"""Preload for `dask worker`: this worker's cecli says it is another version."""
import cecli

cecli.__version__ = "0.0.1-other"
'''


def test_worker_with_another_cecli_version_is_refused(dump, tmp_path, sessions):
    preload = tmp_path / "other_version_preload.py"
    preload.write_text(OTHER_VERSION_PRELOAD)
    from cecli import __version__

    with _real_cluster(tmp_path, sessions, worker_options=("--preload", preload)) as address:
        code, stdout, stderr = _run_cli(
            ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler", address],
            sessions=sessions, env=_env(), cwd=tmp_path, timeout=30,
        )  # fmt: skip
    assert (code, stdout) == (2, "")
    assert re.fullmatch(
        rf"cecli: error: the Dask worker at tcp://127\.0\.0\.1:\d+ has cecli 0\.0\.1-other, this client has cecli "
        rf"{re.escape(__version__)} \(install cecli, with the same version, on the scheduler and every worker\)\n",
        stderr,
    ), stderr


SLOW_PRELOAD = '''
"""Preload for `dask worker`: batches take 0.2 s each, and a file marks that a task has started."""
import os
import time

import cecli.files

MARK = {mark!r}
if not getattr(cecli.files._batches, "slowed", False):  # a preload may run twice
    _batches = cecli.files._batches

    def _slow(*args, **kwargs):
        for batch in _batches(*args, **kwargs):
            open(MARK, "a").close()
            time.sleep(0.2)
            yield batch

    _slow.slowed = True
    cecli.files._batches = _slow
'''


def test_losing_the_scheduler_mid_run_is_one_line(dump, tmp_path, sessions):
    mark = tmp_path / "task-started"
    preload = tmp_path / "slow_preload.py"
    preload.write_text(SLOW_PRELOAD.format(mark=str(mark)))
    with _real_scheduler(tmp_path, sessions) as cluster:
        cluster.add_worker("--preload", preload)
        cluster.wait_for_workers(1)
        process = _spawn(
            [sys.executable, "-W", "error", "-m", "cecli", "sparse", str(dump), "-y", "label", "-p", "p_*",
             "--engine", "dask", "--scheduler", cluster.address, "--batch-rows", "10", "-f", "json"],
            sessions, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not mark.exists():
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, _logs(tmp_path)
                time.sleep(0.05)
            cluster.processes[0].kill()  # the scheduler, mid-run
            stdout, stderr = process.communicate(timeout=60)
        finally:
            _stop(process)
            for worker in cluster.processes[1:]:  # without its scheduler a worker takes seconds to end on SIGTERM
                worker.kill()
    assert (process.returncode, stdout) == (3, "")
    assert stderr == (
        f"cecli: error: lost the Dask scheduler at {cluster.address} during the run "
        "(check the scheduler's log; rerun when it is back)\n"
    )


def test_corrupt_shard_on_the_private_cluster_is_one_line(dump, tmp_path, sessions):
    bad = _shards(dump)[2]
    bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
    code, stdout, stderr = _run_cli(
        ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask"], sessions=sessions, env=_env(),
        cwd=tmp_path,
    )  # fmt: skip
    with pytest.raises(InputError) as local:  # the local engine's one line for the same shard
        compute("sparse", str(dump), y="label", p="p_*")
    assert str(local.value).startswith(f"{bad}: not a readable Parquet file: ")
    assert (code, stdout, stderr) == (3, "", f"cecli: error: {local.value}\n")  # no worker log before it
    for session in sessions:
        _assert_session_empty(session)


def test_a_file_the_worker_cannot_see_is_named_with_the_worker(dump, in_process_cluster, monkeypatch, runner):
    """The client sees every file, the worker does not (another machine): the message says workers need the path."""
    gone = _shards(dump)[4]
    plan = dask_engine.plan_tasks

    def plan_then_hide(paths):  # after the client has listed and planned the files
        tasks = plan(paths)
        gone.rename(gone.with_name("_hidden.parquet"))
        return tasks

    monkeypatch.setattr(dask_engine, "plan_tasks", plan_then_hide)
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler",
            in_process_cluster.scheduler_address]  # fmt: skip
    result = runner.invoke(app, args)
    (worker,) = in_process_cluster.scheduler.workers
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"cecli: error: {gone}: a Dask worker ({worker}) cannot see this file (Dask workers open paths themselves: "
        "every worker needs the same path, e.g. a shared file system)\n"
    )


def test_a_cluster_that_loses_every_worker_stops_after_the_wait(dump, monkeypatch, capsys):
    from cecli import files as cecli_files
    from cecli.io.base import ReadSettings

    monkeypatch.setattr(dask_engine, "WATCH_INTERVAL", 0.1)
    slow_batches = cecli_files._batches
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as cluster:

        def slow_then_leave(*args, **kwargs):
            for batch in slow_batches(*args, **kwargs):
                if cluster.workers:  # the only worker leaves during the first task
                    threading.Thread(target=cluster.scale, args=(0,), daemon=True).start()
                time.sleep(0.02)  # the worker goes while the task still runs, so its result is lost
                yield batch

        monkeypatch.setattr(cecli_files, "_batches", slow_then_leave)
        with pytest.raises(OptionError) as caught:
            compute("sparse", str(dump), y="label", p="p_*", engine="dask", read=ReadSettings(batch_rows=10),
                    scheduler=cluster.scheduler_address, wait_for_workers=0.5)  # fmt: skip
    assert str(caught.value) == (
        "the Dask cluster has had no workers for 0.5 s "
        "(check the worker logs, or wait longer with --wait-for-workers SECONDS)"
    )
    assert capsys.readouterr().err == "cecli: the Dask cluster has no workers; waiting up to 0.5 s for one\n"


def test_a_worker_that_joins_with_another_version_is_refused_by_its_task(dump, in_process_cluster):
    """Workers that join during the run were not asked before it: each task checks its worker's version."""
    from cecli import __version__

    with distributed.Client(in_process_cluster.scheduler_address) as client:
        future = client.submit(dask_engine._task, [(0, str(_shards(dump)[0]))], client_version="0.0.1-other",
                               client_pid=os.getpid(), reference=str(dump), out_dir=None, selection=None, opts=None,
                               read=None)  # fmt: skip
        error = future.exception()
    (worker,) = in_process_cluster.scheduler.workers
    assert isinstance(error, OptionError)
    assert str(error) == (
        f"the Dask worker at {worker} has cecli {__version__}, this client has cecli 0.0.1-other "
        "(install cecli, with the same version, on the scheduler and every worker)"
    )


def test_tls_address_without_tls_settings_is_a_usage_error(dump, runner, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    for name in [name for name in os.environ if name.startswith("DASK_DISTRIBUTED__COMM__TLS")]:
        monkeypatch.delenv(name)
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler", "tls://127.0.0.1:9"]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "cecli: error: --scheduler tls://127.0.0.1:9 needs Dask's TLS settings, and none are configured "
        "(set distributed.comm.tls.ca-file, .client.cert and .client.key in Dask's configuration, "
        "e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE)\n"
    )


def test_a_cluster_whose_workers_come_back_finishes_the_run(dump, monkeypatch, capsys):
    from cecli import files as cecli_files
    from cecli.io.base import ReadSettings

    monkeypatch.setattr(dask_engine, "WATCH_INTERVAL", 0.1)
    expected = compute("sparse", str(dump), y="label", p="p_*", per_sample=False).value
    slow_batches = cecli_files._batches
    left = threading.Event()
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as cluster:

        def come_and_go():
            cluster.scale(0)
            time.sleep(1.0)  # no worker for a while: cecli waits (up to 30 s) ...
            cluster.scale(1)  # ... and a new worker runs the task again

        def slow_then_leave(*args, **kwargs):
            for batch in slow_batches(*args, **kwargs):
                if not left.is_set():
                    left.set()
                    threading.Thread(target=come_and_go, daemon=True).start()
                time.sleep(0.02)
                yield batch

        monkeypatch.setattr(cecli_files, "_batches", slow_then_leave)
        result = compute("sparse", str(dump), y="label", p="p_*", engine="dask", read=ReadSettings(batch_rows=10),
                         scheduler=cluster.scheduler_address, wait_for_workers=30, per_sample=False)  # fmt: skip
    assert result.value == expected
    assert capsys.readouterr().err == "cecli: the Dask cluster has no workers; waiting up to 30 s for one\n"


# --------------------------------------------------------------------------- states merged on the workers (issue 13)


@pytest.fixture
def tied_dump(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Six shards holding the same 30 predictions (so the largest losses tie across shards), unique ids.

    Returns the folder and the 30 losses, written out here: -ln(clip(p[label] / sum(p), 1e-7, 1 - 1e-7)).
    """
    folder = tmp_path / "tied"
    folder.mkdir()
    rng = np.random.default_rng(7)
    rows = 30
    logits = rng.normal(size=(rows, N_CLASSES))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, N_CLASSES, rows)
    for shard in range(6):
        columns = {"id": [f"s{shard}-r{i}" for i in range(rows)], "label": labels}
        columns.update({f"p_{j}": probabilities[:, j] for j in range(N_CLASSES)})
        pq.write_table(pa.table(columns), folder / f"shard-{shard}.parquet")
    picked = probabilities[np.arange(rows), labels] / probabilities.sum(axis=1)
    return folder, -np.log(np.clip(picked, 1e-7, 1 - 1e-7))


def _bracketed(states: list, rng) -> object:
    """The states summed in order, under a random bracketing (a random tree of neighbour merges)."""
    if len(states) == 1:
        return states[0]
    cut = int(rng.integers(1, len(states)))
    return dask_engine._merged(_bracketed(states[:cut], rng), _bracketed(states[cut:], rng))


def test_merge_order_never_changes_a_bit(tied_dump, in_process_cluster, monkeypatch):
    """Every tree of neighbour merges gives the left-to-right sum, to the bit and in dict order."""
    folder, losses = tied_dump
    monkeypatch.setattr(dask_engine, "TASK_FILES", 1)  # one task per shard
    seen = {}
    run_tasks = dask_engine._run_tasks

    def recording(client, address, tasks, wait, **options):
        seen.update(tasks=tasks, options=options)
        return run_tasks(client, address, tasks, wait, **options)

    monkeypatch.setattr(dask_engine, "_run_tasks", recording)
    spec = {"y": "label", "p": "p_*", "by": "id", "per_class": True, "top": 3, "keep": "id", "per_sample": False}
    result = compute("sparse", str(folder), **spec, engine="dask", scheduler=in_process_cluster.scheduler_address)
    assert result.to_dict(per_sample=False) == compute("sparse", str(folder), **spec).to_dict(per_sample=False)

    from cecli import files as cecli_files

    states = [cecli_files.score_files(files, **seen["options"]) for files in seen["tasks"]]
    assert len(states) == 6
    left_to_right = states[0]
    for state in states[1:]:
        left_to_right = left_to_right + state
    rng = np.random.default_rng(13)
    for _ in range(40):
        merged = _bracketed(states, rng)
        assert repr(merged) == repr(left_to_right)  # every float's repr, and every dict in its order
        assert list(merged.groups) == list(left_to_right.groups)
    # Ties keep the earlier rows: the largest loss is in every shard; the first three shards' copies win.
    largest = int(np.argmax(losses))
    assert int(np.sum(losses == losses[largest])) == 1
    top = result.to_dict(per_sample=False)["top"]
    assert [(row["row"], row["id"]) for row in top] == [(30 * s + largest + 1, f"s{s}-r{largest}") for s in range(3)]
    assert [row["loss"] for row in top] == pytest.approx([losses[largest]] * 3, rel=1e-12)
    assert len(result.to_dict(per_sample=False)["by"]) == 6 * len(losses)  # one group per id


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_client_receives_one_merged_state_whatever_order_tasks_finish(dump, monkeypatch, seed):
    """Tasks finish in a shuffled order; the workers merge their states; the client fetches one."""
    from cecli import files as cecli_files

    monkeypatch.setattr(dask_engine, "TASK_FILES", 1)
    delays = np.random.default_rng(seed).permutation(10) * 0.01
    score_files = cecli_files.score_files

    def shuffled(files, **options):
        time.sleep(delays[files[0][0]])
        return score_files(files, **options)

    monkeypatch.setattr(cecli_files, "score_files", shuffled)
    fetched = []
    result_of = distributed.Future.result

    def counting(future, *args, **kwargs):
        fetched.append(future.key)
        return result_of(future, *args, **kwargs)

    monkeypatch.setattr(distributed.Future, "result", counting)
    local = _summary(compute("sparse", str(dump), **SPEC, per_sample=False))
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=4, dashboard_address="127.0.0.1:0"
    ) as cluster:
        address = cluster.scheduler_address
        result = compute("sparse", str(dump), **SPEC, per_sample=False, engine="dask", scheduler=address)
        merges = [key for key in cluster.scheduler.task_prefixes if key.startswith("cecli-merge")]
    assert _summary(result) == local
    assert len(fetched) == 1 and fetched[0].startswith("cecli-merge-0-10-")  # one state: all ten tasks
    assert merges == ["cecli-merge"]


# ------------------------------------------------------------------- clusters named by more than an address (issue 13)


def test_scheduler_file_names_the_cluster(dump, in_process_cluster, runner, tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")  # the option wins over the environment
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text(json.dumps({"type": "Scheduler", "address": in_process_cluster.scheduler_address}))
    args = [*CLI_SPEC, str(dump), "--summary-only", "-f", "json"]
    local = runner.invoke(app, args)
    result = runner.invoke(app, [*args, "--engine", "dask", "--scheduler-file", str(scheduler_file)])
    assert (local.exit_code, result.exit_code, result.stderr) == (0, 0, "")
    assert json.loads(result.stdout) == json.loads(local.stdout)
    assert "cecli-task" in in_process_cluster.scheduler.task_prefixes


@pytest.mark.parametrize(
    ("contents", "code", "message"),
    [
        (None, 3, "{file}: cannot read the Dask scheduler file: No such file or directory (start the scheduler with "
                  "dask scheduler --scheduler-file PATH, or check the path)"),
        ("{not json", 3, '{file}: is not a Dask scheduler file: it has no "address" '
                         "(give the file that dask scheduler --scheduler-file PATH writes)"),
        ('{"address": 8786}', 3, '{file}: is not a Dask scheduler file: it has no "address" '
                                 "(give the file that dask scheduler --scheduler-file PATH writes)"),
        ('{"address": "ftp://127.0.0.1:1"}', 2, "the address in --scheduler-file {file} 'ftp://127.0.0.1:1' is not a "
         "Dask scheduler address: ftp:// is not a Dask protocol (use tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786, "
         "or tls://HOST:PORT)"),
    ],
)  # fmt: skip
def test_a_bad_scheduler_file_is_one_line(dump, runner, tmp_path, monkeypatch, contents, code, message):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    scheduler_file = tmp_path / "scheduler.json"
    if contents is not None:
        scheduler_file.write_text(contents)
    args = [
        "sparse",
        str(dump),
        "-y",
        "label",
        "-p",
        "p_*",
        "--engine",
        "dask",
        "--scheduler-file",
        str(scheduler_file),
    ]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (code, "")
    assert result.stderr == f"cecli: error: {message.format(file=scheduler_file)}\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "local"], "--scheduler-file cannot be combined with --engine local (a scheduler is for "
                                "--engine dask; --engine local is the default)"),
        ([], "--scheduler-file cannot be combined with --engine local (a scheduler is for "
             "--engine dask; --engine local is the default)"),
        (["--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler-file cannot be combined with "
         "--scheduler (each names the Dask scheduler: give one)"),
    ],
)  # fmt: skip
def test_scheduler_file_conflicts_are_usage_errors(dump, runner, tmp_path, options, message):
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--scheduler-file", str(tmp_path / "s.json"), *options]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"cecli: error: {message}\n")


def test_an_existing_client_is_used_and_left_open(dump, in_process_cluster, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")  # the client wins over the environment
    local = _summary(compute("sparse", str(dump), **SPEC, per_sample=False))
    with distributed.Client(in_process_cluster) as client:
        results = [_summary(compute("sparse", str(dump), **SPEC, per_sample=False, engine="dask", client=client))
                   for _ in range(2)]  # fmt: skip
        assert client.status == "running"  # cecli did not close the caller's client
    assert results == [local, local]
    assert "cecli-task" in in_process_cluster.scheduler.task_prefixes


def test_a_client_that_cannot_be_used_is_a_usage_error(dump, in_process_cluster, tmp_path):
    with distributed.Client(in_process_cluster) as client:
        with pytest.raises(OptionError) as both:
            compute("sparse", str(dump), y="label", p="p_*", engine="dask", client=client, scheduler="tcp://x:1")
        with pytest.raises(OptionError) as three:
            compute("sparse", str(dump), y="label", p="p_*", engine="dask", client=client, scheduler="tcp://x:1",
                    scheduler_file=str(tmp_path / "s.json"))  # fmt: skip
    with pytest.raises(OptionError) as closed:
        compute("sparse", str(dump), y="label", p="p_*", engine="dask", client=client)
    with pytest.raises(OptionError) as address:
        compute("sparse", str(dump), y="label", p="p_*", engine="dask", client=in_process_cluster.scheduler_address)
    assert str(both.value) == "give one of client and scheduler: each names the Dask cluster to use"
    assert str(three.value) == "give one of client and scheduler and scheduler_file: each names the Dask cluster to use"
    assert str(closed.value) == (
        "the Dask client passed in is not connected (status 'closed') "
        "(pass a client of a running cluster, e.g. cluster.get_client())"
    )
    assert str(address.value) == "client must be a distributed.Client; received str"


def test_a_failing_security_loader_is_one_line(dump, runner, monkeypatch):
    import dask

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
    with dask.config.set({"distributed.client.security-loader": "cecli_no_such_module.loader"}):
        result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "cecli: error: Dask's distributed.client.security-loader 'cecli_no_such_module.loader' failed: "
        "ModuleNotFoundError: No module named 'cecli_no_such_module'\n"
    )


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_cluster_through_a_scheduler_file_and_dask_configuration(dump, tmp_path, sessions):
    """A real TLS scheduler and worker; cecli finds the certificates in DASK_DISTRIBUTED__COMM__TLS__*."""
    cert, key = _self_signed(tmp_path)
    tls = ("--tls-ca-file", cert, "--tls-cert", cert, "--tls-key", key)
    security = distributed.security.Security(
        tls_ca_file=str(cert), tls_client_cert=str(cert), tls_client_key=str(key), require_encryption=True
    )
    tls_env = _env(
        DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(cert),
        DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(cert),
        DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(key),
    )
    args = [*CLI_SPEC, str(dump), "--summary-only", "-f", "json", "--engine", "dask"]
    local = _summary(compute("sparse", str(dump), **SPEC, per_sample=False))
    with _real_scheduler(tmp_path, sessions, options=("--protocol", "tls", *tls), security=security) as cluster:
        cluster.add_worker(*tls)
        cluster.wait_for_workers(1)
        file_args = [*args, "--scheduler-file", cluster.scheduler_file]
        secured = _run_cli(file_args, sessions=sessions, env=tls_env, cwd=tmp_path)
        plain = _run_cli(file_args, sessions=sessions, env=_env(), cwd=tmp_path)
        address = cluster.address
    assert address.startswith("tls://127.0.0.1:")
    code, stdout, stderr = secured
    assert (code, stderr) == (0, "")
    assert json.loads(stdout) == json.loads(json.dumps(local))
    assert plain == (
        2,
        "",
        f"cecli: error: the address in --scheduler-file {cluster.scheduler_file} {address} needs Dask's TLS "
        "settings, and none are configured (set distributed.comm.tls.ca-file, .client.cert and .client.key in "
        "Dask's configuration, e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE)\n",
    )
    for session in sessions:
        _assert_session_empty(session)


# --------------------------------------------------------------------------- credentials (issue 13)

SECRET_URL = "s3://AKIA:s3cr3t@bucket/x.parquet?region=eu-west-1&secret_key=abc"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            OSError(f"When reading {SECRET_URL}: AccessDenied for user AKIA, key abc"),
            "a worker cannot read it: When reading s3://***@bucket/x.parquet?region=eu-west-1&secret_key=***: "
            f"AccessDenied for user ***, key *** ({dask_task._SAME_PATHS_HINT})",
        ),
        (
            ValueError(f"bad footer in {SECRET_URL}"),
            "a Dask task failed: ValueError: bad footer in s3://***@bucket/x.parquet?region=eu-west-1&secret_key=***",
        ),
    ],
)
def test_task_errors_never_show_credentials(error, message):
    translated = dask_engine._translated(error, [(3, SECRET_URL), (4, "/data/local.parquet")])
    assert isinstance(translated, InputError)
    assert str(translated) == f"s3://***@bucket/x.parquet?region=eu-west-1&secret_key=***: {message}"
    assert "s3cr3t" not in str(translated) and "abc" not in str(translated)


def test_a_secret_url_in_a_failed_task_is_redacted_end_to_end(dump, in_process_cluster, monkeypatch):
    """A task's error about a URL with credentials reaches the caller redacted (the task runs on the cluster)."""
    from cecli import files as cecli_files

    def failing(files, **options):
        raise OSError(f"cannot open {SECRET_URL}: connection reset")

    monkeypatch.setattr(cecli_files, "score_files", failing)
    monkeypatch.setattr(dask_engine, "plan_tasks", lambda paths: [[(0, SECRET_URL)]])
    with pytest.raises(InputError) as raised:
        compute("sparse", str(dump), y="label", p="p_*", engine="dask", scheduler=in_process_cluster.scheduler_address)
    assert str(raised.value) == (
        "s3://***@bucket/x.parquet?region=eu-west-1&secret_key=***: a worker cannot read it: cannot open "
        "s3://***@bucket/x.parquet?region=eu-west-1&secret_key=***: connection reset "
        f"({dask_task._SAME_PATHS_HINT})"
    )


# ------------------------------------------------------------------- an --out folder the system refuses (issue 13)


def test_an_out_folder_the_system_forbids_is_exit_3(dump, runner, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    target = f"/sys/cecli-test-out-{os.getpid()}"  # sysfs: no new folders, not even for root
    with pytest.raises(OSError) as refused:
        os.mkdir(target)
    reason = os.strerror(refused.value.errno)
    args = ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--out", target]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"cecli: error: {target}: cannot write --out: {reason} (choose another folder)\n"


@pytest.mark.parametrize("step", ["makedirs", "listdir", "unlink"])
def test_a_read_only_out_folder_is_exit_3(dump, runner, monkeypatch, tmp_path, step):
    """Creating, listing or clearing (a failed run's part) the folder fails as on a read-only file system."""
    import errno

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    out = tmp_path / ("new" if step == "makedirs" else "failed-run")
    if step != "makedirs":
        out.mkdir()
        (out / "part-00000.parquet").write_bytes(b"left by a failed run")
    real = getattr(os, step)

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, step, read_only)
    result = runner.invoke(
        app, ["sparse", str(dump), "-y", "label", "-p", "p_*", "--engine", "dask", "--out", str(out)]
    )
    monkeypatch.undo()
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"cecli: error: {out}: cannot write --out: Read-only file system (choose another folder)\n"


def test_an_out_folder_that_refuses_success_marker_is_exit_3(dump, in_process_cluster, monkeypatch, tmp_path):
    import errno

    out = tmp_path / "losses"

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(dask_engine, "open", full, raising=False)  # only dask_engine's own open: _SUCCESS
    with pytest.raises(OutputError) as raised:
        compute("sparse", str(dump), y="label", p="p_*", engine="dask", out=str(out),
                scheduler=in_process_cluster.scheduler_address)  # fmt: skip
    assert str(raised.value) == f"{out}: cannot write --out: No space left on device (choose another folder)"
    assert "_SUCCESS" not in os.listdir(out)


@pytest.mark.parametrize("name", ["scheduler", "scheduler_file", "client", "wait_for_workers"])
def test_dask_arguments_with_the_local_engine_are_refused(dump, name):
    with pytest.raises(OptionError) as raised:
        compute(
            "sparse", str(dump), y="label", p="p_*", **{name: "tcp://127.0.0.1:9" if name != "wait_for_workers" else 5}
        )
    assert str(raised.value) == f"{name} is for engine='dask'; the engine is 'local' (pass engine='dask')"


def test_an_in_process_cluster_leaves_the_callers_process_settings_alone(dump, in_process_cluster):
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        compute("sparse", str(dump), y="label", p="p_*", engine="dask", scheduler=in_process_cluster.scheduler_address)
        assert sys.getswitchinterval() == 0.004
    finally:
        sys.setswitchinterval(before)


def test_hive_partition_keys_on_a_real_cluster(tmp_path, sessions):
    """``split`` comes from the folder names on the workers too: a real worker in another working
    directory gives the local engine's groups, byte for byte (relative input path, issue 13)."""
    client_dir = tmp_path / "client"
    rows = {"a": [(1, 0.9), (0, 0.2)], "b": [(1, 0.6)], "7": [(0, 0.3), (1, 0.8), (1, 0.5)]}
    for split, records in rows.items():
        folder = client_dir / "hive" / f"split={split}"
        folder.mkdir(parents=True)
        table = pa.table({"y": [y for y, _ in records], "p": [p for _, p in records]})
        pq.write_table(table, folder / "part-0.parquet")
    args = ["bce", "hive", "-y", "y", "-p", "p", "--by", "split", "--summary-only", "-f", "json"]
    local = _run_cli(args, sessions=sessions, env=_env(), cwd=client_dir)
    (tmp_path / "elsewhere").mkdir()
    with _real_scheduler(tmp_path, sessions) as cluster:
        cluster.add_worker(cwd=tmp_path / "elsewhere")
        cluster.wait_for_workers(1)
        env = _env(DASK_SCHEDULER_ADDRESS=cluster.address)
        remote = _run_cli([*args, "--engine", "dask"], sessions=sessions, env=env, cwd=client_dir)
    assert local[0] == remote[0] == 0 and local[2] == remote[2] == ""
    groups = json.loads(remote[1])["by"]
    # bce per row: -log p for y = 1, -log(1 - p) for y = 0; groups ordered numbers, then text.
    log = np.log
    expected = {7: [-log(0.7), -log(0.8), -log(0.5)], "a": [-log(0.9), -log(0.8)], "b": [-log(0.6)]}
    assert [group["key"]["split"] for group in groups] == [7, "a", "b"]
    for group in groups:
        losses = expected[group["key"]["split"]]
        assert group["count"] == len(losses)
        assert group["mean"] == pytest.approx(sum(losses) / len(losses), rel=1e-15)
    assert json.loads(remote[1])["by"] == json.loads(local[1])["by"]


GATED_PRELOAD = '''
"""Preload for `dask worker`: opening GOOD marks that its task has started and takes 1.5 s (a slow file
system), opening BAD waits for that mark; each batch then takes 0.2 s."""
import os
import time

import cecli.files

MARK, GOOD, BAD = {mark!r}, {good!r}, {bad!r}
if not getattr(cecli.files._batches, "slowed", False):  # a preload may run twice
    _batches, _open_input = cecli.files._batches, cecli.files.open_input

    def _slow(*args, **kwargs):
        for batch in _batches(*args, **kwargs):
            time.sleep(0.2)
            yield batch

    def _gated(path, *args, **kwargs):
        if path == GOOD:
            open(MARK, "a").close()
            time.sleep(1.5)
        elif path == BAD:
            deadline = time.monotonic() + 30
            while not os.path.exists(MARK) and time.monotonic() < deadline:
                time.sleep(0.01)
        return _open_input(path, *args, **kwargs)

    _slow.slowed = True
    cecli.files._batches, cecli.files.open_input = _slow, _gated
'''

# The CLI with one task per file (the dump's small files would otherwise share one task).
ONE_FILE_A_TASK = (
    "import sys, cecli.engines.dask as engine; engine.TASK_FILES = 1; from cecli.__main__ import main; "
    "sys.argv = ['cecli'] + sys.argv[1:]; main()"
)


def test_a_failed_task_on_a_real_cluster_leaves_no_part_that_appears_after_exit(dump, tmp_path, sessions):
    """A real ``dask scheduler`` and ``dask worker`` (two threads), one task per file, two files: shard 1 is
    corrupt and fails while shard 0's task is still opening its file (the preload holds that open for 1.5 s
    and lets shard 1's open go on only once it has begun), before that task has created its temporary part.
    cecli exits 3 with the one line naming shard 1, and no thread of the worker runs a task any more; once
    none does (waited for, in case one still ran), the --out folder is as it was at exit: empty (no part,
    no ``_SUCCESS``, no temporary file).

    Verified to fail when cancellation is disabled (``check=None`` in ``_task``'s ``score_files`` call and
    ``_cancel`` returning without ``client.cancel``): shard 0's task then writes ``part-00000.parquet`` after
    cecli has exited. With only ``client.cancel`` disabled no part appears (the client's going away cancels
    the task too, and it stops at its first batch), but the task still runs when cecli has exited, which the
    first look at the worker's threads catches. The failure must come before that task creates its
    temporary part: a temporary part that already exists is removed by the client on its way out, and its
    task's rename then fails, so with a failure mid-batch the mutant leaves no part either (which is why a
    first version of this test, with the failure during another task's batches, could not fail). Waiting
    for the worker to be idle, not for a fixed time, makes sure a late part is seen.
    """
    shards = _shards(dump)
    for extra in shards[2:]:  # two files, two tasks, two worker threads: both run at once
        extra.unlink()
    good, bad = shards[:2]  # the client opens the first file itself, so the corrupt one is the second
    bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
    mark = tmp_path / "task-started"
    preload = tmp_path / "gated_preload.py"
    preload.write_text(GATED_PRELOAD.format(mark=str(mark), good=str(good), bad=str(bad)))
    out = tmp_path / "losses"
    with pytest.raises(InputError) as local:  # the local engine's one line for the same shard
        compute("sparse", str(dump), y="label", p="p_*")
    assert str(local.value).startswith(f"{bad}: not a readable Parquet file: ")
    with _real_scheduler(tmp_path, sessions) as cluster:
        cluster.add_worker("--preload", preload, "--nthreads", "2")
        cluster.wait_for_workers(1)
        process = _spawn(
            [sys.executable, "-W", "error", "-c", ONE_FILE_A_TASK, "sparse", str(dump), "-y", "label", "-p", "p_*",
             "--engine", "dask", "--scheduler", cluster.address, "--batch-rows", "5", "--out", out],
            sessions, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=60)
        finally:
            _stop(process)
        at_exit = sorted(os.listdir(out))
        with distributed.Client(cluster.address, timeout="20s") as client:
            running = [client.run(lambda dask_worker: list(dask_worker.active_threads.values()))]
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while any(running[-1].values()):  # the task of a run that did not stop it goes on: wait for it
                assert time.monotonic() < deadline, _logs(tmp_path)
                time.sleep(0.05)
                running.append(client.run(lambda dask_worker: list(dask_worker.active_threads.values())))
        after = sorted(os.listdir(out))
    assert (process.returncode, stdout, stderr) == (3, "", f"cecli: error: {local.value}\n")
    assert mark.exists()  # shard 0's task had started when shard 1's failed (the gate waited for it)
    assert at_exit == after == [], (at_exit, after)
    assert running[0] == {address: [] for address in running[0]}  # cecli waited until no task of its ran


def test_running_keys_counts_a_task_handed_to_a_thread_that_has_not_begun_it():
    """A task the worker has set executing, but whose thread has not yet registered it, still runs; so does a
    cancelled task whose function has not returned, and one that has seceded (long-running)."""
    from types import SimpleNamespace

    def task(key):
        return SimpleNamespace(key=key)

    worker = SimpleNamespace(
        state=SimpleNamespace(executing=[task("starting"), task("other-run")], long_running=[task("seceded")]),
        active_threads={1: "in-thread", 2: "other-run-2"},
    )
    keys = {"starting", "seceded", "in-thread", "finished"}
    assert dask_engine._running_keys(keys, dask_worker=worker) == ["in-thread", "seceded", "starting"]
