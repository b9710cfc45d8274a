"""Heavy imports stay lazy (STYLE.md #17): importing the CLI and `--version` load neither pyarrow nor rich.table,
and `--version` does not load NumPy either."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from cecli import __version__


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


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
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout == f"cecli {__version__}\n"
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "cecli.cli" in imported
    assert not [name for name in imported if name.split(".")[0] == "pyarrow"]


def test_a_small_csv_one_liner_loads_no_pyarrow(tmp_path):
    """pyarrow takes about 35 ms to import, pydantic (Typer 0.29) 0.1 s: a small all-numeric CSV needs neither."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.9\n0,0.2\n1,0.6\n")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "bce", str(sample), "--value-only"],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "0.2797765635793423\n")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "cecli.pipeline" in imported
    assert not [name for name in imported if name.split(".")[0] in ("pyarrow", "pydantic")]


@pytest.mark.parametrize("args", [["--value-only"], ["-f", "csv"], ["-f", "json"]])
def test_a_csv_one_liner_loads_neither_dask_nor_rich(tmp_path, args):
    """The Dask engine loads only for ``--engine dask``, rich only for the table, pyarrow only beyond the
    small-CSV path: a one-liner, in every output format but the table, needs none of them."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.5\n")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "bce", str(sample), *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert repr(math.log(2)) in done.stdout  # -ln(0.5), the one row's loss
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
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
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "bce", str(sample), *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    mean = (-math.log(0.9) - math.log(0.8) - math.log(0.6)) / 3
    value = json.loads(done.stdout)["value"] if "json" in args else float(done.stdout)
    assert value == pytest.approx(mean, rel=1e-15)
    return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}


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
