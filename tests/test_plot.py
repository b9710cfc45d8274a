"""--plot FILE.png|.svg: a valid image with the expected panels, titles and bars (not pixel-exact), atomically
written; a clear usage error without matplotlib, for a name that is not .png/.svg, or a missing folder."""

from __future__ import annotations

import bisect
import json
import math
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

from cecli.cli import app

SVG = "{http://www.w3.org/2000/svg}"
# The fixed bins of README "JSON output": 0, half-decades from 1e-6 to 1e3, then infinity.
EDGES = [0.0, *(10.0 ** (k / 2) for k in range(-12, 7)), math.inf]
PANEL_PIXELS = (800, 360)  # 8 x 3.6 inches at 100 dpi, one panel
# y, p, split: losses -log(p) for y = 1 and -log(1 - p) for y = 0 (no clipping with --eps 0)
ROWS = [(1, 0.5, "a"), (0, 0.2, "b"), (1, 0.9999999, "c"), (1, 0.5, "a"), (0, 0.999, "b")]
CSV = "y,p,split\n" + "".join(f"{y},{p},{split}\n" for y, p, split in ROWS)


def _losses() -> list[float]:
    return [-math.log(p) if y == 1 else -math.log1p(-p) for y, p, _ in ROWS]


def _bin(loss: float) -> int:
    return bisect.bisect_right(EDGES, loss) - 1


def _svg(path) -> tuple[list[str], list[str]]:
    """The texts and the element ids of an SVG file (which must be well-formed XML)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    texts = ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]
    ids = [element.get("id") for element in root.iter() if element.get("id")]
    return texts, ids


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _plot(runner, tmp_path, monkeypatch, args: list[str], name: str):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text(CSV)
    result = runner.invoke(app, [*args, "--plot", name], prog_name="cecli")
    return result, tmp_path / name


def test_svg_histogram_and_group_means(runner, tmp_path, monkeypatch):
    result, path = _plot(
        runner,
        tmp_path,
        monkeypatch,
        ["bce", "in.csv", "-y", "y", "-p", "p", "--by", "split", "-f", "json"],
        "losses.svg",
    )
    assert (result.exit_code, result.stderr) == (0, "")
    texts, ids = _svg(path)
    assert "cecli bce: per-sample loss, 5 samples" in texts
    assert "samples" in texts and "mean loss (nats)" in texts and "mean loss by split" in texts and "split" in texts
    bins = sorted({_bin(loss) for loss in _losses()})
    assert [i for i in ids if i.startswith("histogram-bar-")] == [
        f"histogram-bar-{i}" for i in range(bins[0], bins[-1] + 1)
    ]
    assert [i for i in ids if i.startswith("group-bar-")] == ["group-bar-0", "group-bar-1", "group-bar-2"]
    assert ["a", "b", "c"] == [t for t in texts if t in ("a", "b", "c")]  # one tick label per group, sorted
    assert [t for t in texts if t.startswith("n=")] == ["n=2", "n=2", "n=1"]
    assert "loss (nats), log scale; first bar: below 1e-06" in texts  # -log(0.9999999) = 1e-7 is in the first bin
    assert not list(tmp_path.glob(".losses.svg.*"))  # the temporary file was renamed


def test_png_has_one_panel_per_breakdown(runner, tmp_path, monkeypatch, write_file):
    monkeypatch.chdir(tmp_path)
    write_file("s.csv", "y,p_a,p_b,split\n0,0.8,0.2,x\n1,0.3,0.7,y\n0,0.4,0.6,x\n")
    for args, panels in [([], 1), (["--per-class"], 2), (["--per-class", "--by", "split"], 3)]:
        path = tmp_path / f"p{panels}.png"
        result = runner.invoke(
            app, ["sparse", "s.csv", "-y", "y", "-p", "p_*", *args, "--plot", path.name, "-f", "json"]
        )
        assert (result.exit_code, result.stderr) == (0, ""), args
        assert _png_size(path) == (PANEL_PIXELS[0], PANEL_PIXELS[1] * panels)


def test_plot_with_value_only_still_draws_the_histogram(runner, tmp_path, monkeypatch):
    result, path = _plot(
        runner, tmp_path, monkeypatch, ["bce", "in.csv", "-y", "y", "-p", "p", "--value-only"], "v.svg"
    )
    assert result.exit_code == 0
    assert float(result.stdout) == pytest.approx(math.fsum(_losses()) / len(ROWS), rel=1e-15)
    texts, ids = _svg(path)
    assert "cecli bce: per-sample loss, 5 samples" in texts
    assert any(i.startswith("histogram-bar-") for i in ids)
    assert not any(i.startswith("group-bar-") for i in ids)


def test_many_groups_show_the_most_populous(runner, tmp_path, monkeypatch, write_file):
    monkeypatch.chdir(tmp_path)
    rows = [f"1,0.5,g{i:02d}\n" for i in range(45)] + ["1,0.5,g44\n"] * 2  # g44 has 3 rows
    write_file("many.csv", "y,p,g\n" + "".join(rows))
    result = runner.invoke(app, ["bce", "many.csv", "-y", "y", "-p", "p", "--by", "g", "--plot", "m.svg", "-f", "json"])
    assert result.exit_code == 0
    texts, ids = _svg(tmp_path / "m.svg")
    assert "mean loss by g (40 of 45 groups, those with the most samples)" in texts
    assert len([i for i in ids if i.startswith("group-bar-")]) == 40
    assert "g44" in texts and "n=3" in texts


@pytest.mark.parametrize(
    ("name", "stderr"),
    [
        ("out.pdf", "cecli: error: cannot tell the image format of --plot out.pdf (use a .png or .svg name)\n"),
        ("nowhere/out.png", "cecli: error: the folder of --plot nowhere/out.png does not exist (create it first)\n"),
    ],
)
def test_a_bad_plot_name_is_a_usage_error(runner, tmp_path, monkeypatch, name, stderr):
    result, path = _plot(runner, tmp_path, monkeypatch, ["bce", "in.csv", "-y", "y", "-p", "p"], name)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", stderr)
    assert not path.exists()


def test_without_matplotlib_the_message_names_the_extra(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result, path = _plot(runner, tmp_path, monkeypatch, ["bce", "in.csv", "-y", "y", "-p", "p"], "p.png")
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        result.stderr == "cecli: error: --plot needs matplotlib, which is not installed (pip install 'cecli[plot]')\n"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_an_existing_plot_is_replaced_whole(runner, tmp_path, monkeypatch):
    (tmp_path / "old.png").write_bytes(b"old")
    result, path = _plot(
        runner, tmp_path, monkeypatch, ["bce", "in.csv", "-y", "y", "-p", "p", "-f", "json"], "old.png"
    )
    assert result.exit_code == 0
    assert _png_size(path) == PANEL_PIXELS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "old.png"]


def test_group_labels_read_as_the_json_output_writes_the_keys(runner, tmp_path, monkeypatch, write_file):
    monkeypatch.chdir(tmp_path)
    write_file("g.csv", "y,p,g\n1,0.5,\n1,0.5,true\n1,0.5,x\n")
    result = runner.invoke(app, ["bce", "g.csv", "-y", "y", "-p", "p", "--by", "g", "--plot", "g.svg", "-f", "json"])
    assert result.exit_code == 0
    keys = [json.dumps(group["key"]["g"]).strip('"') for group in json.loads(result.stdout)["by"]]
    assert sorted(keys) == ["null", "true", "x"]
    texts, _ = _svg(tmp_path / "g.svg")
    assert [text for text in texts if text in keys] == keys  # one tick label per group, in the JSON's order
