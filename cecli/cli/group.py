"""Click and Typer plumbing: the plain help layout, the group that reports every outcome through
:func:`~cecli.cli.report._report`, and option conversion without pydantic (:class:`_Convert`)."""

import os
import sys
from collections.abc import MutableMapping
from enum import StrEnum

import typer
from typer.core import TyperCommand, TyperGroup

from cecli.errors import ExitCode

from .report import _report, _say


class _Formatter(typer.Context.formatter_class):
    """Click's help formatter, wrapping only at spaces: Click's breaks after hyphens, which cut
    ``--per-class`` in two at a line end. Words longer than a line stay whole."""

    @staticmethod
    def _wrap(text: str, width: int) -> list[str]:
        import textwrap

        lines = []
        for paragraph in text.split("\n\n"):
            if paragraph.startswith("\b\n"):  # Click's mark for a paragraph kept as written
                lines += paragraph[2:].splitlines()
            else:
                words = " ".join(paragraph.split())
                lines += textwrap.wrap(words, max(width, 10), break_on_hyphens=False, break_long_words=False)
            lines.append("")
        return lines[:-1]

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        for line in self._wrap(text, self.width - self.current_indent):
            self.write(f"{indent}{line}\n" if line else "\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        first_width = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        indent = " " * self.current_indent
        for first, second in rows:
            self.write(f"{indent}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_width - col_spacing:
                self.write(" " * (first_width - len(first)))
            else:  # a long name has its description on the next line, never cut
                self.write("\n" + " " * (first_width + self.current_indent))
            lines = self._wrap(second, self.width - first_width - self.current_indent) or [""]
            self.write(f"{lines[0]}\n")
            for line in lines[1:]:
                self.write(f"{indent}{' ' * first_width}{line}\n" if line else "\n")


class _Context(typer.Context):
    formatter_class = _Formatter


class _Commands(MutableMapping):
    """The group's commands by name, in registration order, each built from its Typer ``CommandInfo``
    on first use. A one-liner needs only its own command's Click parameters: building all eight
    commands' (about 200 options, each deep-copied and type-checked by Typer) took about 10 ms of
    a 3-row ``cecli bce`` run, building one about 2 ms. ``--help``, a bare ``cecli``, a typo and
    shell completion list every command and so build them all, the same objects as before."""

    def __init__(self, infos: dict, build) -> None:
        self._infos, self._build, self._built = infos, build, {}

    def __getitem__(self, name: str):
        if name not in self._built:
            self._built[name] = self._build(self._infos[name])  # KeyError for an unknown name, as a dict
        return self._built[name]

    def __setitem__(self, name: str, command) -> None:
        self._infos.setdefault(name, None)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._infos[name]
        self._built.pop(name, None)

    def __iter__(self):
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


class _Group(TyperGroup):
    """Runs the app without Click's standalone handling, so that :func:`_report` maps every outcome.

    That covers what happens outside a command too: usage errors, ``--version`` and ``--help``
    (whose output can meet a closed pipe or a full disk), and the final flush of stdout.
    """

    def parse_args(self, ctx, args):
        if not args and not ctx.resilient_parsing:  # a bare `cecli`: a usage error like any other, on stderr
            commands = ", ".join(self.list_commands(ctx))
            _say("error", f"missing command, one of: {commands} (see 'cecli --help')")
            raise typer.Exit(ExitCode.USAGE)
        _convert_plainly(self.get_params(ctx))  # --version, --help
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            try:
                code = super().main(args, prog_name or "cecli", complete_var, standalone_mode=False, **extra)
            except SystemExit as exit_:  # a command's outcome, already reported by _guarded
                code = exit_.code
            else:
                if code == ExitCode.INTERRUPTED:  # Typer's own mapping of Ctrl-C outside a command, unreported
                    _say("error", "interrupted")
            sys.stdout.flush()  # the last buffered output can still fail: a closed pipe, a full disk
        except BaseException as failure:
            code = _report(failure)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)

    context_class = _Context  # the app's own help, as the commands'

    def _main_shell_completion(self, *args, **kwargs) -> None:
        """Shell completion for bash, zsh and fish (README, "Options") when ``_CECLI_COMPLETE`` is set.

        Typer registers its shells only along with ``--install-completion``, which cecli leaves
        out; without them it answered "Shell bash not supported". Both Typer's order
        (``source_bash``) and Click's (``bash_source``) are understood.
        """
        value = os.environ.get("_CECLI_COMPLETE")
        if value:
            from typer._completion_classes import completion_init

            completion_init()
            shell, _, action = value.partition("_")
            if shell in ("bash", "zsh", "fish") and action in ("source", "complete"):  # Click's order, bash_source
                os.environ["_CECLI_COMPLETE"] = f"{action}_{shell}"
        super()._main_shell_completion(*args, **kwargs)


# Click's plain help, not rich's: rich boxes give the descriptions a 21-character column at
# 80 columns and cut long flag names at 60; Click's formatter never cuts a name (a long one
# puts its description on the next line), caps the width at 80, prints text literally
# (``[dask]``) and needs no rich import.
_EXIT_CODES = (
    "Exit codes: 0 ok; 1 a --fail-above or --fail-below gate failed (only then); 2 usage error;"
    " 3 bad or unreadable input, or output that cannot be written; 4 internal error (a bug);"
    " 130 interrupted; 141 stdout closed early; 143 terminated."
)


def _app(*, epilog: str, help: str) -> typer.Typer:
    """A Typer app run by :class:`_Group`: no completion commands of Typer's, plain help text, ``-h``, no
    pretty tracebacks (every outcome is one line from :func:`_report`)."""
    return typer.Typer(
        cls=_Group,
        add_completion=False,
        rich_markup_mode=None,
        epilog=epilog,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        help=help,
    )


class _Help(TyperCommand):
    """A command whose help lists its options under their panels (Input, Loss, Output) in Click's plain layout."""

    context_class = _Context

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list] = {"Arguments": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                panel = "Arguments" if param.param_type_name == "argument" else param.rich_help_panel or "Options"
                sections.setdefault(panel, []).append(record)
        for panel, records in sections.items():
            if records:
                with formatter.section(panel):
                    # Names up to 30 characters share a line with their description; below 80
                    # columns a third of the width, so that descriptions keep room to read.
                    formatter.write_dl(records, col_max=30 if formatter.width >= 78 else formatter.width // 3)


class _Convert:
    """Converts one parameter's command-line text as Click does, with Click's messages.

    Typer 0.29 converts every value through a pydantic ``TypeAdapter`` that it builds on first
    use: importing pydantic and building an adapter per option costs about 55 ms a run, a third
    of a one-liner's time. cecli's parameters are str, int (with an optional range), float,
    enum and flag values, which need no pydantic, so :class:`_Command` hands them to this class
    instead; the messages are Click's (what Typer 0.28, which converts with Click, prints), so
    an error reads the same under either Typer.
    """

    def __init__(self, kind: type, low: float | None, high: float | None) -> None:
        self.kind, self.low, self.high = kind, low, high

    @classmethod
    def of(cls, param) -> "_Convert | None":
        """The converter for ``param``, or None to leave a type cecli does not use to Typer."""
        described = getattr(param, "type_descriptor", None)
        if described is None:
            return None
        kind = described.annotation
        if getattr(kind, "__origin__", None) is list and kind.__args__ == (str,):
            kind = str
        if not (kind in (str, int, float, bool) or (isinstance(kind, type) and issubclass(kind, StrEnum))):
            return None
        return cls(kind, described.parameter_info.min, described.parameter_info.max)

    def coerce(self, value, param, ctx):  # the signature Typer 0.29 calls
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        if isinstance(value, list | tuple):
            return [self.one(item, param, ctx) for item in value]
        return self.one(value, param, ctx)

    def one(self, value, param, ctx):
        kind = self.kind
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        if issubclass(kind, StrEnum):
            for choice in kind:
                if value == choice.value:
                    return choice
            choices = ", ".join(repr(choice.value) for choice in kind)
            raise typer.BadParameter(f"{value!r} is not one of {choices}.", ctx=ctx, param=param)
        if kind in (str, bool):  # text options, and --header/--no-header, which Click already made a bool
            return value
        ranged = self.low is not None or self.high is not None
        try:
            number = kind(value)
        except (TypeError, ValueError):
            name = kind.__name__ + (" range" if ranged else "")
            raise typer.BadParameter(f"{value!r} is not a valid {name}.", ctx=ctx, param=param) from None
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            if self.low is None:
                bounds = f"x<={self.high}"
            elif self.high is None:
                bounds = f"x>={self.low}"
            else:
                bounds = f"{self.low}<=x<={self.high}"
            raise typer.BadParameter(f"{number} is not in the range {bounds}.", ctx=ctx, param=param)
        return number


class _Command(_Help):
    """A command whose parameters are converted by :class:`_Convert` where Typer (0.29+) would use pydantic.

    Typer 0.29 asks each parameter's ``get_runtime_param()`` for its converter; Typer 0.28 has
    no such hook and converts with Click, which is as fast, so this class changes nothing there.
    """

    def parse_args(self, ctx, args):
        _convert_plainly(self.get_params(ctx))
        return super().parse_args(ctx, args)


def _convert_plainly(params) -> None:
    """Give each parameter a :class:`_Convert` through Typer 0.29's ``get_runtime_param`` hook."""
    for param in params:
        convert = _Convert.of(param) if hasattr(param, "get_runtime_param") else None
        if convert is not None:
            param.get_runtime_param = lambda convert=convert: convert
