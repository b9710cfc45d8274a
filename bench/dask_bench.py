#!/usr/bin/env python3
"""The `dask` target: cecli's Dask engine against its local engine on a sharded Parquet dump.

Generates (once, seeded) a dump of SHARDS Parquet files of ROWS rows × CLASSES float32
probabilities under bench/data/, starts an "existing cluster" with Dask's own command-line
tools (``dask scheduler`` + one ``dask worker --nthreads 2``, on 127.0.0.1), and times, each
as a whole process, on the first 1, 10 and all shards:

- ``local``: ``cecli sparse FILES... --summary-only --value-only`` (the local engine);
- ``private cluster``: the same with ``--engine dask`` (cecli starts and closes a local cluster);
- ``existing cluster``: the same with ``--scheduler ADDRESS`` (the running scheduler and worker).

The three take turns run by run (after one warm-up round), so that drift in the machine's speed
touches them alike; the median of --repeat runs is reported, with every run's time. Every value
must agree with the local engine's exactly (the engines' results are bit-identical). Target:
existing cluster ÷ local on all shards ≤ 1.3 (cluster start-up is thus excluded).

Usage: python bench/dask_bench.py [--shards 40] [--rows 250000] [--classes 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DATA, RESULTS, SEED, _cecli, _sparse_chunk, run_once  # noqa: E402

TARGET = 1.3  # existing cluster (1 worker, 2 threads) ÷ local engine, all shards


def dump(shards: int, rows: int, classes: int) -> list[Path]:
    """The shard files (generated once per parameters, atomically)."""
    folder = DATA / f"dask-shards-{shards}x{rows}x{classes}"
    done = folder / "_COMPLETE"
    files = [folder / f"part-{i:03d}.parquet" for i in range(shards)]
    if done.exists():
        return files
    import numpy as np
    import pyarrow.parquet as pq

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    for path in files:
        pq.write_table(_sparse_chunk(rng, rows, classes), path)
    done.write_text(json.dumps({"shards": shards, "rows": rows, "classes": classes, "seed": SEED}))
    return files


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_cluster(workdir: Path, threads: int) -> tuple[str, list[subprocess.Popen]]:
    """``dask scheduler`` and one ``dask worker --nthreads THREADS``, on loopback."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    address = f"tcp://127.0.0.1:{_free_port()}"
    logs = [open(workdir / name, "wb") for name in ("scheduler.log", "worker.log")]  # noqa: SIM115
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--dashboard-address", ":0"],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [dask, "worker", address, "--nthreads", str(threads), "--nworkers", "1", "--host", "127.0.0.1",
         "--no-dashboard", "--local-directory", str(workdir)],
        stdout=logs[1], stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"Registered to" in (workdir / "worker.log").read_bytes():
            return address, [worker, scheduler]
        time.sleep(0.2)
    stop(worker, scheduler)
    raise SystemExit(f"the Dask worker did not register within 60 s; see {workdir}/worker.log")


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=40)
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="threads of the existing cluster's one worker")
    args = parser.parse_args(argv)
    files = [str(path) for path in dump(args.shards, args.rows, args.classes)]
    counts = sorted({1, min(10, args.shards), args.shards})
    workdir = Path(tempfile.mkdtemp(prefix="cecli-dask-bench-"))
    address, processes = start_cluster(workdir, args.threads)
    base = [*_cecli(), "sparse", "-y", "label", "-p", "p_*", "--summary-only", "--value-only"]
    ways = {
        "local": [],
        "private cluster": ["--engine", "dask"],
        "existing cluster": ["--engine", "dask", "--scheduler", address],
    }
    times: dict[tuple[int, str], list[float]] = {}
    values: dict[tuple[int, str], str] = {}
    try:
        for count in counts:
            for round_ in range(1 + args.repeat):
                for way, extra in ways.items():
                    run = run_once([*base, *files[:count], *extra])
                    values.setdefault((count, way), run.stdout.strip())
                    if run.stdout.strip() != values[(count, way)] or run.stdout.strip() != values.get((count, "local")):
                        raise SystemExit(f"{way} on {count} shards printed {run.stdout.strip()}, local printed "
                                         f"{values.get((count, 'local'))}")  # fmt: skip
                    if round_:  # the first round is a warm-up
                        times.setdefault((count, way), []).append(run.wall_s)
                last = {way: times.get((count, way), [float("nan")])[-1] for way in ways}
                print(f"{count:>3} shards, round {round_}: " + ", ".join(f"{way} {t:.2f} s" for way, t in last.items()),
                      file=sys.stderr)  # fmt: skip
    finally:
        stop(*processes)
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {key: statistics.median(value) for key, value in times.items()}
    ratio = medians[(args.shards, "existing cluster")] / medians[(args.shards, "local")]
    header = "| shards | " + " | ".join(ways) + " | existing ÷ local |"
    lines = [header, "|" + "---:|" * (len(ways) + 2)]
    for count in counts:
        cells = " | ".join(f"{medians[(count, way)]:.2f} s" for way in ways)
        lines.append(f"| {count} | {cells} | {medians[(count, 'existing cluster')] / medians[(count, 'local')]:.2f} |")
    met = ratio <= TARGET
    lines.append("")
    lines.append(f"Target: existing cluster ÷ local on {args.shards} shards ≤ {TARGET}: {ratio:.2f} "
                 f"({'met' if met else 'NOT met'}); medians of {args.repeat} alternating runs, "
                 f"{args.rows} rows × {args.classes} classes per shard, load {os.getloadavg()[0]:.2f}.")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dask.md").write_text(table + "\n")
    raw = {f"{count} {way}": runs for (count, way), runs in times.items()}
    (RESULTS / "dask.json").write_text(json.dumps({"times_s": raw, "ratio": ratio, "met": met}, indent=1) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
