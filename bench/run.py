#!/usr/bin/env python3
"""Benchmark cecli against the tools a user could pick instead.

Generates seeded dumps under bench/data/ (reused when their parameters match), then times
every contender as a whole process, in the same run: wall time (median of --repeat runs after
one warm-up that also fills the page cache) and peak RSS (``ru_maxrss`` of the process tree,
from ``os.wait4``). Every contender prints the mean loss; the script checks they agree with
cecli to 1e-9 (relative) and writes bench/results/latest.json and latest.md.

Usage: python bench/run.py [--rows N] [--csv-rows N] [--classes C] [--repeat R] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
RESULTS = BENCH / "results"

SEED = 0
ROW_GROUP = 1_000_000  # rows per Parquet row group, and per generated chunk
EPS = 1e-7  # cecli's default clipping (Keras)
TOLERANCE = 1e-9  # relative agreement required between contenders
DATA_FORMAT_VERSION = 1  # bump when the generators change, to regenerate old dumps

# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str  # "sparse" (label + p_0..p_{C-1}), "binary" (y_true + y_pred) or "logits" (label + a list column)
    fmt: str  # "parquet", "csv", "ndjson", "json" (an array of records) or "columns.json" (an object of columns)
    rows: int
    classes: int
    contenders: tuple[str, ...]
    reference: str = "cecli"  # the contender the ratios are taken against

    @property
    def path(self) -> Path:
        shape = f"{self.rows}x{self.classes}" if self.kind != "binary" else str(self.rows)
        return DATA / f"{self.kind}-{shape}.{self.fmt}"

    @property
    def params(self) -> dict:
        return {
            "kind": self.kind,
            "fmt": self.fmt,
            "rows": self.rows,
            "classes": self.classes,
            "seed": SEED,
            "row_group": ROW_GROUP,
            "version": DATA_FORMAT_VERSION,
        }


FULL = ("cecli", "cecli JSON", "cecli --out", "duckdb", "polars", "pyarrow floor", "pandas+sklearn")
BOOTSTRAP_ROWS = 1_000_000  # issue 15: --bootstrap 1000 on 1M rows, under 20 s on 2 cores
SCALING = ("cecli 1 core", "cecli 2 cores")  # the same command under taskset -c 0 and -c 0,1
STARTUP = ("python -c 'import numpy'", "python -c 'import numpy, typer'", "cecli --version", "cecli bce")
PER_SAMPLE = ("cecli -f json", "cecli -f ndjson", "cecli --out .parquet", "cecli --out .ndjson")


def datasets(rows: int, csv_rows: int, classes: int) -> list[Dataset]:
    json_rows = csv_rows // 2  # 1M rows x 10 classes: about 290 MB of JSON text
    # Start-up first and the per-sample outputs (megabytes of stdout, kept by this process) last: a child
    # started by vfork counts this process's pages in its ru_maxrss, so it must stay small before each.
    return [
        Dataset("startup (3-row csv)", "binary", "csv", 3, 2, STARTUP, reference="cecli bce"),
        Dataset("parquet", "sparse", "parquet", rows, classes, (*FULL, *SCALING, "cecli JSON --ci 95")),
        Dataset("csv", "sparse", "csv", csv_rows, classes, FULL + SCALING),
        Dataset("binary", "binary", "parquet", rows, 2, FULL),
        Dataset("parquet 2x rows", "sparse", "parquet", 2 * rows, classes, ("cecli", "cecli --out")),
        Dataset(
            "parquet 1M (bootstrap)",
            "sparse",
            "parquet",
            min(rows, BOOTSTRAP_ROWS),
            classes,
            ("cecli JSON", "cecli JSON --bootstrap 1000"),
            reference="cecli JSON",
        ),
        Dataset("ndjson", "sparse", "ndjson", json_rows, classes, ("cecli", "cecli JSON", "duckdb", "polars")),
        Dataset("json array", "sparse", "json", json_rows, classes, ("cecli", "duckdb")),
        Dataset("json columns", "sparse", "columns.json", json_rows, classes, ("cecli",)),
        Dataset("softmax 1000 classes", "logits", "parquet", max(4, rows // 200), 1000, ("cecli", "pytorch")),
        Dataset("10k classes", "sparse", "parquet", max(4, rows // 5000), 10_000, ("cecli", "cecli auto columns")),
        Dataset("per-sample", "sparse", "parquet", max(4, rows // 10), classes, PER_SAMPLE, reference="cecli -f json"),
    ]


def _sparse_chunk(rng, n: int, classes: int):
    """Softmax of standard normals (float32) and a label drawn from each row's distribution."""
    import numpy as np
    import pyarrow as pa

    scores = rng.standard_normal((n, classes))
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs = exp / exp.sum(axis=1, keepdims=True)
    labels = (rng.random((n, 1)) < probs.cumsum(axis=1)).argmax(axis=1).astype(np.int64)
    columns = {"label": labels} | {f"p_{c}": probs[:, c].astype(np.float32) for c in range(classes)}
    return pa.table(columns)


def _logits_chunk(rng, n: int, classes: int):
    """Raw scores (normal, sd 3, float32) as one fixed-size list column, and a uniform label."""
    import numpy as np
    import pyarrow as pa

    scores = (3 * rng.standard_normal((n, classes))).astype(np.float32)
    logits = pa.FixedSizeListArray.from_arrays(pa.array(scores.ravel()), classes)
    return pa.table({"label": rng.integers(0, classes, n), "logits": logits})


def _binary_chunk(rng, n: int, classes: int):
    """Calibrated sigmoid predictions in (0, 1), float32, and 0/1 labels drawn from them."""
    import numpy as np
    import pyarrow as pa

    probs = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 1.5, n)))
    labels = (rng.random(n) < probs).astype(np.int64)
    return pa.table({"y_true": labels, "y_pred": probs.astype(np.float32)})


def _params_path(ds: Dataset) -> Path:
    return ds.path.with_name(ds.path.name + ".json")


def is_current(ds: Dataset) -> bool:
    params = _params_path(ds)
    return ds.path.exists() and params.exists() and json.loads(params.read_text()) == ds.params


def generate_all(plan: list[Dataset]) -> None:
    """Write the missing dumps, each in a fresh process.

    Generating grows a process to hundreds of MiB, and a child started with vfork/posix_spawn
    inherits its parent's peak RSS in ``ru_maxrss``, so the measuring process must stay small.
    """
    import multiprocessing

    for ds in plan:
        if is_current(ds):
            continue
        worker = multiprocessing.get_context("spawn").Process(target=generate, args=(ds,))
        worker.start()
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"generating {ds.path} failed (exit {worker.exitcode})")


def generate(ds: Dataset) -> None:
    """Write `ds` atomically, then its parameters (which mark it as complete)."""
    import numpy as np
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _log(f"generating {ds.path.relative_to(BENCH.parent)} ({ds.rows:,} rows) ...")
    if ds.rows <= 3:  # the startup dump: a fixed three-row file
        ds.path.write_text("y_true,y_pred\n1,0.9\n0,0.2\n1,0.6\n")
    else:
        rng = np.random.default_rng(SEED)
        make_chunk = {"sparse": _sparse_chunk, "binary": _binary_chunk, "logits": _logits_chunk}[ds.kind]
        tmp = ds.path.with_name(ds.path.name + ".tmp")
        if ds.fmt == "columns.json":
            _write_json_columns(make_chunk(rng, ds.rows, ds.classes), tmp)
        elif ds.fmt in ("ndjson", "json"):
            _write_json(make_chunk(rng, ds.rows, ds.classes), tmp, array=ds.fmt == "json")
        else:
            writer = None
            for start in range(0, ds.rows, ROW_GROUP):
                table = make_chunk(rng, min(ROW_GROUP, ds.rows - start), ds.classes)
                if writer is None:
                    writer = (
                        pq.ParquetWriter(tmp, table.schema)
                        if ds.fmt == "parquet"
                        else pcsv.CSVWriter(tmp, table.schema)
                    )
                writer.write_table(table, **({"row_group_size": ROW_GROUP} if ds.fmt == "parquet" else {}))
            writer.close()
        tmp.replace(ds.path)
    _params_path(ds).write_text(json.dumps(ds.params, indent=2) + "\n")
    _log(f"  {ds.path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - started:.1f} s")


def _write_json(table, path: Path, *, array: bool) -> None:
    """`table` as NDJSON, or as one JSON array with a record a line (as ``json.dump`` users write them)."""
    import numpy as np

    names = table.column_names
    columns = [table.column(n).to_numpy() for n in names]
    with path.open("w") as out:
        out.write("[\n" if array else "")
        for start in range(0, table.num_rows, 100_000):
            part = [c[start : start + 100_000] for c in columns]
            texts = [[str(v) for v in p.astype(np.float64 if p.dtype.kind == "f" else p.dtype).tolist()] for p in part]
            lines = [
                "{" + ", ".join(f'"{n}": {v}' for n, v in zip(names, row, strict=True)) + "}"
                for row in zip(*texts, strict=True)
            ]
            out.write((",\n" if array and start else "") + (",\n" if array else "\n").join(lines))
            out.write("" if array else "\n")
        out.write("\n]\n" if array else "")


def _write_json_columns(table, path: Path) -> None:
    """`table` as one JSON object of columns, ``{"label": [...], "p_0": [...], ...}``."""
    import numpy as np

    with path.open("w") as out:
        for i, name in enumerate(table.column_names):
            column = table.column(name).to_numpy()
            values = column.astype(np.float64 if column.dtype.kind == "f" else column.dtype).tolist()
            out.write(("{" if i == 0 else ",\n") + json.dumps(name) + ": [" + ", ".join(map(str, values)) + "]")
        out.write("}\n")


# --------------------------------------------------------------------------- contenders

# Each Python contender is a whole `python -c CODE PATH CLASSES EPS` process, written the way a
# user would write it, computing the mean of -log(clip(p[label] / sum(p), eps, 1 - eps)).

DUCKDB = """
import sys
import duckdb
print(repr(duckdb.sql(sys.argv[1]).fetchall()[0][0]))
"""

POLARS_SPARSE = """
import sys
import polars as pl
path, classes, eps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
scan = pl.scan_parquet if path.endswith(".parquet") else pl.scan_csv
p = [pl.col(f"p_{c}").cast(pl.Float64) for c in range(classes)]
picked = pl.when(pl.col("label") == 0).then(p[0])
for c in range(1, classes):
    picked = picked.when(pl.col("label") == c).then(p[c])
loss = -(picked / pl.sum_horizontal(p)).clip(eps, 1 - eps).log()
print(repr(scan(path).select(loss.mean()).collect().item()))
"""

POLARS_BINARY = """
import sys
import polars as pl
path, eps = sys.argv[1], float(sys.argv[3])
scan = pl.scan_parquet if path.endswith(".parquet") else pl.scan_csv
y, p = pl.col("y_true").cast(pl.Float64), pl.col("y_pred").cast(pl.Float64).clip(eps, 1 - eps)
loss = -(y * p.log() + (1 - y) * (1 - p).log())
print(repr(scan(path).select(loss.mean()).collect().item()))
"""

POLARS_JSON = """
import sys
import polars as pl
path, classes, eps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
p = [pl.col(f"p_{c}").cast(pl.Float64) for c in range(classes)]
picked = pl.when(pl.col("label") == 0).then(p[0])
for c in range(1, classes):
    picked = picked.when(pl.col("label") == c).then(p[c])
loss = -(picked / pl.sum_horizontal(p)).clip(eps, 1 - eps).log()
print(repr(pl.scan_ndjson(path).select(loss.mean()).collect().item()))
"""

# PyTorch's own way for logits: read the list column, float64 scores, F.cross_entropy (log-softmax + NLL).
PYTORCH_SOFTMAX = """
import sys
import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
table = pq.read_table(sys.argv[1])
classes = table.schema.field("logits").type.list_size
scores = table.column("logits").combine_chunks().values.to_numpy().astype(np.float64).reshape(-1, classes)
labels = torch.from_numpy(table.column("label").to_numpy())
print(repr(F.cross_entropy(torch.from_numpy(scores), labels).item()))
"""

PYARROW_FLOOR = """
import sys
import pyarrow.csv
import pyarrow.parquet
path = sys.argv[1]
if path.endswith(".parquet"):
    batches = pyarrow.parquet.ParquetFile(path).iter_batches()
else:
    batches = pyarrow.csv.open_csv(path)
for batch in batches:
    pass
"""

SKLEARN_SPARSE = """
import sys
import pandas as pd
from sklearn.metrics import log_loss
path, classes = sys.argv[1], int(sys.argv[2])
df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
probs = df[[f"p_{c}" for c in range(classes)]].to_numpy(dtype="float64")
print(repr(log_loss(df["label"], probs, labels=list(range(classes)))))
"""

SKLEARN_BINARY = """
import sys
import pandas as pd
from sklearn.metrics import log_loss
path = sys.argv[1]
df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
print(repr(log_loss(df["y_true"], df["y_pred"].to_numpy(dtype="float64"))))
"""


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code.strip() + "\n", *args]


def _script_args(ds: Dataset) -> tuple[str, str, str]:
    return str(ds.path), str(ds.classes), repr(EPS)


def _cecli() -> list[str]:
    """The installed console script (what users run), else ``python -m cecli``."""
    exe = shutil.which("cecli", path=str(Path(sys.executable).parent)) or shutil.which("cecli")
    return [exe] if exe else [sys.executable, "-m", "cecli"]


def cecli_argv(ds: Dataset, *, columns: bool = True) -> list[str]:
    command, chosen = {
        "sparse": ("sparse", ["-y", "label", "-p", "p_*"]),
        "binary": ("bce", ["-y", "y_true", "-p", "y_pred"]),
        "logits": ("softmax", ["-y", "label", "-p", "logits"]),
    }[ds.kind]
    return [*_cecli(), command, str(ds.path), *(chosen if columns else [])]


def _taskset(cpus: str, argv: list[str]) -> list[str]:
    """`argv` on the given processors (the scaling rows); unchanged where taskset is missing."""
    return ["taskset", "-c", cpus, *argv] if shutil.which("taskset") else argv


OUT_DIR = Path(tempfile.gettempdir()) / f"cecli-bench-{os.getpid()}"
OUT_PATH = OUT_DIR / "per-sample.parquet"


def duckdb_sql(ds: Dataset) -> str:
    reader = {"ndjson": "read_ndjson", "json": "read_json"}.get(ds.fmt, f"read_{ds.fmt}")
    source = f"{reader}('{ds.path}')"
    clip = f"greatest(least({{}}, 1 - {EPS!r}), {EPS!r})"
    if ds.kind == "sparse":
        p = [f"p_{c}::DOUBLE" for c in range(ds.classes)]
        picked = "CASE label " + " ".join(f"WHEN {c} THEN {p[c]}" for c in range(ds.classes)) + " END"
        loss = "-ln(" + clip.format(f"{picked} / ({' + '.join(p)})") + ")"
    else:
        p = clip.format("y_pred::DOUBLE")
        loss = f"-(y_true * ln({p}) + (1 - y_true) * ln(1 - {p}))"
    return f"SELECT avg({loss}) FROM {source}"


@dataclass(frozen=True)
class Contender:
    argv: Callable[[Dataset], list[str]]
    prints_value: bool = True
    json_value: bool = False  # the value is the "value" key of a JSON document
    caveat: str | None = None  # why its value may legitimately differ (then a difference is a note, not a failure)
    needs: str | None = None  # the module it imports: without it the row is skipped (and says so), not failed


SKLEARN_CAVEAT = "sklearn does not renormalise rows and clips at machine eps, not 1e-7"

CONTENDERS: dict[str, Contender] = {
    "cecli": Contender(lambda ds: [*cecli_argv(ds), "--summary-only", "--value-only"]),
    # The full JSON summary: also accuracy and the histogram, which --value-only skips.
    "cecli JSON": Contender(lambda ds: [*cecli_argv(ds), "--summary-only", "-f", "json"], json_value=True),
    "cecli --out": Contender(lambda ds: [*cecli_argv(ds), "--summary-only", "--value-only", "--out", str(OUT_PATH)]),
    # Confidence intervals (issue 15): the same JSON summary with stderr and ci, normal or 1000 bootstrap resamples.
    "cecli JSON --ci 95": Contender(
        lambda ds: [*cecli_argv(ds), "--summary-only", "-f", "json", "--ci", "95"], json_value=True
    ),
    "cecli JSON --bootstrap 1000": Contender(
        lambda ds: [*cecli_argv(ds), "--summary-only", "-f", "json", "--bootstrap", "1000"], json_value=True
    ),
    "duckdb": Contender(lambda ds: _python(DUCKDB, duckdb_sql(ds)), needs="duckdb"),
    "polars": Contender(
        lambda ds: _python(
            POLARS_JSON if ds.fmt == "ndjson" else POLARS_SPARSE if ds.kind == "sparse" else POLARS_BINARY,
            *_script_args(ds),
        ),
        needs="polars",
    ),
    "pyarrow floor": Contender(lambda ds: _python(PYARROW_FLOOR, *_script_args(ds)), prints_value=False),
    "pandas+sklearn": Contender(
        lambda ds: _python(SKLEARN_SPARSE if ds.kind == "sparse" else SKLEARN_BINARY, *_script_args(ds)),
        caveat=SKLEARN_CAVEAT,
        needs="sklearn",
    ),
    "cecli 1 core": Contender(lambda ds: _taskset("0", [*cecli_argv(ds), "--summary-only", "--value-only"])),
    "cecli 2 cores": Contender(lambda ds: _taskset("0,1", [*cecli_argv(ds), "--summary-only", "--value-only"])),
    "pytorch": Contender(lambda ds: _python(PYTORCH_SOFTMAX, *_script_args(ds)), needs="torch"),
    # Per-sample output of every row, in each form (the value: the JSON document's, or none printed).
    "cecli -f json": Contender(lambda ds: [*cecli_argv(ds), "-f", "json"], json_value=True),
    "cecli -f ndjson": Contender(lambda ds: [*cecli_argv(ds), "-f", "ndjson"], prints_value=False),
    "cecli --out .parquet": Contender(
        lambda ds: [*cecli_argv(ds), "--summary-only", "-f", "json", "--out", str(OUT_PATH)], json_value=True
    ),
    "cecli --out .ndjson": Contender(
        lambda ds: [*cecli_argv(ds), "--summary-only", "-f", "json", "--out", str(OUT_PATH.with_suffix(".ndjson"))],
        json_value=True,
    ),
    # Columns found by the automatic rules (label first, the rest the classes) instead of -y/-p.
    "cecli auto columns": Contender(lambda ds: [*cecli_argv(ds, columns=False), "--summary-only", "--value-only"]),
    "python -c 'import numpy'": Contender(lambda ds: _python("import numpy"), prints_value=False),
    # The floor of any Typer + NumPy command line, for reading the start-up ratios.
    "python -c 'import numpy, typer'": Contender(lambda ds: _python("import numpy, typer"), prints_value=False),
    "cecli --version": Contender(lambda ds: [*_cecli(), "--version"], prints_value=False),
    "cecli bce": Contender(lambda ds: [*cecli_argv(ds), "--value-only"]),
}

# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    wall_s: float
    rss_mib: float
    stdout: str


def run_once(argv: list[str]) -> Run:
    """Run `argv` as a whole process; wall time and the peak RSS of its process tree (os.wait4)."""
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]}... exited {proc.returncode}:\n{stderr[-2000:]}")
    # Keep the head and the tail only: a per-sample output is megabytes, and this process must stay small.
    return Run(wall, usage.ru_maxrss / _RSS_UNIT, stdout if len(stdout) < 1 << 16 else stdout[:4096] + stdout[-4096:])


_RSS_UNIT = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss: bytes on macOS, KiB on Linux


def _own_peak_rss_mib() -> float:
    """This process's peak RSS: a child's ru_maxrss can never read below it (see generate_all)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _RSS_UNIT


@dataclass
class Result:
    dataset: str
    contender: str
    rows: int
    argv: list[str]
    times_s: list[float]
    wall_s: float  # median
    rss_mib: float  # max over the timed runs
    value: float | None
    check: str = ""
    ok: bool = True
    ratio_time: float | None = None  # reference / this
    ratio_rss: float | None = None


def measure(ds: Dataset, repeat: int) -> list[Result]:
    """Time every contender of `ds`, taking turns run by run; the first round is a warm-up.

    Taking turns lets drift in the machine's speed touch every contender alike. The warm-up
    fills the page cache and the import caches.
    """
    results, runs = {}, {}
    from importlib.util import find_spec

    for name in ds.contenders:
        argv = CONTENDERS[name].argv(ds)
        results[name] = Result(ds.name, name, ds.rows, argv, [], wall_s=float("nan"), rss_mib=float("nan"), value=None)
        runs[name] = []
        needs = CONTENDERS[name].needs
        if needs and find_spec(needs) is None:
            results[name].check = f"skipped: {needs} is not installed"
            runs.pop(name)
    for _ in range(1 + repeat):
        for name, result in results.items():
            if result.ok and name in runs:
                try:
                    runs[name].append(run_once(result.argv))
                except RuntimeError as error:
                    result.check, result.ok = "FAILED (see stderr)", False
                    _log(f"  {name:<26} {error}")
    for name, result in results.items():
        if result.ok and name in runs:
            _summarize(result, runs[name][1:], CONTENDERS[name])
    return list(results.values())


def _summarize(result: Result, runs: list[Run], contender: Contender) -> None:
    text = runs[-1].stdout.strip().splitlines()
    if contender.json_value:
        found = re.search(r'"value": ([-+0-9.eE]+|null)', runs[-1].stdout)  # near the start of the document
        result.value = float(found.group(1)) if found and found.group(1) != "null" else None
    else:
        result.value = float(text[-1]) if contender.prints_value and text else None
    result.times_s = [r.wall_s for r in runs]
    result.wall_s = statistics.median(result.times_s)
    result.rss_mib = max(r.rss_mib for r in runs)
    _log(f"  {result.contender:<26} {result.wall_s:8.3f} s {result.rss_mib:9.1f} MiB  {_fmt_value(result.value)}")


def _time_ratio(num: Result, den: Result) -> float:
    """`num`'s time ÷ `den`'s: the median of the round-by-round ratios when the two took turns in the
    same rounds (a dataset's contenders), so that drift in the machine's speed between rounds cancels
    (as farm-bench pairs commands); else (two datasets) the ratio of the medians."""
    if num.dataset == den.dataset and len(num.times_s) == len(den.times_s):
        return statistics.median([a / b for a, b in zip(num.times_s, den.times_s, strict=True)])
    return num.wall_s / den.wall_s


def check_and_ratio(results: list[Result], ds: Dataset) -> None:
    """Compare each contender's value with the reference's; fill in the cecli ÷ contender ratios."""
    mine = [r for r in results if r.dataset == ds.name]
    ref = next(r for r in mine if r.contender == ds.reference)
    for r in mine:
        if not r.times_s:  # failed to run: already marked
            continue
        r.ratio_time, r.ratio_rss = _time_ratio(ref, r), ref.rss_mib / r.rss_mib
        if not CONTENDERS[r.contender].prints_value:
            r.check = "-"
        elif r.value is None or ref.value is None:
            r.check, r.ok = "no value to compare", False
        else:
            diff = abs(r.value - ref.value) / abs(ref.value)
            caveat = CONTENDERS[r.contender].caveat
            if diff <= TOLERANCE:
                r.check = "ok" if r is ref else f"ok ({diff:.0e})"
            elif caveat:
                r.check = f"differs by {diff:.1e} ({caveat})"
            else:
                r.check, r.ok = f"MISMATCH: differs by {diff:.1e}", False


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    label: str
    numerator: tuple[str, str]  # (dataset, contender)
    denominator: tuple[str, str] | None  # None: the numerator's own figure (seconds or MiB)
    metric: str  # "wall_s" or "rss_mib"
    bound: str | None = None  # "<= 1.0", ">= 10", or None (reported only)
    value: float | None = field(default=None)
    met: bool | None = field(default=None)


def targets() -> list[Target]:
    """Issue 19's table (and the earlier goals), from this one run (time ratios as `_time_ratio` takes them)."""
    pq, csv, big, nd, arr = "parquet", "csv", "parquet 2x rows", "ndjson", "json array"
    up, numpy = "startup (3-row csv)", ("startup (3-row csv)", STARTUP[0])
    soft, each, wide = "softmax 1000 classes", "per-sample", "10k classes"
    return [
        Target("Parquet: cecli JSON summary time / DuckDB", (pq, "cecli JSON"), (pq, "duckdb"), "wall_s", "<= 1.0"),
        Target("Parquet: cecli JSON summary time / Polars", (pq, "cecli JSON"), (pq, "polars"), "wall_s", "<= 1.0"),
        Target("Parquet: cecli --value-only time / DuckDB", (pq, "cecli"), (pq, "duckdb"), "wall_s", "<= 0.9"),
        Target("Parquet: pandas+sklearn time / cecli", (pq, "pandas+sklearn"), (pq, "cecli"), "wall_s", ">= 10"),
        Target("CSV: cecli --value-only time / DuckDB", (csv, "cecli"), (csv, "duckdb"), "wall_s", "<= 1.0"),
        Target("NDJSON: cecli --value-only time / DuckDB", (nd, "cecli"), (nd, "duckdb"), "wall_s", "<= 1.2"),
        Target("NDJSON: cecli RSS / DuckDB", (nd, "cecli"), (nd, "duckdb"), "rss_mib", "<= 1.0"),
        Target(
            "JSON array: cecli time / cecli on the same rows as NDJSON",
            (arr, "cecli"),
            (nd, "cecli"),
            "wall_s",
            "<= 2.0",
        ),
        Target("JSON array: cecli peak RSS, MiB", (arr, "cecli"), None, "rss_mib", "<= 300"),
        Target(
            "JSON object of columns: cecli time / NDJSON", ("json columns", "cecli"), (nd, "cecli"), "wall_s", "<= 2.0"
        ),
        Target("JSON object of columns: cecli peak RSS, MiB", ("json columns", "cecli"), None, "rss_mib", "<= 300"),
        Target("softmax 1000 classes: cecli time / PyTorch", (soft, "cecli"), (soft, "pytorch"), "wall_s", "<= 0.8"),
        Target("softmax 1000 classes: cecli peak RSS, MiB", (soft, "cecli"), None, "rss_mib", "<= 400"),
        Target(
            "per-sample: -f ndjson / -f json", (each, "cecli -f ndjson"), (each, "cecli -f json"), "wall_s", "<= 1.5"
        ),
        Target(
            "per-sample: --out .ndjson / --out .parquet",
            (each, "cecli --out .ndjson"),
            (each, "cecli --out .parquet"),
            "wall_s",
            "<= 1.5",
        ),
        Target(
            "10k classes: automatic columns / -y -p", (wide, "cecli auto columns"), (wide, "cecli"), "wall_s", "<= 1.1"
        ),
        Target("Parquet scaling: 1 core / 2 cores", (pq, "cecli 1 core"), (pq, "cecli 2 cores"), "wall_s"),
        Target("CSV scaling: 1 core / 2 cores", (csv, "cecli 1 core"), (csv, "cecli 2 cores"), "wall_s"),
        Target("CSV: cecli RSS / DuckDB (--summary-only)", (csv, "cecli"), (csv, "duckdb"), "rss_mib"),
        Target("CSV: cecli RSS / Polars (--summary-only)", (csv, "cecli"), (csv, "polars"), "rss_mib"),
        Target("Parquet: cecli RSS / DuckDB (--summary-only)", (pq, "cecli"), (pq, "duckdb"), "rss_mib"),
        Target("Parquet: cecli RSS / Polars (--summary-only)", (pq, "cecli"), (pq, "polars"), "rss_mib"),
        Target("Parquet: cecli --out RSS / DuckDB", (pq, "cecli --out"), (pq, "duckdb"), "rss_mib"),
        Target("Parquet: cecli --out RSS / Polars", (pq, "cecli --out"), (pq, "polars"), "rss_mib"),
        Target("Bounded memory: cecli RSS 2x / 1x rows", (big, "cecli"), (pq, "cecli"), "rss_mib", "<= 1.1"),
        Target("Bounded memory: --out RSS 2x/1x rows", (big, "cecli --out"), (pq, "cecli --out"), "rss_mib", "<= 1.1"),
        Target(
            "--ci 95 (normal): time / JSON without it",
            (pq, "cecli JSON --ci 95"),
            (pq, "cecli JSON"),
            "wall_s",
            "<= 1.1",
        ),
        Target(
            "--bootstrap 1000, 1M rows: time / JSON without it",
            ("parquet 1M (bootstrap)", "cecli JSON --bootstrap 1000"),
            ("parquet 1M (bootstrap)", "cecli JSON"),
            "wall_s",
        ),
        Target("Startup: cecli --version / import numpy", (up, "cecli --version"), numpy, "wall_s", "<= 1.5"),
        Target("Startup: cecli bce 3 rows / import numpy", (up, "cecli bce"), numpy, "wall_s", "<= 1.3"),
    ]


def evaluate(goals: list[Target], results: list[Result]) -> None:
    found = {(r.dataset, r.contender): r for r in results if r.times_s}
    for goal in goals:
        num = found.get(goal.numerator)
        den = found.get(goal.denominator) if goal.denominator else None
        if num is None or (goal.denominator and den is None):
            continue
        if den is None:
            goal.value = getattr(num, goal.metric)
        elif goal.metric == "wall_s":
            goal.value = _time_ratio(num, den)
        else:
            goal.value = getattr(num, goal.metric) / getattr(den, goal.metric)
        if goal.bound:
            op, limit = goal.bound.split()
            goal.met = goal.value <= float(limit) if op == "<=" else goal.value >= float(limit)


# --------------------------------------------------------------------------- reporting


def machine_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("cecli", "numpy", "pyarrow", "typer", "duckdb", "polars", "pandas", "scikit-learn", "torch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        memory = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": _git_revision(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,  # other work skews timings
        "versions": versions,
    }


def _git_revision() -> str | None:
    """The commit of the checkout, ``+dirty`` when cecli/ has uncommitted changes (read-only git commands)."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=BENCH, capture_output=True, text=True)

    try:
        head, diff = git("rev-parse", "--short", "HEAD"), git("diff", "--quiet", "HEAD", "--", "../cecli")
    except OSError:
        return None
    return head.stdout.strip() + ("+dirty" if diff.returncode == 1 else "") if head.returncode == 0 else None


def _fmt_load(load: tuple[float, ...] | None) -> str:
    return "-" if load is None else " ".join(f"{x:.2f}" for x in load)


def _fmt_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.12g}"


def _fmt_mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


COLUMNS = (
    "dataset",
    "rows",
    "contender",
    "wall s (median)",
    "min–max s",
    "RSS MiB",
    "value",
    "ref÷this time",
    "ref÷this RSS",
    "check",
)


def table_rows(results: list[Result]) -> list[tuple[str, ...]]:
    return [
        (
            r.dataset,
            f"{r.rows:,}",
            r.contender,
            f"{r.wall_s:.3f}",
            f"{min(r.times_s):.2f}–{max(r.times_s):.2f}" if r.times_s else "-",
            f"{r.rss_mib:.0f}",
            _fmt_value(r.value),
            _fmt_ratio(r.ratio_time),
            _fmt_ratio(r.ratio_rss),
            r.check,
        )
        for r in results
    ]


def target_rows(goals: list[Target]) -> list[tuple[str, ...]]:
    verdict = {True: "met", False: "MISSED", None: "(reported)"}
    return [
        (g.label, _fmt_ratio(g.value) if g.denominator else _fmt_mib(g.value), g.bound or "-", verdict[g.met])
        for g in goals
    ]


def plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(info: dict) -> str:
    v = info["versions"]
    packages = ", ".join(f"{name} {ver}" for name, ver in v.items() if ver)
    revision = f"; cecli at {info['git']}" if info["git"] else ""
    return f"{info['cpu']}, {info['nproc']} CPUs, {info['memory']}, Python {info['python']}; {packages}{revision}"


def report(results: list[Result], goals: list[Target], info: dict, args: argparse.Namespace) -> None:
    target_header = ("target", "measured", "goal", "verdict")
    print()
    print(machine_line(info))
    print(f"peak RSS cannot read below the runner's own {info['rss_floor_mib']:.0f} MiB; ", end="")
    print(f"load average before/after: {_fmt_load(info['load_average'])} / {_fmt_load(os.getloadavg())}")
    print()
    print(plain_table(COLUMNS, table_rows(results)))
    print()
    print(plain_table(target_header, target_rows(goals)))

    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = {"rows": args.rows, "csv_rows": args.csv_rows, "classes": args.classes, "repeat": args.repeat}
    document = {
        "machine": info,
        "settings": settings | {"seed": SEED, "eps": EPS, "tolerance": TOLERANCE},
        "results": [asdict(r) for r in results],
        "targets": [asdict(g) for g in goals],
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    markdown = [
        f"Machine: {machine_line(info)}; load average before/after {_fmt_load(info['load_average'])} / "
        f"{_fmt_load(os.getloadavg())}. Protocol: each contender is a whole process (cecli as "
        f"`{' '.join(_cecli())}`, its bytecode compiled first, as an installed wheel has it); the contenders "
        f"of a dataset take turns run by run (A B C A B C ...), after one warm-up round that also fills the "
        f"page cache, so every figure is with a warm cache; median of {args.repeat} runs, with the spread "
        f"(min–max); peak RSS is the largest `ru_maxrss` from `wait4` (it cannot read below the runner's own "
        f"{info['rss_floor_mib']:.0f} MiB). Ratios are the dataset's reference (cecli) ÷ contender; a time "
        f"ratio of two contenders of one dataset is the median of the round-by-round ratios (each round runs "
        f"them back to back, so drift in the machine's speed cancels), across datasets the ratio of the "
        f"medians; every figure is from this one run.",
        "",
        markdown_table(COLUMNS, table_rows(results)),
        "",
        markdown_table(target_header, target_rows(goals)),
        "",
    ]
    (RESULTS / "latest.md").write_text("\n".join(markdown))
    print(f"\nwrote {RESULTS.relative_to(BENCH.parent)}/latest.json and latest.md")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows of the Parquet dumps (default 10,000,000)")
    parser.add_argument("--csv-rows", type=int, default=None, help="rows of the CSV dump (default 2,000,000)")
    parser.add_argument("--classes", type=int, default=10, help="classes of the sparse dumps (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000,000 / 200,000 rows")
    parser.add_argument("--only", help="comma-separated dataset names to run, e.g. 'parquet,csv' (default: all)")
    args = parser.parse_args(argv)
    args.rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    args.csv_rows = args.csv_rows or (200_000 if args.quick else 2_000_000)
    if args.classes < 2 or args.repeat < 1 or args.rows < 4 or args.csv_rows < 4:
        parser.error("need --classes >= 2, --repeat >= 1 and at least 4 rows")
    return args


def _compile_cecli() -> None:
    """Write cecli's bytecode, as an installed wheel has it, so no run pays for compiling.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile every
    module on every run (about 25 ms).
    """
    import compileall

    compileall.compile_dir(str(BENCH.parent / "cecli"), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info()
    _log(machine_line(info))
    plan = datasets(args.rows, args.csv_rows, args.classes)
    if args.only:
        plan = [ds for ds in plan if ds.name in args.only.split(",")]
    generate_all(plan)
    _compile_cecli()
    info["rss_floor_mib"] = _own_peak_rss_mib()
    results: list[Result] = []
    for ds in plan:
        _log(f"{ds.name}: {ds.path.relative_to(BENCH.parent)}")
        repeat = args.repeat if ds.rows > 3 else max(10, 3 * args.repeat)  # startup times are short and noisy
        results += measure(ds, repeat)
        check_and_ratio(results, ds)
    goals = targets()
    evaluate(goals, results)
    report(results, goals, info, args)
    failed = [r for r in results if not r.ok]
    for r in failed:
        _log(f"error: {r.dataset}: {r.contender}: {r.check}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
