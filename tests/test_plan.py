"""The option-combination rules, reached without Typer through cecli.plan.checked."""

import pytest

from cecli import OptionError
from cecli.plan import checked, delimiter

# (parsed values, output format in effect, the exact message); messages as README "Options" words them.
REFUSED = [
    (
        {"value_only": True, "format": "json"},
        "json",
        "--value-only cannot be combined with -f json (--value-only prints just the reduced number)",
    ),
    (
        {"summary_only": True, "reduction": "none"},
        "json",
        "--summary-only cannot be combined with --reduction none"
        " (--reduction none gives only per-sample values, which --summary-only leaves out)",
    ),
    (
        {"top": 3},
        "csv",
        "--top 3 cannot be combined with -f csv (-f csv prints only per-sample lines;"
        " -f csv is the default when stdout is not a terminal)",
    ),
    (
        {"scheduler": "tcp://h:8786", "engine": "local"},
        "json",
        "--scheduler cannot be combined with --engine local"
        " (a scheduler is for --engine dask; --engine local is the default)",
    ),
    (
        {"header": False, "input_format": "parquet"},
        None,
        "--no-header cannot be combined with --input-format parquet (only CSV has a header row)",
    ),
]


@pytest.mark.parametrize(("values", "fmt", "message"), REFUSED)
def test_combinations_that_cannot_both_apply_are_refused(values, fmt, message):
    with pytest.raises(OptionError) as caught:
        checked(values, fmt)
    assert str(caught.value) == message


def test_values_that_combine_pass_with_the_delimiter_resolved():
    values = {"top": 3, "delimiter": "tab", "format": "table"}
    assert checked(values, "table") == {"top": 3, "delimiter": "\t", "format": "table"}


@pytest.mark.parametrize(("text", "expected"), [(None, None), ("\t", "\t"), ("TAB", "\t"), ("\\t", "\t"), (";", ";")])
def test_delimiter_spellings(text, expected):
    assert delimiter(text) == expected
