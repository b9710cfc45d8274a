#!/usr/bin/env python3
"""Wide rows, per-sample output and many columns (issue 19, part 1), as whole processes taking turns.

Generates seeded inputs under bench/data/wide/ (reused when present), then runs each pair A, B
alternately (A B A B ...) after one warm-up each and prints the medians of wall time and peak RSS
(``ru_maxrss`` from ``os.wait4``) and the median of the per-pair ratios A/B:

* ``softmax`` on 50,000 rows x 1,000 float32 logits in a Parquet fixed-size list, against a
  PyTorch CPU script (``pq.read_table``, ``F.cross_entropy`` in float64), when torch imports;
* per-sample output on 1M rows x 10 classes: ``-f ndjson``, ``--out .ndjson`` and ``--out .parquet``
  against ``-f json``;
* automatic columns against ``-y/-p`` on 200 rows of ``y_true, p_0..p_9999``.

Usage: python bench/wide.py [--repeat R] [--python-torch PATH]  (the torch script may run in another venv)
Run it outside the source tree to time another checkout through PYTHONPATH: ``python -m cecli`` imports
the package of the current folder first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "wide"

TORCH_SCRIPT = """
import sys, pyarrow.parquet as pq, torch, torch.nn.functional as F
torch.set_num_threads(2)
t = pq.read_table(sys.argv[1])
C = t.schema.field("logits").type.list_size
x = t.column("logits").combine_chunks().flatten().to_numpy().reshape(-1, C).copy()
y = torch.from_numpy(t.column("label").to_numpy())
print(F.cross_entropy(torch.from_numpy(x).double(), y).item())
"""


def generate() -> dict[str, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    paths = {name: DATA / name for name in ("logits.parquet", "m1.parquet", "wide10k.csv")}
    rng = np.random.default_rng(19)
    if not paths["logits.parquet"].exists():
        n, classes = 50_000, 1000
        logits = rng.standard_normal((n, classes), dtype=np.float32) * 3
        column = pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), classes)
        table = pa.table({"label": rng.integers(0, classes, n), "logits": column})
        pq.write_table(table, paths["logits.parquet"], row_group_size=10_000)
    if not paths["m1.parquet"].exists():
        n = 1_000_000
        p = rng.random((n, 10), dtype=np.float32) + 0.01
        p /= p.sum(axis=1, keepdims=True)
        table = pa.table({"label": rng.integers(0, 10, n), **{f"p_{c}": p[:, c] for c in range(10)}})
        pq.write_table(table, paths["m1.parquet"], row_group_size=n)
    if not paths["wide10k.csv"].exists():
        n, classes = 200, 10_000
        q = rng.random((n, classes))
        q /= q.sum(axis=1, keepdims=True)
        labels = rng.integers(0, classes, n)
        with open(paths["wide10k.csv"], "w") as out:
            out.write("y_true," + ",".join(f"p_{c}" for c in range(classes)) + "\n")
            for label, row in zip(labels, q, strict=True):
                out.write(f"{label}," + ",".join(map(repr, row.tolist())) + "\n")
    return paths


def run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole process; its output is thrown away."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(argv)} failed")
    return wall, usage.ru_maxrss / 1024


def pair(title: str, a: list[str], b: list[str], repeat: int) -> None:
    run(a), run(b)  # warm-up: the page cache, bytecode
    runs_a, runs_b = [], []
    for _ in range(repeat):
        runs_a.append(run(a))
        runs_b.append(run(b))
    ratio = statistics.median(x[0] / y[0] for x, y in zip(runs_a, runs_b, strict=True))
    wall_a, wall_b = (statistics.median(w for w, _ in runs) for runs in (runs_a, runs_b))
    rss_a, rss_b = (statistics.median(r for _, r in runs) for runs in (runs_a, runs_b))
    print(f"{title}: {wall_a:.2f} s, {rss_a:.0f} MiB vs {wall_b:.2f} s, {rss_b:.0f} MiB; A/B wall {ratio:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--python-torch", default=sys.executable, help="a Python with torch and pyarrow")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate()
        return 0
    # In a child: a child's ru_maxrss never reads below the peak of the process that forked it.
    subprocess.run([sys.executable, __file__, "--generate-only"], check=True)
    paths = {name: DATA / name for name in ("logits.parquet", "m1.parquet", "wide10k.csv")}
    cecli = [sys.executable, "-m", "cecli"]
    out = tempfile.mkdtemp()
    logits = str(paths["logits.parquet"])
    torch_ok = subprocess.run([args.python_torch, "-c", "import torch"], capture_output=True).returncode == 0
    if torch_ok:
        softmax = [*cecli, "softmax", logits, "-y", "label", "-p", "logits"]
        pair("softmax 50k x 1000 vs PyTorch", softmax, [args.python_torch, "-c", TORCH_SCRIPT, logits], args.repeat)
    else:
        print("softmax 50k x 1000: no torch for --python-torch, skipped")
    sparse = [*cecli, "sparse", str(paths["m1.parquet"]), "-y", "label", "-p", "p_*"]
    json_out = [*sparse, "-f", "json"]
    pair("-f ndjson vs -f json, 1M rows", [*sparse, "-f", "ndjson"], json_out, args.repeat)
    for suffix in ("ndjson", "parquet"):
        written = [*sparse, "--out", f"{out}/o.{suffix}", "--summary-only", "-f", "json"]
        pair(f"--out .{suffix} vs -f json, 1M rows", written, json_out, args.repeat)
    wide = [*cecli, "sparse", str(paths["wide10k.csv"]), "--value-only"]
    pair("10k classes: automatic vs -y/-p", wide, [*wide, "-y", "y_true", "-p", "p_*"], args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
