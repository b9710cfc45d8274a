"""Heavy imports stay lazy (STYLE.md #17): importing the CLI and `--version` load neither pyarrow nor rich.table,
and `--version` does not load NumPy either."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cecli import __version__


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def _with_importtime(*args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``python -X importtime -m cecli ARGS``: the finished run (text) and the modules its import report names."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", *args], input=input, capture_output=True, text=True
    )
    return done, {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}


def test_importing_the_cli_loads_neither_pyarrow_nor_rich_table():
    done = _python("import cecli.cli, sys; print('pyarrow' in sys.modules, 'rich.table' in sys.modules)")
    assert done.stdout == "False False\n"


def test_version_does_not_import_pyarrow():
    code = (
        "import sys\n"
        "from cecli.cli import app\n"
        "sys.argv = ['cecli', '--version']\n"
        "try:\n"
        "    app()  # main() would end the process\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print('pyarrow' in sys.modules, 'rich.table' in sys.modules, 'numpy' in sys.modules)\n"
    )
    done = _python(code)
    assert done.stdout == f"cecli {__version__}\nexit 0\nFalse False False\n"


def test_python_m_cecli_version_import_log_has_no_pyarrow():
    done, imported = _with_importtime("--version")
    assert done.returncode == 0
    assert done.stdout == f"cecli {__version__}\n"
    assert "cecli.cli" in imported
    assert not [name for name in imported if name.split(".")[0] == "pyarrow"]


def test_a_small_csv_one_liner_loads_no_pyarrow(tmp_path):
    """pyarrow takes about 35 ms to import, pydantic (Typer 0.29) 0.1 s: a small all-numeric CSV needs neither."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.9\n0,0.2\n1,0.6\n")
    done, imported = _with_importtime("bce", str(sample), "--value-only")
    assert (done.returncode, done.stdout) == (0, "0.2797765635793423\n")
    assert "cecli.pipeline" in imported
    assert not [name for name in imported if name.split(".")[0] in ("pyarrow", "pydantic")]


@pytest.mark.parametrize("args", [["--value-only"], ["-f", "csv"], ["-f", "json"]])
def test_a_csv_one_liner_loads_neither_dask_nor_rich(tmp_path, args):
    """The Dask engine loads only for ``--engine dask``, rich only for the table, pyarrow only beyond the
    small-CSV path: a one-liner, in every output format but the table, needs none of them."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.5\n")
    done, imported = _with_importtime("bce", str(sample), *args)
    assert done.returncode == 0
    assert repr(math.log(2)) in done.stdout  # -ln(0.5), the one row's loss
    assert {"cecli.io.sources", "cecli.render", "cecli.engines.local"} <= imported
    absent = ("cecli.engines.dask", "cecli.engines.dask_cluster", "dask", "distributed", "rich", "pyarrow")
    assert [name for name in imported if name.split(".")[0] in absent or name in absent] == []


def test_the_cli_never_imports_pandas_even_where_pyarrow_would(tmp_path):
    """pyarrow imports pandas, if installed, on its first pa.array() (JSON input, --out): 0.3 s the CLI avoids."""
    fake = tmp_path / "site" / "pandas"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise RuntimeError('pandas was imported')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    control = subprocess.run(
        [sys.executable, "-c", "import pyarrow as pa; pa.array([1.0])"], env=env, capture_output=True, text=True
    )
    assert "pandas was imported" in control.stderr  # without cecli's hook, pyarrow reaches for pandas
    (tmp_path / "in.json").write_text('[{"y": 1, "p": 0.9}, {"y": 0, "p": 0.2}]')
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "bce", "in.json", "--value-only", "--out", "out.parquet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert float(done.stdout) == pytest.approx((-math.log(0.9) - math.log(0.8)) / 2, rel=1e-15)
    assert (tmp_path / "out.parquet").exists()


def test_a_one_liner_builds_only_its_own_command(tmp_path):
    """The group builds a command's Click parameters when it is looked up (about 8 ms for all eight)."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.9\n0,0.2\n1,0.6\n")
    code = (
        "import sys\n"
        "import cecli.cli\n"
        "group = sys.modules['cecli.cli.app']._lazy_group()  # the package's `app` is the Typer app\n"
        "try:\n"
        f"    group.main(['bce', {str(sample)!r}, '--value-only'])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print(sorted(group.commands._built))\n"
    )
    done = _python(code)
    assert done.stdout == "0.2797765635793423\nexit 0\n['bce']\n"


@pytest.mark.parametrize(
    "args", [["--help"], ["bce", "--help"], ["columns", "--help"], [], ["bc", "x"], ["--version"], ["kl", "--frob"]]
)
def test_the_process_group_answers_as_the_whole_app(args):
    """``python -m cecli`` builds commands on demand; help, errors and codes are those of the app built at once."""
    whole_app = "import sys; sys.argv = ['cecli', *sys.argv[1:]]; from cecli.cli import app; app()"
    whole = subprocess.run([sys.executable, "-c", whole_app, *args], capture_output=True, text=True)
    done = subprocess.run([sys.executable, "-m", "cecli", *args], capture_output=True, text=True)
    assert whole.stdout or whole.stderr  # help, a version or an error line: something to compare
    assert (done.returncode, done.stdout, done.stderr) == (whole.returncode, whole.stdout, whole.stderr)


def _one_liner_imports(tmp_path, *args) -> set[str]:
    """The modules a 3-row ``cecli bce`` run imports (``-X importtime``); its value checked on the way."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.9\n0,0.2\n1,0.6\n")
    done, imported = _with_importtime("bce", str(sample), *args)
    assert done.returncode == 0
    mean = (-math.log(0.9) - math.log(0.8) - math.log(0.6)) / 3
    value = json.loads(done.stdout)["value"] if "json" in args else float(done.stdout)
    assert value == pytest.approx(mean, rel=1e-15)
    return imported


@pytest.mark.parametrize(
    "module",
    [
        "cecli.cli.compare",  # the compare sub-app and its eight commands, built only for `cecli compare`
        "json",  # json and its regexes (about 1 ms): only JSON input and JSON output need it
        "cecli.io.json",
        "cecli.io.json_values",
        "cecli.io.ndjson",
        "cecli.io.parquet",
        "cecli.uncertainty",
        "queue",  # only the reader thread of a large input needs it; a small CSV is read without
    ],
)
def test_a_value_only_one_liner_does_not_import(tmp_path, module):
    imported = _one_liner_imports(tmp_path, "--value-only")
    assert "cecli.pipeline" in imported  # the log is the run's: it did score
    assert module not in imported


def test_json_output_still_imports_json(tmp_path):
    """The control of the test above: the same run with ``-f json`` does import json, so its absence means laziness."""
    imported = _one_liner_imports(tmp_path, "-f", "json", "--summary-only")
    assert "json" in imported
    assert "cecli.cli.compare" not in imported


def test_the_compare_group_builds_its_commands_when_used():
    """``cecli compare --help`` lists every loss's compare command although none was registered at import."""
    code = (
        "import sys\n"
        "from cecli.cli import app\n"
        "from cecli.losses import REGISTRY\n"
        "print('cecli.cli.compare' in sys.modules)\n"
        "sys.argv = ['cecli', 'compare', '--help']\n"
        "try:\n"
        "    app()\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print(sorted(info.name for info in sys.modules['cecli.cli.compare'].compare_app.registered_commands)"
        " == sorted(REGISTRY))\n"
    )
    done = _python(code)
    lines = done.stdout.splitlines()
    assert (lines[0], lines[-2], lines[-1]) == ("False", "exit 0", "True")
    assert all(f"  {name} " in done.stdout for name in ("bce", "sparse"))


ONE_LINER_ON_STDIN = b"1,0.9\n0,0.2\n1,0.7\n"  # bench/startup.py's input


@pytest.mark.parametrize("args", [[], ["--value-only"]])
def test_the_stdin_one_liner_imports_none_of_the_heavy_modules(args):
    """``printf ... | cecli bce``, as bench/startup.py times it (JSON output when piped), loads no module it
    does not use: no reader of other formats, no table, no interval, no version lookup."""
    done, imported = _with_importtime("bce", *args, input=ONE_LINER_ON_STDIN.decode())
    assert done.returncode == 0
    mean = -(math.log(0.9) + math.log(1 - 0.2) + math.log(0.7)) / 3
    value = float(done.stdout) if args else json.loads(done.stdout)["value"]
    assert value == pytest.approx(mean, rel=1e-15)
    assert {"cecli.pipeline", "cecli.io.csv", "cecli.render"} <= imported  # the log is the scoring run's
    heavy = {
        "pyarrow",  # about 35 ms: a small all-numeric CSV is parsed with float()
        "pandas",
        "pydantic",  # Typer 0.29's option conversion, replaced by cecli.cli.group._Convert
        "rich",  # the table and the progress bar only
        "dask",
        "distributed",
        "queue",  # the reader thread of large inputs only
        "decimal",
        "fractions",
        "statistics",  # --ci's z only
        "importlib.metadata",  # the version is a constant
        "cecli.uncertainty",
        "cecli.comparison",
        "cecli.cli.compare",
        "cecli.io.writers",
        "cecli.plot",
    }
    assert sorted(name for name in imported if name in heavy or name.split(".")[0] in heavy) == []


def test_the_collector_is_paused_for_the_start_up_and_resumed_for_the_work():
    """``cecli`` starts without the garbage collector (no garbage to find among the imports' objects, about
    6 ms of a one-liner), and :func:`~cecli.engines.tuning.tune_for_batches` resumes it, with those objects
    frozen, before the work: a long run collects as usual."""
    code = (
        "import gc, sys\n"
        "import cecli.engines.tuning as tuning\n"
        "original = tuning.tune_for_batches\n"
        "def spy():\n"
        "    before = (gc.isenabled(), gc.get_freeze_count())\n"
        "    original()\n"
        "    sys.stderr.write(f'{before[0]} {before[1]} {gc.isenabled()} {gc.get_freeze_count() > 1000}\\n')\n"
        "tuning.tune_for_batches = spy\n"
        "sys.argv = ['cecli', 'bce', '--value-only']\n"
        "from cecli.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=ONE_LINER_ON_STDIN, capture_output=True, text=False)
    assert (done.returncode, done.stderr) == (0, b"False 0 True True\n")
    assert float(done.stdout) == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.7)) / 3, rel=1e-15)


def test_tune_for_batches_leaves_a_running_collector_alone():
    """In a Dask worker or a library caller's process the collector runs: nothing is frozen there."""
    code = (
        "import gc\n"
        "from cecli.engines.tuning import tune_for_batches\n"
        "tune_for_batches()\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    assert _python(code).stdout == "True 0\n"


# The small-CSV check as a regex over the whole body (how cecli wrote it before checking cell by cell, which
# spares compiling this pattern, 0.35 ms of a one-liner): rows of `width` plain numbers, LF or CRLF line ends,
# none blank, an optional final line end.
def _plain_body_spec(body: str, delimiter: str, width: int) -> bool:
    import re

    number = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
    row = f"{number}(?:{re.escape(delimiter)}{number}){{{width - 1}}}"
    return re.fullmatch(f"{row}(?:\r?\n{row})*(?:\r?\n)?", body) is not None


@st.composite
def _csv_bodies(draw) -> tuple[str, str, int]:
    """A delimiter, a width and a body: random text of CSV-ish characters, or rows of numbers with some damage."""
    delimiter, width = draw(st.sampled_from([",", ";", "\t"])), draw(st.integers(1, 3))
    chars = st.sampled_from(list('0123456789.eE+-,;\t\r\n x"'))
    valid = st.sampled_from(["1", "-2.5", ".5", "3e-2", "7.", "+0", "0.25", "1E+5"])
    cell = valid | st.sampled_from(["1e", "", " 1", "x", "1\r", "nan", "\u0661"])
    row = st.lists(valid, min_size=width, max_size=width) | st.lists(cell, min_size=width - 1, max_size=width + 1)
    ends = st.sampled_from(["\n", "\r\n"]) | st.sampled_from(["\r", "\n\n", "\r\r\n", "\n\r"])
    rows = st.lists(st.tuples(row.map(delimiter.join), ends), min_size=1, max_size=4).map(
        lambda pairs: "".join(r + e for r, e in pairs)
    )
    body = draw(rows | rows.map(lambda text: text[:-1]) | st.text(alphabet=chars, max_size=30))
    return body, delimiter, width


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_csv_bodies())
def test_the_small_csv_path_takes_exactly_the_plain_bodies(tmp_path, case):
    body, delimiter, width = case
    from cecli.io.base import ReadSettings
    from cecli.io.sources import open_input

    header = delimiter.join(f"c{i}" for i in range(width))
    path = tmp_path / "d.csv"
    path.write_bytes(f"{header}\n{body}".encode())
    opened = open_input(str(path), ReadSettings(delimiter=delimiter))
    try:
        parsed = opened._plain_numbers()
    finally:
        opened.close()
    if not _plain_body_spec(body, delimiter, width):
        assert parsed is None
    else:
        cells = [cell for line in body.splitlines() for cell in line.split(delimiter)]
        assert parsed is not None and parsed.tolist() == np.array([float(c) for c in cells]).reshape(-1, width).tolist()
