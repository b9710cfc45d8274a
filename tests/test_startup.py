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
        "from cecli.cli import main\n"
        "sys.argv = ['cecli', '--version']\n"
        "try:\n"
        "    main()\n"
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
