"""``ome_events`` in the config: the shared Alert key, per-server overrides, located errors."""

from __future__ import annotations

from omealert.cli.watch import event_keys
from tests.config.test_load import errors_of, load

TWO = (
    "servers:\n  - name: origin\n    url: http://127.0.0.1:8081\n"
    "  - name: edge\n    url: http://127.0.0.1:8082\n"
    "    ome_events_secret_key: ${EDGE_KEY}\n"
)


def test_the_shared_key_is_every_servers_unless_one_has_its_own() -> None:
    """``ome_events.secret_key`` applies to each server; ``ome_events_secret_key`` overrides it."""
    s = load(
        TWO + "ome_events:\n  secret_key: ${OME_ALERT_KEY}\n",
        {"OME_ALERT_KEY": "k1", "EDGE_KEY": "k2"},
    )
    assert event_keys(s) == {"origin": b"k1", "edge": b"k2"}
    assert "k1" not in repr(s) and "k2" not in repr(s)


def test_without_ome_events_only_servers_with_their_own_key_are_heard() -> None:
    """No shared key: the origin's events are not heard, the edge's are."""
    assert event_keys(load(TWO, {"EDGE_KEY": "k2"})) == {"edge": b"k2"}
    assert event_keys(load("servers:\n  - name: a\n    url: http://127.0.0.1:1\n")) == {}


def test_an_empty_key_is_a_located_error_that_shows_no_key() -> None:
    """An empty key, unset variable or empty text, is reported once where it is written."""
    text = TWO + "ome_events:\n  secret_key: ${OME_ALERT_KEY:-}\n"
    assert errors_of(text, {"EDGE_KEY": "k2"}) == [
        "t.yaml:8:15: expected text, got nothing (an empty value)"
    ]
    text = TWO.replace("${EDGE_KEY}", '""') + "ome_events:\n  secret_key: k1\n"
    assert errors_of(text) == [
        "t.yaml:6:28: the OME Alert secret key is empty: set it to the <SecretKey> of OME's <Alert>"
    ]


def test_a_misspelt_key_gets_a_suggestion_and_the_value_is_never_shown() -> None:
    """``secret`` for ``secret_key`` is an unknown key with a hint; the value stays hidden."""
    errors = errors_of(TWO + "ome_events:\n  secret: hunter2-key\n", {"EDGE_KEY": "k2"})
    assert any("secret_key" in e for e in errors), errors
    assert not any("hunter2" in e for e in errors)
