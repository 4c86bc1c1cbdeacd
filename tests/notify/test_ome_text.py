"""What OME names reach messages as: a stream name with terminal escapes, CR and NUL is
shown with those characters replaced, in the title, the body and what templates see."""

from __future__ import annotations

from omealert.engine.engine import Engine
from omealert.notify.planner import Planner

from ..helpers import poll, rule, settings

T0 = 1_767_225_600.0
WEBRTC = "publishers.connections.webrtc"
NASTY = "cam\x1b[2J\x1b]0;owned\x07\r\x00one"


def test_control_characters_in_a_stream_name_never_reach_a_message() -> None:
    """A firing alert on a stream named with ESC, BEL, CR and NUL is announced with U+FFFD in
    their place, in the default title and body and in a summary template's ``target``."""
    hi = rule(
        "hi",
        "webrtc publishers > 500",
        channels=("ops",),
        summary="{{ target }} has {{ value }} publishers",
    )
    config = settings(hi, channels={"ops": ["json://127.0.0.1:9/ops"]})
    engine, planner = Engine(config), Planner(config)
    transitions = engine.step([poll(T0, {f"default/app/{NASTY}": {WEBRTC: 600}})], T0)
    messages = planner.plan(engine, transitions, T0, [])
    assert len(messages) == 1
    shown = "owned\ufffd\ufffd\ufffdone"  # the body escapes the brackets for Markdown
    for text in (messages[0].title, messages[0].body):
        assert not any(c in text for c in "\x1b\x07\r\x00")
        assert shown in text
