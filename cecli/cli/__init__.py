"""The command line (the only package that imports typer; nothing imports it but ``python -m cecli``).

:mod:`~cecli.cli.app` (the commands, generated from the loss registry, and :func:`main`),
:mod:`~cecli.cli.compare` (``cecli compare``: its parameters and commands), :mod:`~cecli.cli.params`
(the option declarations), :mod:`~cecli.cli.values` (parsed values into the library's arguments),
:mod:`~cecli.cli.group` (Click and Typer plumbing), :mod:`~cecli.cli.report` (the one error map) and
:mod:`~cecli.cli.process` (process settings, each with its measured reason).
"""

from .app import app, main

__all__ = ["app", "main"]
