"""Jinja rendering of alert messages: filters, defaults, overrides, sandbox and escaping."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from omealert.notify import filters
from omealert.notify.context import AlertView, template_context
from omealert.notify.escape import escape
from omealert.notify.render import Message, render_alert_fields, render_message
from omealert.notify.sandbox import TemplateProblem, check_template, render_text

NOW = 1_767_225_900.0  # 2026-01-01 00:05:00 UTC
SINCE = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def alert(
    target: str = "origin-1/default/app/stream1",
    *,
    status: str = "firing",
    severity: str = "critical",
    value: float | str | bool | None = 612.0,
    summary: str = "",
    description: str = "",
    since: float | None = SINCE,
    resolved_at: float | None = None,
    rule: str = "too-many-publishers",
    unit: str | None = None,
) -> AlertView:
    server, _, rest = target.partition("/")
    labels = {"server": server}
    for name, part in zip(("vhost", "app", "stream"), rest.split("/", 2), strict=False):
        if part:
            labels[name] = part
    return AlertView(
        rule=rule,
        severity=severity,
        status=status,
        value=value,
        target=target,
        labels=labels,
        since=since,
        fired_at=since + 9 if since is not None else None,
        resolved_at=resolved_at,
        summary=summary,
        description=description,
        sample={"publishers": {"connections": {"webrtc": 612}}, "bitrate": 2_500_000},
        unit=unit,
    )


def one(fmt: str = "markdown", **kw: Any) -> Message:
    return render_message([alert(**kw)], reason="first", now=NOW, fmt=fmt)


# --------------------------------------------------------------------------- filters


class TestFilters:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            # Prometheus template_test.go: humanize over float64, int64 and strings.
            (0.0, "0"),
            (1.0, "1"),
            (1234567.0, "1.235M"),
            (0.12, "120m"),
            (-1, "-1"),
            (9223372036854775807, "9.223E"),
            ("1234567.0", "1.235M"),
            (".12", "120m"),
            (math.inf, "+Inf"),
            (-math.inf, "-Inf"),
            (math.nan, "NaN"),
            # the brief's examples
            (1234.5, "1.234k"),
            (2_500_000, "2.5M"),
            (0.012, "12m"),
        ],
    )
    def test_humanize_matches_prometheus(self, value: Any, expected: str) -> None:
        """humanize prints SI prefixes with %.4g exactly as Prometheus' documented cases."""
        assert filters.humanize(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0.0, "0"),
            (1.0, "1"),
            (1048576.0, "1Mi"),
            (0.12, "0.12"),
            (-1, "-1"),
            (1234567, "1.177Mi"),
            (9223372036854775807, "8Ei"),
            ("1048576.0", "1Mi"),
            (1024, "1ki"),
            (1536, "1.5ki"),
            (1.5 * 1024**2, "1.5Mi"),
            (math.inf, "+Inf"),
        ],
    )
    def test_humanize1024_matches_prometheus(self, value: Any, expected: str) -> None:
        """humanize1024 uses base 1024, Prometheus' ``ki`` spelling, and leaves |v| <= 1 alone."""
        assert filters.humanize1024(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (-0.22222, "-22.22%"),
            (0.0, "0%"),
            (0.1234567, "12.35%"),
            (1.23456, "123.5%"),
            (1234567, "1.235e+08%"),
            ("0.1234567", "12.35%"),
            (0.256, "25.6%"),
        ],
    )
    def test_percentage_matches_prometheus(self, value: Any, expected: str) -> None:
        """percentage is Prometheus' humanizePercentage (v*100 with %.4g)."""
        assert filters.percentage(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, "0s"),
            (1, "1s"),
            (60, "1m 0s"),
            (3600, "1h 0m 0s"),
            (86400, "1d 0h 0m 0s"),
            (86400 + 3600, "1d 1h 0m 0s"),
            (-(86400 * 2 + 3600 * 3 + 60 * 4 + 5), "-2d 3h 4m 5s"),
            (899.99, "14m 59s"),
            (0.1, "100ms"),
            (0.0001, "100us"),
            (0.12345, "123.5ms"),
            (60.5, "1m 0s"),
            (1.2345, "1.234s"),
            (12.345, "12.35s"),
            (1234567, "14d 6h 56m 7s"),
            ("3600", "1h 0m 0s"),
            (3723, "1h 2m 3s"),
            (math.inf, "+Inf"),
            (math.nan, "NaN"),
        ],
    )
    def test_duration_matches_prometheus(self, value: Any, expected: str) -> None:
        """duration is Prometheus' humanizeDuration on its documented inputs."""
        assert filters.duration(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, "1970-01-01 00:00:00 UTC"),
            (-1, "1969-12-31 23:59:59 UTC"),
            (1234567, "1970-01-15 06:56:07 UTC"),
            (1435065584.128, "2015-06-23 13:19:44 UTC"),
            ("1435065584.128", "2015-06-23 13:19:44 UTC"),
            (1_767_225_609, "2026-01-01 00:00:09 UTC"),
            (datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC), "2026-01-01 00:00:09 UTC"),
            (
                datetime(2026, 1, 1, 2, 0, 9, tzinfo=timezone(timedelta(hours=2))),
                "2026-01-01 00:00:09 UTC",
            ),
            (datetime(2026, 1, 1, 0, 0, 9), "2026-01-01 00:00:09 UTC"),
            (math.nan, "NaN"),
        ],
    )
    def test_timestamp(self, value: Any, expected: str) -> None:
        """timestamp prints UTC wall time for epochs and datetimes (naive ones count as UTC)."""
        assert filters.timestamp(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(950, "950 B"), (1500, "1.5 kB"), (1_500_000, "1.5 MB"), (1_234_567_890, "1.235 GB")],
    )
    def test_bytes_decimal(self, value: float, expected: str) -> None:
        """bytes scales by 1000 with SI unit names."""
        assert filters.bytes_(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (950, "950 bps"),
            (800_000, "800 kbps"),
            (2_500_000, "2.5 Mbps"),
            (3_000_000_000, "3 Gbps"),
            (0, "0 bps"),
        ],
    )
    def test_bitrate(self, value: float, expected: str) -> None:
        """bitrate prints bits per second with k/M/G prefixes."""
        assert filters.bitrate(value) == expected

    @pytest.mark.parametrize(
        "name", ["humanize", "humanize1024", "percentage", "duration", "bytes", "bitrate"]
    )
    def test_non_numbers_pass_through(self, name: str) -> None:
        """A filter given text that is not a number returns it unchanged instead of failing."""
        assert render_text(f"{{{{ 'n/a' | {name} }}}}", {}) == "n/a"

    def test_filters_work_inside_templates(self) -> None:
        """Every filter is registered under its documented name."""
        src = (
            "{{ 3723 | duration }}|{{ 1234567 | humanize }}|{{ 1048576 | humanize1024 }}|"
            "{{ 2500000 | bitrate }}|{{ 1500000 | bytes }}|{{ 0.256 | percentage }}|"
            "{{ 1767225609 | timestamp }}"
        )
        assert render_text(src, {}) == (
            "1h 2m 3s|1.235M|1Mi|2.5 Mbps|1.5 MB|25.6%|2026-01-01 00:00:09 UTC"
        )


# --------------------------------------------------------------------------- defaults


class TestDefaultTitles:
    def test_single_firing(self) -> None:
        """One firing alert: ``[FIRING] rule on target``."""
        assert one().title == "[FIRING] too-many-publishers on origin-1/default/app/stream1"

    def test_group_of_thirty(self) -> None:
        """A group carries the firing count in the tag and the number of targets."""
        alerts = [alert(f"origin-1/default/app/s{i}") for i in range(30)]
        msg = render_message(alerts, reason="first", now=NOW)
        assert msg.title == "[FIRING:30] too-many-publishers (30 targets)"

    def test_single_resolved(self) -> None:
        """A resolved alert's title starts with the fixed ``[RESOLVED]`` tag."""
        msg = one(status="resolved", resolved_at=NOW)
        assert msg.title == "[RESOLVED] too-many-publishers on origin-1/default/app/stream1"
        assert msg.notify_type == "success"

    def test_group_resolved(self) -> None:
        """A fully resolved group keeps the bare ``[RESOLVED]`` tag, like Alertmanager."""
        alerts = [alert(f"o/d/a/s{i}", status="resolved", resolved_at=NOW) for i in range(30)]
        msg = render_message(alerts, reason="resolved", now=NOW)
        assert msg.title == "[RESOLVED] too-many-publishers (30 targets)"

    def test_mixed_group_says_both_counts(self) -> None:
        """A group with firing and resolved alerts counts both and is still a FIRING message."""
        alerts = [alert(f"o/d/a/f{i}") for i in range(3)] + [
            alert(f"o/d/a/r{i}", status="resolved", resolved_at=NOW) for i in range(2)
        ]
        msg = render_message(alerts, reason="first", now=NOW)
        assert msg.title == "[FIRING:3] too-many-publishers (3 firing, 2 resolved)"
        assert msg.notify_type == "failure"

    @pytest.mark.parametrize(
        ("severity", "notify_type"),
        [("critical", "failure"), ("warning", "warning"), ("info", "info")],
    )
    def test_notify_type_follows_severity(self, severity: str, notify_type: str) -> None:
        """Firing messages take apprise's type from the severity, so colours mean something."""
        assert one(severity=severity).notify_type == notify_type


class TestDefaultBodies:
    def test_single_alert_line(self) -> None:
        """The body names rule, severity, status, summary, value and how long it has fired."""
        msg = one(fmt="text", summary="origin-1/default/app/stream1: webrtc > 500 (value 612)")
        assert msg.body == (
            "Rule too-many-publishers, severity critical\n\n"
            "- FIRING origin-1/default/app/stream1: webrtc > 500 (value 612)"
            " — for 5m 0s, since 2026-01-01 00:00:00 UTC"
        )
        assert msg.format == "text"

    def test_value_is_shown_when_the_summary_lacks_it(self) -> None:
        """A custom summary without the value still gets ``value N`` and the target."""
        msg = one(fmt="text", summary="too many publishers", value=0.5)
        assert "- FIRING origin-1/default/app/stream1: too many publishers — value 0.5," in (
            msg.body
        )

    @pytest.mark.parametrize(
        ("summary", "value", "unit"),
        [
            ("ingest at 300 kbps", 300_000.0, "bits/s"),  # {{ value | bitrate }}
            ("ingest at 300000 bits/s", 300_000.0, "bits/s"),  # {{ value }}
            ("no input for 40s", 40.0, "seconds"),
            ("12 viewers.", 12.0, None),
        ],
    )
    def test_a_summary_that_shows_the_value_is_not_followed_by_it(
        self, summary: str, value: float, unit: str | None
    ) -> None:
        """A custom summary that already shows the value, in its unit or plainly, is not
        followed by ``value ...`` saying it again (issue 21, defect 8)."""
        msg = one(fmt="text", summary=summary, value=value, unit=unit)
        assert f"- FIRING origin-1/default/app/stream1: {summary} — for 5m 0s," in msg.body

    def test_a_number_inside_a_name_is_not_the_value(self) -> None:
        """Digits in the target or inside a word (``origin-1``, ``cam1``, ``1.5``) do not pass
        for a value of 1, so the value is still shown."""
        msg = one(fmt="text", summary="origin-1/default/app/stream1: cam1 at 1.5x", value=1.0)
        assert "- FIRING origin-1/default/app/stream1: cam1 at 1.5x — value 1, for" in msg.body

    def test_group_lists_every_alert(self) -> None:
        """A group of 30 has one bullet per alert, in order."""
        alerts = [alert(f"origin-1/default/app/s{i}") for i in range(30)]
        body = render_message(alerts, reason="first", now=NOW, fmt="markdown").body
        bullets = [line for line in body.splitlines() if line.startswith("- **FIRING**")]
        assert len(bullets) == 30
        assert "origin\\-1" not in body  # "-" inside a name is not escaped needlessly
        assert bullets[0].startswith("- **FIRING** origin-1/default/app/s0: too")

    def test_long_group_is_cut(self) -> None:
        """Very large groups list the first 100 alerts and count the rest."""
        alerts = [alert(f"o/d/a/s{i}") for i in range(130)]
        body = render_message(alerts, reason="first", now=NOW, fmt="text").body
        assert body.count("- FIRING") == 100
        assert body.endswith("- ... and 30 more")

    def test_repeat_is_a_reminder(self) -> None:
        """A repeat notification says it is a reminder and that alerts still fire."""
        alerts = [alert(f"o/d/a/s{i}") for i in range(3)]
        body = render_message(alerts, reason="repeat", now=NOW, fmt="markdown").body
        assert body.startswith("**Reminder:** 3 alerts are still firing.")

    def test_resolved_line(self) -> None:
        """A resolved alert says when it resolved and how long it had been active."""
        body = one(fmt="text", status="resolved", resolved_at=SINCE + 3723).body
        assert "- RESOLVED origin-1/default/app/stream1: " in body
        assert "resolved 2026-01-01 01:02:03 UTC, after 1h 2m 3s" in body

    def test_description_of_single_alert(self) -> None:
        """A single alert's description follows the alert line, keeping its line breaks."""
        body = one(fmt="text", description="Check the encoder.\nThen the uplink.").body
        assert body.endswith("\n\nCheck the encoder.\nThen the uplink.")

    def test_html_body_is_a_list(self) -> None:
        """HTML bodies are paragraphs and a list, not Markdown."""
        body = one(fmt="html").body
        assert "<ul>\n<li><b>FIRING</b> origin-1/default/app/stream1: " in body
        assert body.startswith("<p>Rule too-many-publishers, severity critical</p>")


# --------------------------------------------------------------------------- fields


class TestAlertFields:
    def test_default_summary_uses_condition_text(self) -> None:
        """An empty summary source gives ``target: condition (value v)``."""
        summary, description = render_alert_fields(
            "", "", alert(), NOW, condition_text="webrtc publishers > 500"
        )
        assert summary == "origin-1/default/app/stream1: webrtc publishers > 500 (value 612)"
        assert description == ""

    def test_templates_see_the_alert(self) -> None:
        """Summary and description templates see labels, value, sample, since and duration."""
        summary, description = render_alert_fields(
            "{{ labels.stream }} has {{ value }} publishers",
            "up {{ duration }} since {{ since }}; "
            "{{ sample.bitrate | bitrate }} / {{ sample.publishers.connections.webrtc }}",
            alert(),
            NOW,
        )
        assert summary == "stream1 has 612 publishers"
        assert description == "up 5m 0s since 2026-01-01 00:00:00 UTC; 2.5 Mbps / 612"

    def test_duration_and_since_stay_numbers(self) -> None:
        """``duration`` and ``since`` print humanely but still compare and compute."""
        summary, _ = render_alert_fields(
            "{{ duration > 299 }} {{ (duration / 60) | round | int }} {{ since | int }}",
            "",
            alert(),
            NOW,
        )
        assert summary == "true 5 1767225600"  # booleans print as in YAML

    def test_failed_summary_falls_back_to_default(self) -> None:
        """A summary that fails at render time still gives the default, plus the reason."""
        summary, _ = render_alert_fields(
            "{{ labels.nosuchlabel }}", "", alert(), NOW, condition_text="webrtc > 500"
        )
        assert summary.startswith("origin-1/default/app/stream1: webrtc > 500 (value 612)")
        assert "[summary template failed:" in summary
        assert "nosuchlabel" in summary

    def test_failed_description_says_so(self) -> None:
        """A failing description renders as a line naming the error, not as nothing."""
        _, description = render_alert_fields("", "{{ value | round(foo=1) }}", alert(), NOW)
        assert description.startswith("[description template failed:")


# --------------------------------------------------------------------------- overrides


class TestOverrides:
    def test_title_and_body_override(self) -> None:
        """Overrides see the first alert's fields plus alerts, count, reason and status."""
        alerts = [alert(f"o/d/a/s{i}") for i in range(3)]
        msg = render_message(
            alerts,
            reason="repeat",
            now=NOW,
            fmt="text",
            title_src="{{ status | upper }} {{ count }}x {{ rule }} ({{ reason }})",
            body_src="{% for a in alerts %}{{ a.labels.stream }}={{ a.value }};{% endfor %}"
            " first={{ target }} firing={{ firing_count }} resolved={{ resolved_count }}",
        )
        assert msg.title == "FIRING 3x too-many-publishers (repeat)"
        assert msg.body == "s0=612;s1=612;s2=612; first=o/d/a/s0 firing=3 resolved=0"

    def test_failed_body_override_falls_back(self) -> None:
        """A body template that fails at render time yields the default body and a note."""
        msg = render_message(
            [alert()], reason="first", now=NOW, fmt="text", body_src="{{ labels.nope }}"
        )
        assert msg.body.startswith("Rule too-many-publishers, severity critical")
        assert msg.body.endswith(
            "Template error: body template failed: 'dict object' has no attribute 'nope'"
        )

    def test_failed_title_override_falls_back(self) -> None:
        """A failing title template gives the default title and says so in the body."""
        msg = render_message(
            [alert()], reason="first", now=NOW, fmt="markdown", title_src="{{ 1 / 0 }}"
        )
        assert msg.title == "[FIRING] too-many-publishers on origin-1/default/app/stream1"
        assert "**Template error:** title template failed: division by zero" in msg.body

    def test_body_override_is_escaped_per_format(self) -> None:
        """Values printed by an override are escaped for the channel's format."""
        a = alert("o/d/a/<b>x</b>")
        html = render_message(
            [a], reason="first", now=NOW, fmt="html", body_src="<i>{{ target }}</i>"
        )
        assert html.body == "<i>o/d/a/&lt;b&gt;x&lt;/b&gt;</i>"


# --------------------------------------------------------------------------- load-time checks


class TestCheckTemplate:
    @pytest.mark.parametrize(
        "source",
        [
            "",
            "plain text",
            "{{ target }} {{ value | humanize }} {{ labels.stream }}",
            "{% for a in alerts %}{{ a.target }} {{ loop.index }}{% endfor %}",
            "{% set n = count %}{{ n }} {{ range(3) | list }} {{ now | timestamp }}",
            "{{ sample.video.framerate | default('?') }}",
        ],
    )
    def test_valid_templates_pass(self, source: str) -> None:
        """Templates using only context names, known filters and locals are accepted."""
        check_template(source)

    def test_syntax_error_has_its_line(self) -> None:
        """A syntax error names the line inside the template."""
        with pytest.raises(TemplateProblem, match=r"^line 3: .*"):
            check_template("ok\nstill ok\n{% if value > %}x{% endif %}")

    def test_unknown_variable(self) -> None:
        """A reference to a name outside the context is a load-time error naming it."""
        with pytest.raises(TemplateProblem) as info:
            check_template("{{ target }}\n{{ stream_name }}")
        assert str(info.value).startswith("line 2: unknown variable(s) stream_name; available:")
        assert "labels" in str(info.value)

    def test_unknown_filter(self) -> None:
        """An unknown filter is found at load time, with its line."""
        with pytest.raises(TemplateProblem, match=r"^line 2: No filter named 'humanise'"):
            check_template("x\n{{ value | humanise }}")

    def test_include_is_refused(self) -> None:
        """Templates cannot pull in other templates; there is nothing to load them from."""
        with pytest.raises(TemplateProblem, match="cannot include"):
            check_template("{% include 'other.j2' %}")

    def test_missing_key_is_a_runtime_fallback(self) -> None:
        """Keys of ``labels``/``sample`` cannot be known at load time: they fail softly later."""
        check_template("{{ labels.nosuch }}")
        out = render_text("{{ labels.nosuch }}", {"labels": {}})
        assert out == "[template failed: 'dict object' has no attribute 'nosuch']"

    def test_undefined_variable_at_runtime(self) -> None:
        """StrictUndefined: an undefined name fails the render rather than printing nothing."""
        assert render_text("a{{ missing }}b", {}) == "[template failed: 'missing' is undefined]"


# --------------------------------------------------------------------------- sandbox


class TestSandbox:
    @pytest.mark.parametrize(
        "source",
        [
            "{{ ''.__class__.__mro__ }}",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ cycler.__init__.__globals__ }}",
            "{{ joiner.__init__.__globals__.os }}",
            "{{ self._TemplateReference__context }}",
            "{{ namespace.__init__.__globals__ }}",
            "{{ labels.__class__.__base__.__subclasses__() }}",
            "{{ sample.items.__self__.__class__ }}",
            "{{ '{0.__class__.__mro__}'.format(target) }}",
            "{{ target | attr('__class__') }}",
            "{{ since.__class__.__subclasses__() }}",
        ],
    )
    def test_escapes_are_blocked(self, source: str) -> None:
        """Classic Jinja sandbox escapes fail instead of reaching Python internals."""
        out = render_text(source, template_context([alert()], "first", NOW))
        assert out.startswith("[template failed: ")
        assert "<class" not in out and "function" not in out

    def test_escape_in_body_override_keeps_the_alert(self) -> None:
        """A body override that tries an escape still delivers the default alert text."""
        msg = render_message(
            [alert()], reason="first", now=NOW, fmt="text", body_src="{{ ''.__class__ }}"
        )
        assert "FIRING origin-1/default/app/stream1" in msg.body
        assert "is unsafe" in msg.body and "<class" not in msg.body

    def test_context_is_immutable(self) -> None:
        """Templates cannot mutate the alert data they are given."""
        labels = {"server": "x"}
        out = render_text("{{ labels.update({'server': 'y'}) }}", {"labels": labels})
        assert out.startswith("[template failed:")
        assert labels == {"server": "x"}

    def test_huge_repetition_is_refused(self) -> None:
        """String repetition cannot allocate gigabytes before the output cap."""
        out = render_text("{{ 'x' * 1000000000 }}", {})
        assert out == "[template failed: repetition over 65536 characters in template]"

    def test_huge_power_is_refused(self) -> None:
        """Huge integer powers are refused."""
        assert render_text("{{ 10 ** 100000000 }}", {}).startswith("[template failed:")


# --------------------------------------------------------------------------- escaping


HOSTILE = "o/d/app/<!channel> *b* _i_ [x](http://e) `c` <@U123> @here ~s~ |t| <b>h</b>"


class TestEscaping:
    def test_markdown_escape(self) -> None:
        """Markdown specials in data are backslash-escaped; intraword ``_`` and ``-`` stay."""
        assert escape("stream_1 origin-1 *b* _i_ [x](u) `c` ~s~ a|b \\", "markdown") == (
            "stream_1 origin-1 \\*b\\* \\_i\\_ \\[x\\](u) \\`c\\` \\~s\\~ a\\|b \\\\"
        )

    def test_markdown_line_start(self) -> None:
        """Block markers at the start of a value cannot open a heading, list or quote."""
        assert escape("# h", "markdown") == "\\# h"
        assert escape("- x", "markdown") == "\\- x"
        assert escape("1. x", "markdown") == "1\\. x"
        assert escape("> q", "markdown") == "\\> q"

    def test_newlines_are_folded(self) -> None:
        """A name with a line break cannot start a new line of the message."""
        assert escape("a\n# forged\r\nline", "markdown") == "a # forged line"
        assert escape("a\nb", "text") == "a b"

    def test_html_escape(self) -> None:
        """HTML data is entity-escaped, including quotes."""
        assert escape("<script>\"x\" & 'y'</script>", "html") == (
            "&lt;script&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;/script&gt;"
        )

    @pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
    def test_slack_control_sequences_are_defused(self, fmt: str) -> None:
        """``<!channel>``, ``<!here>``, ``<@U123>`` and ``@here`` never arrive intact."""
        out = escape("<!channel> <!here|here> <@U123> <#C1> @here @everyone", fmt)
        for seq in ("<!channel>", "<!here", "<@U123>", "<#C1>", "@here", "@everyone"):
            assert seq not in out
        assert "\u200b" in out

    @pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
    def test_stream_name_in_whole_message(self, fmt: str) -> None:
        """A hostile stream name is inert in the default title and body of every format."""
        msg = one(fmt=fmt, target=HOSTILE, summary=f"{HOSTILE}: too many")
        for text in (msg.title, msg.body):
            assert "<!channel>" not in text
            assert "<@U123>" not in text
            assert "@here" not in text
        if fmt == "markdown":
            assert "\\*b\\*" in msg.body and "\\[x\\](http://e)" in msg.body
            assert "*b*" not in msg.body.replace("\\*b\\*", "")
        if fmt == "html":
            assert "<b>h</b>" not in msg.body and "&lt;b&gt;h&lt;/b&gt;" in msg.body

    def test_title_is_plain_text(self) -> None:
        """Titles are text in every service: no Markdown escapes, but mentions defused."""
        msg = one(fmt="markdown", target="o/d/a/*x*_y <!here>")
        assert msg.title == "[FIRING] too-many-publishers on o/d/a/*x*_y <\u200b!here>"

    def test_literal_template_text_is_not_escaped(self) -> None:
        """Markup the operator writes in a template passes; only the data is escaped."""
        msg = render_message(
            [alert("o/d/a/*s*")],
            reason="first",
            now=NOW,
            fmt="markdown",
            body_src="**{{ labels.stream }}** is down",
        )
        assert msg.body == "**\\*s\\*** is down"
