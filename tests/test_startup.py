"""Heavy imports stay lazy (STYLE.md #17): importing the CLI and `--version` load neither pyarrow nor rich.table,
and `--version` does not load NumPy either."""

from __future__ import annotations

import subprocess
import sys

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


def test_a_csv_one_liner_loads_only_the_csv_part_of_pyarrow(tmp_path):
    """pyarrow.compute, .parquet, .json and .fs cost about 50 ms together; a small CSV needs none (nor pydantic)."""
    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.9\n0,0.2\n1,0.6\n")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "bce", str(sample), "--value-only"],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "0.2797765635793423\n")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "pyarrow.csv" in imported
    assert not imported & {"pyarrow.compute", "pyarrow.parquet", "pyarrow.json", "pyarrow.fs", "pydantic"}
