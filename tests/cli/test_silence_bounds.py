"""``silence add --for`` takes only ends a date can hold; nothing is stored for one it refuses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from omealert.cli.main import main
from omealert.state.store import StateStore


@pytest.mark.parametrize("duration", ["9" * 5_000 + "s", "100000000000d", "36501d"])
def test_a_silence_longer_than_a_century_is_refused_and_not_stored(
    tmp_path: Path, duration: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An end past float's range (inf) or a date's is a usage error; the state file stays empty."""
    state = tmp_path / "state.db"
    args = ["silence", "add", "-m", "alertname=x", "--for", duration, "--state", str(state)]
    assert main(args, out=io.StringIO()) == 2
    assert "--for must be at most 100 years" in capsys.readouterr().err
    if state.exists():
        with StateStore(state) as store:
            assert store.list_silences(0.0, include_expired=True) == []


def test_a_silence_of_a_hundred_years_is_taken(tmp_path: Path) -> None:
    """The bound itself is accepted and printed as a date."""
    state = tmp_path / "state.db"
    out = io.StringIO()
    args = ["silence", "add", "-m", "alertname=x", "--for", "36500d", "--state", str(state)]
    assert main(args, out=out) == 0
    assert "until 21" in out.getvalue()
