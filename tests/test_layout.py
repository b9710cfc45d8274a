"""The layout's rules that a test can keep: every package ships, and only cecli/cli imports typer."""

import ast
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT_ROOT / "cecli"


def _imported(path: Path) -> set[str]:
    """The top-level names of the modules that `path` imports, anywhere in it (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_is_listed_for_the_wheel():
    listed = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = {".".join(init.parent.relative_to(PROJECT_ROOT).parts) for init in SOURCE.rglob("__init__.py")}
    assert packages == set(listed["packages"])


def test_only_the_cli_package_imports_typer():
    importers = {str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py") if {"typer", "click"} & _imported(path)}
    assert importers == {"cli/app.py", "cli/compare.py", "cli/group.py", "cli/params.py", "cli/report.py"}
