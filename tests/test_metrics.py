"""What ``/metrics`` holds: the documented names, labels and types, written by prometheus_client.

The text is read back with the library's own parser, so a line it would not accept fails
here, and the families are compared by name, type, help and samples.
"""

from __future__ import annotations

import dataclasses

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from omealert.engine.alerts import Instance
from omealert.errors import SourceErrorKind
from omealert.metrics import DURATION_BUCKETS, FAILURE_REASONS, Metrics
from omealert.model import AlertState, Target
from omealert.notify.failure import FailureReason
from tests.helpers import poll

Families = dict[str, tuple[str, str, list[Sample]]]


def families(metrics: Metrics) -> Families:
    """{family name: (type, help, samples)} as a scraper would read them."""
    text = metrics.render().decode()
    return {
        f.name: (f.type, f.documentation, f.samples) for f in text_string_to_metric_families(text)
    }


def values(fams: Families, family: str, sample: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of the samples named ``sample`` in ``family``."""
    return {tuple(sorted(s.labels.items())): s.value for s in fams[family][2] if s.name == sample}


def instance(state: AlertState, n: int) -> Instance:
    return Instance("r", Target("origin", "default", "live", f"cam{n}"), {}, f"id{n}", state)


def observed() -> Metrics:
    """Two ticks: one good poll with a failed target, one failed poll of the whole server."""
    m = Metrics()
    m.channels = ("hook", "mail")
    good = dataclasses.replace(
        poll(0.0, {"default/live/cam1": {}}, target_errors=("default/live/cam2",)),
        requests=3,
        duration=0.04,
    )
    bad = dataclasses.replace(poll(1.0, error=SourceErrorKind.TIMEOUT), requests=1, duration=2.0)
    m.observe_tick([good], 0.05, [instance(AlertState.FIRING, 1), instance(AlertState.PENDING, 2)])
    m.observe_tick([bad], 3.0, [instance(AlertState.FIRING, 1)])
    m.slow_tick()
    m.state_error()
    m.reloaded(ok=False)
    m.delivery = lambda: ({"hook": 2}, {("mail", "auth"): 1}, {}, {"mail": 3})
    return m


def test_documented_counters_and_gauges_keep_their_names_labels_and_types() -> None:
    """Every documented series is there, typed, with the labels README names and its value."""
    fams = families(observed())
    want = {
        "omealert_polls": "counter",
        "omealert_poll_errors": "counter",
        "omealert_target_errors": "counter",
        "omealert_requests": "counter",
        "omealert_poll_duration_seconds": "gauge",
        "omealert_ticks": "counter",
        "omealert_slow_ticks": "counter",
        "omealert_tick_duration_seconds": "gauge",
        "omealert_alerts": "gauge",
        "omealert_notifications_sent": "counter",
        "omealert_notifications_failed": "counter",
        "omealert_notifications_dropped": "counter",
        "omealert_notifications_deferred": "counter",
        "omealert_state_errors": "counter",
        "omealert_config_last_reload_successful": "gauge",
        "omealert_config_reloads": "counter",
        "omealert_poll_seconds": "histogram",
        "omealert_tick_seconds": "histogram",
    }
    assert {name: fams[name][0] for name in want} == want
    assert fams["omealert_polls"][1] == "Polls per OME server."
    origin = (("server", "origin"),)
    assert values(fams, "omealert_polls", "omealert_polls_total") == {origin: 2}
    assert values(fams, "omealert_requests", "omealert_requests_total") == {origin: 4}
    assert values(fams, "omealert_target_errors", "omealert_target_errors_total") == {origin: 1}
    assert values(fams, "omealert_poll_errors", "omealert_poll_errors_total") == {
        (("kind", "timeout"), ("server", "origin")): 1
    }
    last_poll = "omealert_poll_duration_seconds"
    assert values(fams, last_poll, last_poll) == {origin: 2.0}
    assert values(fams, "omealert_ticks", "omealert_ticks_total") == {(): 2}
    assert values(fams, "omealert_slow_ticks", "omealert_slow_ticks_total") == {(): 1}
    last_tick = "omealert_tick_duration_seconds"
    assert values(fams, last_tick, last_tick) == {(): 3.0}
    alerts = values(fams, "omealert_alerts", "omealert_alerts")
    assert alerts == {
        (("state", s.value),): (1 if s is AlertState.FIRING else 0) for s in AlertState
    }
    assert values(fams, "omealert_state_errors", "omealert_state_errors_total") == {(): 1}
    reloads = values(fams, "omealert_config_reloads", "omealert_config_reloads_total")
    assert reloads == {(("result", "failure"),): 1, (("result", "success"),): 0}
    ok = "omealert_config_last_reload_successful"
    assert values(fams, ok, ok) == {(): 0}


def test_every_configured_channel_has_delivery_counters_from_zero() -> None:
    """sent/failed/dropped/deferred exist for each channel before its first send, as the
    outbox counts."""
    fams = families(observed())
    for kind, want in (("sent", {"hook": 2, "mail": 0}), ("dropped", {"hook": 0, "mail": 0}),
                       ("deferred", {"hook": 0, "mail": 3})):  # fmt: skip
        family = f"omealert_notifications_{kind}"
        got = values(fams, family, f"{family}_total")
        assert {dict(k)["channel"]: v for k, v in got.items()} == want


def test_failed_deliveries_are_counted_per_channel_and_reason_from_zero() -> None:
    """Every channel has all six failure reasons at 0 before anything fails, and each failure
    counts under its own reason."""
    fams = families(observed())
    got = values(fams, "omealert_notifications_failed", "omealert_notifications_failed_total")
    counts = {(dict(k)["channel"], dict(k)["reason"]): v for k, v in got.items()}
    assert counts == {
        (channel, reason): 1 if (channel, reason) == ("mail", "auth") else 0
        for channel in ("hook", "mail")
        for reason in FAILURE_REASONS
    }
    assert set(FAILURE_REASONS) == {r.value for r in FailureReason}


def test_poll_and_tick_histograms_have_the_documented_buckets() -> None:
    """Durations land in the fixed buckets (cumulative, +Inf last), with count and sum."""
    fams = families(observed())
    poll_buckets = values(fams, "omealert_poll_seconds", "omealert_poll_seconds_bucket")
    bounds = sorted({float(dict(k)["le"]) for k in poll_buckets})
    assert bounds == [*DURATION_BUCKETS, float("inf")]
    by_le = {dict(k)["le"]: v for k, v in poll_buckets.items()}
    assert by_le["0.025"] == 0 and by_le["0.05"] == 1 and by_le["2.5"] == 2 and by_le["+Inf"] == 2
    assert all(dict(k)["server"] == "origin" for k in poll_buckets)
    origin = (("server", "origin"),)
    assert values(fams, "omealert_poll_seconds", "omealert_poll_seconds_count") == {origin: 2}
    assert values(fams, "omealert_poll_seconds", "omealert_poll_seconds_sum") == {origin: 2.04}
    tick_buckets = values(fams, "omealert_tick_seconds", "omealert_tick_seconds_bucket")
    tick = {dict(k)["le"]: v for k, v in tick_buckets.items()}
    assert tick["0.05"] == 1 and tick["2.5"] == 1 and tick["5.0"] == 2
    assert values(fams, "omealert_tick_seconds", "omealert_tick_seconds_sum") == {(): 3.05}


def test_the_library_writes_help_type_and_created_lines() -> None:
    """HELP and TYPE precede each family; counters and histograms carry a ``_created`` series."""
    text = observed().render().decode()
    assert (
        "# HELP omealert_ticks_total Evaluation ticks.\n# TYPE omealert_ticks_total counter\n"
        in text
    )
    assert "# TYPE omealert_tick_seconds histogram\n" in text
    created = {line.split()[0] for line in text.splitlines() if "_created" in line.split(" ")[0]}
    assert 'omealert_polls_created{server="origin"}' in created
    assert "omealert_ticks_created" in created
    assert "omealert_tick_seconds_created" in created
    assert 'omealert_config_reloads_created{result="success"}' in created
    # process metrics from the library's collector: what a connection flood would exhaust
    fams = families(observed())
    assert fams["process_open_fds"][0] == "gauge" and fams["process_max_fds"][0] == "gauge"


def test_two_watchers_in_one_process_do_not_share_series() -> None:
    """Each Metrics has its own registry: no clash on creation, no count leaking across."""
    a, b = Metrics(), Metrics()
    a.observe_tick([], 0.1, [])
    assert (a.ticks, b.ticks) == (1, 0)
    b.state_error()
    assert (a.state_errors, b.state_errors) == (0, 1)


def test_label_values_are_escaped_by_the_library() -> None:
    """A server name with quotes, a backslash and a newline still parses back to itself."""
    m = Metrics()
    name = 'a"b\\c\nd'
    m.observe_tick([poll(0.0, server=name)], 0.01, [])
    fams = families(m)
    assert values(fams, "omealert_polls", "omealert_polls_total") == {(("server", name),): 1}
