"""Write the seed examples as real CSV, JSON and Parquet files in sample_data/.

Usage::

    python sample_data/make_sample_data.py [SEED_EXAMPLES_JSON] [--out-dir DIR]

The seed file defaults to ``tests/data/seed_examples.json`` (a copy of the design card's).
For every case three files are written to DIR (default: next to this script): ``<name>.csv``,
``<name>.json`` and ``<name>.parquet``. Column names follow cecli's automatic column detection (see
sample_data/README.md). Floats are written with ``repr()`` so that they round-trip exactly. The output
is the same on every run (tests/test_sample_data.py compares it with the committed files). Problems are
one line on stderr: exit 2 for a missing pyarrow, 3 for a seed file that cannot be read.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ModuleNotFoundError as missing:  # run with a Python that lacks cecli's dependencies
    sys.stderr.write(
        f"make_sample_data.py: error: no module named {missing.name!r} "
        "(run it with the Python where cecli is installed: pip install -e .)\n"
    )
    sys.exit(2)

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = Path(__file__).resolve().parents[1] / "tests" / "data" / "seed_examples.json"

# Name of the list column (JSON/Parquet) and prefix of the CSV columns that hold the predictions.
PRED_NAMES = {
    "bce": ("y_pred", "y_pred"),
    "cce": ("y_pred", "y_pred_"),
    "sparse": ("y_pred", "y_pred_"),
    "softmax": ("logits", "logit_"),
    "entropy": ("y_pred", "p_"),
}


def floats(row: list) -> list[float]:
    return [float(x) for x in row]


def case_columns(case: dict) -> tuple[list[str], list[list], list | dict, pa.Table]:
    """Return (csv_header, csv_rows, json_document, parquet_table) for one seed case."""
    kind = case["command"]
    list_name, prefix = PRED_NAMES[kind]
    y_pred = case["y_pred"]

    # Labels keep the seed's own values (0/1 stay integers in CSV and JSON); predictions are always floats.
    if kind == "bce":
        y_true = case["y_true"]
        y_pred = floats(y_pred)
        header = ["y_true", "y_pred"]
        rows = [[t, p] for t, p in zip(y_true, y_pred, strict=True)]
        document = [{"y_true": t, "y_pred": p} for t, p in zip(y_true, y_pred, strict=True)]
        table = pa.table({"y_true": pa.array(floats(y_true), pa.float64()), "y_pred": pa.array(y_pred, pa.float64())})
        return header, rows, document, table

    y_pred = [floats(row) for row in y_pred]
    n_classes = len(y_pred[0])
    pred_header = [f"{prefix}{c}" for c in range(n_classes)]
    list_type = pa.list_(pa.float64())

    if kind == "cce":
        y_true = case["y_true"]
        header = [f"y_true_{c}" for c in range(n_classes)] + pred_header
        rows = [t + p for t, p in zip(y_true, y_pred, strict=True)]
        document = {"y_true": y_true, "y_pred": y_pred}
        y_true_array = pa.array([floats(row) for row in y_true], list_type)
        table = pa.table({"y_true": y_true_array, "y_pred": pa.array(y_pred, list_type)})
    elif kind in ("sparse", "softmax"):
        y_true = [int(t) for t in case["y_true"]]
        header = ["y_true"] + pred_header
        rows = [[t] + p for t, p in zip(y_true, y_pred, strict=True)]
        document = [{"y_true": t, list_name: p} for t, p in zip(y_true, y_pred, strict=True)]
        table = pa.table({"y_true": pa.array(y_true, pa.int64()), list_name: pa.array(y_pred, list_type)})
    elif kind == "entropy":
        header = pred_header
        rows = y_pred
        document = [{list_name: p} for p in y_pred]
        table = pa.table({list_name: pa.array(y_pred, list_type)})
    else:
        raise SystemExit(f"unknown command {kind!r} in seed case {case['name']!r}")
    return header, rows, document, table


def cell(value: float | int) -> str:
    return repr(value)


def to_json(document: list | dict) -> str:
    """One record (or one column) per line; json.dumps writes floats with repr(), so they round-trip exactly."""
    if isinstance(document, dict):
        lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in document.items()]
        return "{\n " + ",\n ".join(lines) + "\n}\n"
    return "[\n " + ",\n ".join(json.dumps(record) for record in document) + "\n]\n"


def write_case(case: dict, out_dir: Path) -> list[Path]:
    header, rows, document, table = case_columns(case)
    stem = out_dir / case["name"]

    csv_path = stem.with_suffix(".csv")
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([cell(v) for v in row] for row in rows)

    json_path = stem.with_suffix(".json")
    json_path.write_text(to_json(document), encoding="utf-8")

    parquet_path = stem.with_suffix(".parquet")
    pq.write_table(table, parquet_path)
    return [csv_path, json_path, parquet_path]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make_sample_data.py", description="Write the seed examples as files.")
    parser.add_argument("seed", nargs="?", type=Path, default=DEFAULT_SEED, help="seed examples JSON")
    parser.add_argument("--out-dir", type=Path, default=HERE, help="folder to write to (default: sample_data/)")
    args = parser.parse_args(argv)
    try:
        cases = json.loads(args.seed.read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = f"no {error} key" if isinstance(error, KeyError) else str(error)
        sys.stderr.write(f"make_sample_data.py: error: cannot read seed examples from {args.seed}: {reason}\n")
        return 3
    args.out_dir.mkdir(parents=True, exist_ok=True)
    written = [path for case in cases for path in write_case(case, args.out_dir)]
    try:
        sys.stdout.writelines(f"{os.path.relpath(path)}\n" for path in written)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the files are written, the reader wanted fewer names
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
