"""Readers through the library API: every format, compression and batch size gives the same per-sample losses."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli.errors import InputError
from cecli.io.base import ReadSettings
from cecli.io.columns import Column, choose_columns
from cecli.io.sources import open_input
from cecli.pipeline import compute

N = 50
IDS = [f"id,{i}" for i in range(N)]  # a comma inside a quoted --keep field
LABELS = [i % 3 for i in range(N)]
PROBS = [[(i % 5 + 1) / 15, (i % 7 + 1) / 20, 1 - (i % 5 + 1) / 15 - (i % 7 + 1) / 20] for i in range(N)]
EXPECTED = [-math.log(PROBS[i][LABELS[i]]) for i in range(N)]


def _csv(delimiter: str = ",", newline: str = "\n") -> str:
    rows = ["id,label,p_0,p_1,p_2".replace(",", delimiter)]
    rows += [delimiter.join([f'"{IDS[i]}"', str(LABELS[i]), *map(repr, PROBS[i])]) for i in range(N)]
    return newline.join(rows) + newline


def _records() -> list[dict]:
    return [{"id": IDS[i], "label": LABELS[i], **{f"p_{c}": PROBS[i][c] for c in range(3)}} for i in range(N)]


def _write(tmp_path, name: str, kind: str):
    path = tmp_path / name
    if kind == "csv":
        path.write_text(_csv(), newline="")
    elif kind == "tsv":
        path.write_text(_csv("\t"), newline="")
    elif kind == "json-records":
        path.write_text(json.dumps(_records()))
    elif kind == "json-columns":
        path.write_text(json.dumps({"id": IDS, "label": LABELS, "probs": PROBS}))
    elif kind == "ndjson":
        path.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    elif kind == "parquet":
        pq.write_table(pa.Table.from_pylist(_records()), path)
    elif kind == "parquet-list":
        pq.write_table(pa.table({"id": IDS, "label": LABELS, "probs": PROBS}), path)
    return path


FORMATS = [
    pytest.param("d.csv", "csv", "p_*", id="csv"),
    pytest.param("d.tsv", "tsv", "p_*", id="tsv"),
    pytest.param("d.json", "json-records", "p_*", id="json-records"),
    pytest.param("d.json", "json-columns", "probs", id="json-columns"),
    pytest.param("d.ndjson", "ndjson", "p_*", id="ndjson"),
    pytest.param("d.parquet", "parquet", "p_*", id="parquet"),
    pytest.param("d.parquet", "parquet-list", "probs", id="parquet-list"),
]


@pytest.mark.parametrize(("name", "kind", "p"), FORMATS)
def test_every_format_gives_the_same_per_sample(tmp_path, name, kind, p):
    path = _write(tmp_path, name, kind)
    result = compute("sparse", str(path), y="label", p=p, keep="id")
    assert result.per_sample.tolist() == pytest.approx(EXPECTED, rel=1e-12)
    assert result.keep["id"] == IDS


@pytest.mark.parametrize(("name", "kind", "p"), FORMATS)
@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7, 1000])
def test_batch_size_does_not_change_anything(tmp_path, name, kind, p, batch_rows):
    path = _write(tmp_path, name, kind)
    whole = compute("sparse", str(path), y="label", p=p)
    batched = compute("sparse", str(path), y="label", p=p, read=ReadSettings(batch_rows=batch_rows))
    assert batched.value == whole.value
    assert batched.per_sample.tolist() == whole.per_sample.tolist()
    assert batched.partial.count == N


@pytest.mark.parametrize("batch_rows", [1, 3, 7, 1000])
def test_labels_file_alignment_across_batch_sizes(tmp_path, batch_rows):
    preds = tmp_path / "p.parquet"
    pq.write_table(pa.table({f"p_{c}": [row[c] for row in PROBS] for c in range(3)}), preds)
    labels = tmp_path / "y.csv"
    labels.write_text("label\n" + "".join(f"{y}\n" for y in LABELS))
    result = compute("sparse", str(preds), labels=str(labels), read=ReadSettings(batch_rows=batch_rows))
    assert result.per_sample.tolist() == pytest.approx(EXPECTED, rel=1e-12)


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1000])
@pytest.mark.parametrize(
    ("prefix", "newline", "delimiter", "blank_lines"),
    [pytest.param(b"", "\n", ",", False, id="lf"), pytest.param(b"\xef\xbb\xbf", "\r\n", ",", False, id="bom-crlf"),
     pytest.param(b"", "\n", "\t", True, id="tsv-blank-lines"), pytest.param(b"", "\r", ",", False, id="lone-cr")],
)  # fmt: skip
@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_csv_block_size_does_not_change_anything(
    tmp_path, monkeypatch, block_bytes, prefix, newline, delimiter, blank_lines, via_stdin
):
    """CSV is parsed in newline-aligned blocks on two threads; any block size gives the same records in order."""
    text = _csv(delimiter, newline)
    if blank_lines:
        text = text.replace(newline, newline * 2)
    path = tmp_path / ("d.tsv" if delimiter == "\t" else "d.csv")
    path.write_bytes(prefix + text.encode())
    source = "-" if via_stdin else str(path)
    read = ReadSettings(input_format="tsv" if delimiter == "\t" else "csv", batch_rows=5)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    monkeypatch.setattr("cecli.io.csv._CSV_BLOCK_BYTES", block_bytes)
    result = compute("sparse", source, y="label", keep="id", read=read)
    assert result.per_sample.tolist() == pytest.approx(EXPECTED, rel=1e-12)
    assert result.keep["id"] == IDS


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [pytest.param(".gz", gzip.compress, id="gzip"), pytest.param(".bz2", bz2.compress, id="bz2"),
     pytest.param(".zst", _zstd, id="zstd")],
)  # fmt: skip
def test_compressed_csv_equals_plain(tmp_path, suffix, compress):
    plain = _write(tmp_path, "d.csv", "csv")
    packed = tmp_path / f"d.csv{suffix}"
    packed.write_bytes(compress(plain.read_bytes()))
    expected = compute("sparse", str(plain), keep="id")
    result = compute("sparse", str(packed), keep="id")
    assert result.per_sample.tolist() == expected.per_sample.tolist()
    assert result.keep == expected.keep


def test_gzip_bytes_on_stdin_equal_plain(tmp_path, monkeypatch):
    plain = _write(tmp_path, "d.csv", "csv")
    fake_stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(plain.read_bytes())))
    monkeypatch.setattr("sys.stdin", fake_stdin)
    result = compute("sparse", "-")
    assert result.per_sample.tolist() == compute("sparse", str(plain)).per_sample.tolist()
    assert result.input.format == "csv"


@pytest.mark.parametrize(
    ("prefix", "newline"),
    [pytest.param(b"\xef\xbb\xbf", "\n", id="bom"), pytest.param(b"", "\r\n", id="crlf"),
     pytest.param(b"\xef\xbb\xbf", "\r\n", id="bom-crlf")],
)  # fmt: skip
def test_bom_and_crlf(tmp_path, prefix, newline):
    path = tmp_path / "d.csv"
    path.write_bytes(prefix + _csv(newline=newline).encode())
    result = compute("sparse", str(path), keep="id")
    assert result.input.label_columns == ["label"]
    assert result.per_sample.tolist() == pytest.approx(EXPECTED, rel=1e-12)
    assert result.keep["id"] == IDS


def test_open_input_lists_columns_and_format(tmp_path):
    source = open_input(str(_write(tmp_path, "d.parquet", "parquet-list")))
    try:
        assert source.format == "parquet"
        assert [(c.position, c.name, c.is_list) for c in source.columns] == [
            (1, "id", False), (2, "label", False), (3, "probs", True),
        ]  # fmt: skip
    finally:
        source.close()


@pytest.mark.parametrize(
    ("content", "fmt"),
    [pytest.param(b"y_true,y_pred\n1,0.9\n", "csv", id="csv"),
     pytest.param(b'[{"a": 1}]', "json", id="json"),
     pytest.param(b'{"a": 1}\n{"a": 2}\n', "ndjson", id="ndjson"),
     pytest.param(b'{"a": [1, 2]}', "json", id="columns")],
)  # fmt: skip
def test_sniffing_without_extension(tmp_path, content, fmt):
    path = tmp_path / "data"
    path.write_bytes(content)
    source = open_input(str(path))
    try:
        assert source.format == fmt
    finally:
        source.close()


# ------------------------------------------------------------------ automatic columns (README "Choosing columns")


def _columns(names):
    return [Column(i + 1, name, "string") for i, name in enumerate(names)]


@pytest.mark.parametrize(
    ("loss", "names", "headerless", "labels", "predictions"),
    [
        pytest.param("bce", ["y_true", "y_pred"], False, ["y_true"], ["y_pred"], id="y_true-y_pred"),
        pytest.param("bce", ["id", "target", "prob"], False, ["target"], ["prob"], id="target-prob-with-id"),
        pytest.param("bce", ["Label", "Score"], False, ["Label"], ["Score"], id="case-insensitive"),
        pytest.param("bce", ["truth", "logits"], False, ["truth"], ["logits"], id="truth-logits"),
        pytest.param("bce", ["y_true", "y_pred", "prob"], False, ["y_true"], ["y_pred"], id="first-name-wins"),
        pytest.param("sparse", ["class", "p_0", "p_1", "p_2"], False, ["class"], ["p_0", "p_1", "p_2"], id="p-family"),
        pytest.param("sparse", ["y", "p0", "p1"], False, ["y"], ["p0", "p1"], id="p-digit-family"),
        pytest.param("softmax", ["target", "logit_0", "logit_1"], False, ["target"], ["logit_0", "logit_1"],
                     id="logit-family"),
        pytest.param("cce", ["y_true_0", "y_true_1", "y_pred_0", "y_pred_1"], False, ["y_true_0", "y_true_1"],
                     ["y_pred_0", "y_pred_1"], id="y_true-y_pred-families"),
        pytest.param("cce", ["label_a", "label_b", "prob_a", "prob_b"], False, ["label_a", "label_b"],
                     ["prob_a", "prob_b"], id="label-prob-families"),
        # Rule 3: no name matches, so positions decide.
        pytest.param("bce", ["a", "b"], False, ["a"], ["b"], id="two-unnamed"),
        pytest.param("sparse", ["a", "b", "c"], False, ["a"], ["b", "c"], id="sparse-first-is-label"),
        pytest.param("cce", ["a", "b", "c", "d"], False, ["a", "b"], ["c", "d"], id="cce-halves"),
        pytest.param("entropy", ["a", "b", "c"], False, [], ["a", "b", "c"], id="entropy-all"),
        pytest.param("bce", ["1", "2"], True, ["1"], ["2"], id="headerless-two"),
        pytest.param("softmax", ["1", "2", "3"], True, ["1"], ["2", "3"], id="headerless-softmax"),
        pytest.param("cce", ["1", "2", "3", "4"], True, ["1", "2"], ["3", "4"], id="headerless-cce"),
        pytest.param("entropy", ["1", "2"], True, [], ["1", "2"], id="headerless-entropy"),
    ],
)  # fmt: skip
def test_automatic_columns(loss, names, headerless, labels, predictions):
    selection = choose_columns(loss, _columns(names), file="f.csv", headerless=headerless)
    assert selection.names("labels") == labels
    assert selection.names("predictions") == predictions


def test_given_y_takes_the_rest_as_predictions():
    selection = choose_columns("sparse", _columns(["a", "b", "c"]), file="f.csv", y="c")
    assert (selection.names("labels"), selection.names("predictions")) == (["c"], ["a", "b"])


@pytest.mark.parametrize(
    ("loss", "names", "message"),
    [
        pytest.param("bce", ["a", "b", "c"], "f.csv: cannot tell which columns hold the predictions; columns found: "
                     "a, b, c (name them with -y LABEL_COLS and -p PRED_COLS)", id="three-unnamed"),
        pytest.param("bce", ["a", "b", "y_pred"], "f.csv: cannot tell which columns hold the labels; columns found: "
                     "a, b, y_pred (name them with -y LABEL_COLS and -p PRED_COLS)", id="two-label-candidates"),
    ],
)  # fmt: skip
def test_ambiguous_columns_list_what_was_found(loss, names, message):
    with pytest.raises(InputError) as caught:
        choose_columns(loss, _columns(names), file="f.csv")
    assert str(caught.value) == message


# --- URLs: pyarrow filesystems (file:// stands in for s3:// and gs://, which need network access) ---


def test_file_urls_read_like_paths(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cecli.pipeline import compute

    folder = tmp_path / "dump"
    (folder / "split=a").mkdir(parents=True)
    (folder / "split=b").mkdir()
    pq.write_table(pa.table({"y_true": [1.0, 0.0], "y_pred": [0.9, 0.2]}), folder / "split=a" / "part-0.parquet")
    (folder / "split=b" / "part-0.csv").write_text("y_true,y_pred\n1,0.6\n")
    (folder / "_SUCCESS").write_text("")
    by_path = compute("bce", str(folder))
    by_url = compute("bce", folder.as_uri())
    assert by_url.value == by_path.value == pytest.approx((-math.log(0.9) - math.log(0.8) - math.log(0.6)) / 3)
    parts = [folder / "split=a" / "part-0.parquet", folder / "split=b" / "part-0.csv"]
    assert by_url.input.paths == [f"file://{part}" for part in parts]  # _SUCCESS is skipped
    single = compute("bce", (folder / "split=a" / "part-0.parquet").as_uri())
    assert single.per_sample.tolist() == pytest.approx([-math.log(0.9), -math.log(0.8)])
    # Options in a folder URL's query (e.g. ?region= for s3) are carried to every file it lists.
    with_query = compute("bce", folder.as_uri() + "?unused=1")
    assert with_query.input.paths == [f"file://{part}?unused=1" for part in parts]
    assert with_query.value == by_path.value


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file-float-path", "stdin-text-path"])
def test_bad_cell_deep_in_a_csv_is_located_on_both_read_paths(runner, tmp_path, via_stdin):
    # Files parse numbers directly and re-scan as text only to locate an error; stdin is read as text.
    from cecli.cli import app

    rows = ["y_true,y_pred"] + ["1,0.5"] * 5000 + ["0,oops"] + ["0,0.25"] * 100
    path = tmp_path / "deep.csv"
    path.write_text("\n".join(rows) + "\n")
    args = ["bce", "-" if via_stdin else str(path), "--batch-rows", "64"]
    if via_stdin:
        args += ["--input-format", "csv"]
    result = runner.invoke(app, args, input=path.read_bytes() if via_stdin else None)
    assert result.exit_code == 3
    name = "<stdin>" if via_stdin else str(path)
    assert result.stderr == (
        f"cecli: error: {name}:5002:y_pred: not a number: 'oops' (every cell of this column must be a number)\n"
    )


def test_newline_blocks_end_at_newlines_and_keep_an_unterminated_last_line_in_the_last_block():
    from cecli.io.csv import _newline_blocks

    assert list(_newline_blocks(io.BytesIO(b"a,1\nb,2\nc,3"), 64)) == [b"a,1\nb,2\nc,3"]
    assert list(_newline_blocks(io.BytesIO(b"a,1\nb,2\nc,3"), 6)) == [b"a,1\n", b"b,2\nc,3"]
    assert list(_newline_blocks(io.BytesIO(b"long line\nx\ny\n"), 3)) == [b"long line\nx\n", b"y\n"]
    assert list(_newline_blocks(io.BytesIO(b""), 3)) == []


def test_newline_blocks_of_a_stream_that_reads_short_still_end_at_newlines():
    from cecli.io.csv import _newline_blocks

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, size: int = -1) -> bytes:
            byte, self.data = self.data[:1], self.data[1:]
            return byte

    text = b"y,p\n1,0.9\n0,0.25\n1,0.5"
    blocks = list(_newline_blocks(Trickle(text), 4))
    assert b"".join(blocks) == text
    assert all(block.endswith(b"\n") for block in blocks[:-1])
