"""``version`` compares as a release number, not as text."""

from __future__ import annotations

import pytest

from omealert.errors import ExprError
from omealert.lang.condition import compile_condition
from omealert.lang.versions import release_key
from omealert.model import Scope


@pytest.mark.parametrize(
    ("when", "version", "holds"),
    [
        ('version < "0.20.5"', "0.18.0", True),
        ('version < "0.20.5"', "0.20.5", False),
        ('version < "0.20.5"', "0.9.0", True),  # as text "0.9.0" > "0.20.5"
        ('version >= "0.19"', "0.19.0", True),
        ('version == "0.18"', "0.18.0", True),
        ('"0.19.0" > version', "0.20.0", False),
        ('version < "0.20.5" and version != "0.18.0"', "0.18.0", False),
    ],
)
def test_release_comparisons(when: str, version: str, holds: bool) -> None:
    """Each part is compared as a number and missing trailing parts count as 0."""
    condition = compile_condition(when, Scope.SERVER)
    assert condition.evaluate({"version": version}, 0.0, None) == (holds, version)


def test_a_version_that_is_not_a_release_is_no_value() -> None:
    """A server printing something else (``(Unknown)``) makes the condition unknown, not false."""
    condition = compile_condition('version < "0.20.5"', Scope.STREAM)
    assert condition.evaluate({"version": "(Unknown)"}, 0.0, None)[0] is None
    assert condition.evaluate({}, 0.0, None)[0] is None


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ('version < "latest"', '"latest" is not a release number'),
        ("version < 5", "cannot compare a release with a number"),
        ('sourceUrl < "0.20.5"', "text can only be compared with '==' or '!='"),
    ],
)
def test_bad_release_comparisons_are_refused(when: str, message: str) -> None:
    """A literal that is not a release, or a number, is an error at load, not a silent false."""
    with pytest.raises(ExprError, match=message):
        compile_condition(when, Scope.STREAM)


def test_release_keys() -> None:
    """Keys pad to four parts, accept a leading v and refuse anything else."""
    assert release_key("0.20.5") == (0, 20, 5, 0)
    assert release_key("v0.18.2.1") == (0, 18, 2, 1)
    assert release_key("0.20") == release_key("0.20.0")
    assert release_key("0.20.0-12-gabc") is None and release_key(20) is None
