"""Real deliveries through apprise into loopback receivers, one service at a time."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from omealert import logsetup
from omealert.notify.context import AlertView
from omealert.notify.delivery import Deliverer, Outcome, check_url
from omealert.notify.render import Message, render_message
from omealert.rules import ChannelSpec, MessageFormat
from tests.receivers import HttpReceiver, SmtpSink

# Recognizable secrets: none of them may ever show up in an Outcome or a log line.
PASSWORD = "hunter2-PASSWORD-q7"
PATH_SECRET = "SECRET-PATH-4f1c"
HEADER_SECRET = "HDR-SECRET-9d2e"
QUERY_SECRET = "QUERY-SECRET-77ab"
SLACK_SECRET = "XXXXsecretTOKENc"
SECRETS = (PASSWORD, PATH_SECRET, HEADER_SECRET, QUERY_SECRET, SLACK_SECRET)


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def run(coro: object) -> Outcome:
    return asyncio.run(coro)  # type: ignore[arg-type]


def json_url(port: int) -> str:
    return (
        f"json://alice:{PASSWORD}@127.0.0.1:{port}/hooks/{PATH_SECRET}"
        f"?+X-Token={HEADER_SECRET}&-key={QUERY_SECRET}"
    )


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


MSG = Message(
    title="[FIRING] too-many-publishers on origin-1/default/app/stream1",
    body="origin-1/default/app/stream1: webrtc publishers > 500 (value 612)",
    format="text",
    notify_type="failure",
)


# --------------------------------------------------------------------------- e-mail


class TestEmail:
    def test_plain_text_mail_arrives_exactly(self, smtp: SmtpSink) -> None:
        """A text message reaches the relay with the exact subject, body and envelope."""
        url = f"mailto://127.0.0.1:{smtp.port}?from=alerts@example.com&to=oncall@example.com"
        channel = ChannelSpec("mail", (url,), format=MessageFormat.TEXT)
        message = Message(MSG.title, "line one\nline two é", "text", "failure")

        outcome = run(Deliverer(timeout=10).send(channel, 0, message))

        assert outcome == Outcome(True, "mailto://127.0.0.1", "", outcome.elapsed)
        assert smtp.envelopes == [("alerts@example.com", ["oncall@example.com"])]
        (mail,) = smtp.messages
        assert mail["Subject"] == "[FIRING] too-many-publishers on origin-1/default/app/stream1"
        assert mail["X-Application"] == "omealert"
        assert mail.get_content_type() == "text/plain"
        assert mail.get_content() == "line one\nline two é\n"

    def test_markdown_mail_has_html_and_inert_names(self, smtp: SmtpSink) -> None:
        """A rendered Markdown message becomes HTML mail; a hostile stream name stays text."""
        url = f"mailto://127.0.0.1:{smtp.port}?from=alerts@example.com&to=oncall@example.com"
        channel = ChannelSpec("mail", (url,))
        evil = AlertView(
            rule="down",
            severity="warning",
            status="firing",
            value=0,
            target="o/d/a/**bold** <b>x</b> [l](http://evil)",
            labels={},
            since=0.0,
            fired_at=0.0,
            resolved_at=None,
            summary="",
            description="",
        )
        message = render_message([evil], reason="first", now=60.0, fmt="markdown")

        assert run(Deliverer(timeout=10).send(channel, 0, message)).ok

        (mail,) = smtp.messages
        html_part = mail.get_body(preferencelist=("html",))
        assert html_part is not None
        html = html_part.get_content()
        assert "<strong>FIRING</strong>" in html  # the template's own markup renders
        assert "**bold**" in html  # ...the name's does not
        assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
        assert 'href="http://evil"' not in html

    def test_refusing_relay_is_a_failure(self, smtp: SmtpSink) -> None:
        """A relay answering 554 gives a failed outcome whose reason hides the URL."""
        smtp.refuse(True)
        url = (
            f"mailto://127.0.0.1:{smtp.port}/?from=alerts@example.com&to=oncall@example.com"
            f"&+X-Tag={HEADER_SECRET}"
        )
        outcome = run(Deliverer(timeout=10).send(ChannelSpec("mail", (url,)), 0, MSG))

        assert not outcome.ok
        assert outcome.service == "mailto://127.0.0.1"
        assert outcome.error.startswith("failure: Sending email to ")
        assert smtp.messages == []
        assert_no_secrets(outcome.error, outcome.service)

    def test_login_failure_hides_the_password(self, smtp: SmtpSink) -> None:
        """A password on a relay without AUTH fails, and the password appears nowhere."""
        url = (
            f"mailto://alice:{PASSWORD}@127.0.0.1:{smtp.port}"
            "?from=alerts@example.com&to=oncall@example.com"
        )
        outcome = run(Deliverer(timeout=10).send(ChannelSpec("mail", (url,)), 0, MSG))
        assert not outcome.ok
        assert "Connection error while submitting email" in outcome.error
        assert_no_secrets(outcome.error, outcome.service)


# --------------------------------------------------------------------------- json


class TestJson:
    def test_json_payload(self, http: HttpReceiver) -> None:
        """json:// posts apprise's generic payload with title, message and type."""
        channel = ChannelSpec("hook", (json_url(http.port),))
        outcome = run(Deliverer().send(channel, 0, MSG))

        assert outcome.ok and outcome.error == ""
        assert outcome.service == "json://127.0.0.1"
        ((method, path, headers, _body),) = http.requests
        assert (method, path) == ("POST", f"/hooks/{PATH_SECRET}?key={QUERY_SECRET}")
        assert headers["User-Agent"] == "omealert"
        assert headers["X-Token"] == HEADER_SECRET
        assert http.json_bodies() == [
            {
                "version": "1.0",
                "title": MSG.title,
                "message": MSG.body,
                "attachments": [],
                "type": "failure",
            }
        ]

    def test_http_500_is_a_failure(self, http: HttpReceiver) -> None:
        """A 500 answer is a failed outcome naming the status, with no secret in it."""
        http.set_status(500)
        outcome = run(Deliverer().send(ChannelSpec("hook", (json_url(http.port),)), 0, MSG))
        assert not outcome.ok
        assert "error=500" in outcome.error
        assert_no_secrets(outcome.error, outcome.service)

    def test_refused_connection_is_a_failure(self, http: HttpReceiver) -> None:
        """A closed port is a failed outcome, and the next send works once it listens again."""
        channel = ChannelSpec("hook", (json_url(http.port),))
        deliverer = Deliverer()
        http.set_down(True)
        down = run(deliverer.send(channel, 0, MSG))
        http.set_down(False)
        up = run(deliverer.send(channel, 0, MSG))

        assert not down.ok
        assert (
            down.error
            == "failure: A Connection error occurred sending JSON notification to 127.0.0.1."
        )
        assert up.ok
        assert len(http.requests) == 1
        assert_no_secrets(down.error, down.service)

    def test_the_clis_logging_setup_keeps_the_reason(self, http: HttpReceiver) -> None:
        """Under the logging ``watch`` sets up, a failed delivery still says why (apprise's
        WARNING is what the reason quotes), and no apprise line reaches our log."""
        root, apprise_logger = logging.getLogger(), logging.getLogger("apprise")
        handlers, root_level, apprise_level = root.handlers[:], root.level, apprise_logger.level
        stream = io.StringIO()
        try:
            logsetup.configure("text", "INFO", stream)
            http.set_down(True)
            down = run(Deliverer().send(ChannelSpec("hook", (json_url(http.port),)), 0, MSG))
        finally:
            root.handlers[:] = handlers
            root.setLevel(root_level)
            apprise_logger.setLevel(apprise_level)
        assert down.error.endswith(
            "A Connection error occurred sending JSON notification to 127.0.0.1."
        )
        assert "Connection error" not in stream.getvalue()
        assert_no_secrets(down.error, stream.getvalue())

    def test_nothing_secret_is_logged(self, http: HttpReceiver) -> None:
        """Even at DEBUG, nothing reaching the application's log handlers carries a secret.

        The handler sits on the root logger, as the CLI's logging setup does (pytest's caplog
        also hooks non-propagating loggers, so it would see more than the application does).
        """
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            http.set_status(500)
            deliverer = Deliverer()
            channel = ChannelSpec("hook", (json_url(http.port), f"bogus://x/{PATH_SECRET}"))
            run(deliverer.send(channel, 0, MSG))
            run(deliverer.send(channel, 1, MSG))
            check_url(f"nope://{PASSWORD}@x/{PATH_SECRET}")
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        assert_no_secrets(stream.getvalue())
        assert len(http.requests) == 1  # the send really happened while we listened

    def test_urls_are_rebuilt_when_they_change(self) -> None:
        """A channel whose URLs changed is rebuilt; unchanged URLs keep their services."""
        deliverer = Deliverer()
        with HttpReceiver() as first, HttpReceiver() as second:
            old = ChannelSpec("hook", (f"json://127.0.0.1:{first.port}/a",))
            new = ChannelSpec("hook", (f"json://127.0.0.1:{second.port}/b",))
            assert run(deliverer.send(old, 0, MSG)).ok
            assert run(deliverer.send(new, 0, MSG)).ok
            assert [r[1] for r in first.requests] == ["/a"]
            assert [r[1] for r in second.requests] == ["/b"]

    def test_bad_index_and_bad_url_are_outcomes(self) -> None:
        """A URL that cannot be built, or a missing index, is a failed outcome, not an exception."""
        deliverer = Deliverer()
        channel = ChannelSpec("hook", (f"slack://xoxq-{SLACK_SECRET}/#ops",))
        bad = run(deliverer.send(channel, 0, MSG))
        missing = run(deliverer.send(channel, 3, MSG))
        assert not bad.ok and bad.error.startswith("invalid URL: An invalid Slack OAuth")
        assert bad.service == "slack://"
        assert (missing.ok, missing.error) == (False, "no such URL")
        assert_no_secrets(bad.error, bad.service)


# --------------------------------------------------------------------------- slack


class TestSlack:
    def test_slack_webhook_payload(self, http: HttpReceiver) -> None:
        """A Slack webhook, re-pointed to loopback, receives Slack's real payload shape."""
        http.reply_body = b"ok"
        channel = ChannelSpec("slack", (f"slack://T000/B000/{SLACK_SECRET}/#alerts",))
        alert = AlertView(
            rule="too-many-publishers",
            severity="critical",
            status="firing",
            value=612,
            target="origin-1/default/app/<!channel> *x*",
            labels={},
            since=0.0,
            fired_at=0.0,
            resolved_at=None,
            summary="",
            description="",
        )
        message = render_message([alert], reason="first", now=300.0, fmt="markdown")
        deliverer = Deliverer()
        deliverer.prepare(channel)
        deliverer.override_endpoint("slack", 0, "webhook_url", f"{http.url}/services")

        outcome = run(deliverer.send(channel, 0, message))

        assert outcome.ok and outcome.service == "slack://"
        ((method, path, headers, raw),) = http.requests
        assert (method, path) == ("POST", f"/services/T000/B000/{SLACK_SECRET}")
        assert headers["Content-Type"].startswith("application/json")
        payload = json.loads(raw)
        assert payload["mrkdwn"] is True
        assert payload["channel"] == "#alerts"
        (attachment,) = payload["attachments"]
        assert attachment["color"] == "#A32037"  # apprise's colour for "failure"
        assert attachment["footer"] == "omealert"
        assert attachment["title"].startswith("[FIRING] too-many-publishers on origin-1/")
        assert attachment["text"].startswith(
            "Rule too-many-publishers, severity critical\n\n- *FIRING* origin-1/default/app/"
        )
        # The hostile name pings nobody and formats nothing.
        assert b"<!channel>" not in raw and "<!channel>" not in attachment["text"]
        assert "&lt;" in attachment["text"] and "\\*x\\*" in attachment["text"]

    def test_slack_refused_is_a_failure_without_tokens(self, http: HttpReceiver) -> None:
        """A Slack endpoint that answers something else than ``ok`` fails; no token leaks."""
        http.reply_body = b"invalid_token"
        http.set_status(403)
        channel = ChannelSpec("slack", (f"slack://T000/B000/{SLACK_SECRET}/#alerts",))
        deliverer = Deliverer()
        deliverer.prepare(channel)
        deliverer.override_endpoint("slack", 0, "webhook_url", f"{http.url}/services")
        outcome = run(deliverer.send(channel, 0, MSG))
        assert not outcome.ok and outcome.error.startswith("failure: ")
        assert_no_secrets(outcome.error, outcome.service)


# --------------------------------------------------------------------------- concurrency


class TestIsolation:
    def test_slow_service_does_not_block_another_channel(self) -> None:
        """While one channel's send hangs, another channel's send completes."""

        async def scenario(slow: HttpReceiver, fast: HttpReceiver) -> tuple[Outcome, Outcome, bool]:
            deliverer = Deliverer(timeout=20)
            slow_ch = ChannelSpec("slow", (f"json://127.0.0.1:{slow.port}/slow",))
            fast_ch = ChannelSpec("fast", (f"json://127.0.0.1:{fast.port}/fast",))
            slow_task = asyncio.create_task(deliverer.send(slow_ch, 0, MSG))
            # The slow receiver now holds the request until released.
            assert await asyncio.to_thread(slow.wait_for, 1, 10)
            fast_outcome = await deliverer.send(fast_ch, 0, MSG)
            slow_still_running = not slow_task.done()
            slow.release()
            return await slow_task, fast_outcome, slow_still_running

        with HttpReceiver() as slow, HttpReceiver() as fast:
            slow.set_delay(60)
            slow_outcome, fast_outcome, overlapped = asyncio.run(scenario(slow, fast))
        assert fast_outcome.ok
        assert overlapped  # the fast send finished while the slow one was still in flight
        assert slow_outcome.ok

    def test_gather_reports_each_outcome(self) -> None:
        """Sends gathered together each get their own outcome; a hung one times out alone."""

        async def scenario(slow: HttpReceiver, fast: HttpReceiver) -> list[Outcome]:
            deliverer = Deliverer(timeout=1.0)
            slow_ch = ChannelSpec("slow", (json_url(slow.port),))
            fast_ch = ChannelSpec("fast", (f"json://127.0.0.1:{fast.port}/fast",))
            return list(
                await asyncio.gather(
                    deliverer.send(slow_ch, 0, MSG), deliverer.send(fast_ch, 0, MSG)
                )
            )

        with HttpReceiver() as slow, HttpReceiver() as fast:
            slow.set_delay(60)
            slow_outcome, fast_outcome = asyncio.run(scenario(slow, fast))
        assert fast_outcome.ok and len(fast.requests) == 1
        assert not slow_outcome.ok and slow_outcome.error
        assert_no_secrets(slow_outcome.error)


# --------------------------------------------------------------------------- validation


class TestCheckUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "json://127.0.0.1:8080/hook",
            "mailto://127.0.0.1:2525?from=alerts@example.com&to=oncall@example.com",
            "slack://T000/B000/XXXX/#alerts",
            "mailtos://user:pass@smtp.example.com:465?mode=ssl&from=a@example.com&to=b@example.com",
        ],
    )
    def test_good_urls(self, url: str) -> None:
        """Well-formed service URLs pass without anything being contacted."""
        assert check_url(url) is None

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            (f"bogus://host/{PATH_SECRET}", "unknown service scheme 'bogus'"),
            ("json://", "incomplete or malformed json:// URL"),
            ("not a url", "not a URL (expected scheme://...)"),
            (
                f"slack://xoxq-{SLACK_SECRET}/#ops",
                "An invalid Slack OAuth Access Token (***) was specified.",
            ),
            (
                f"mailtos://u:{PASSWORD}@127.0.0.1?mode=tls&from=a@example.com",
                "The secure mode specified (tls) is invalid.",
            ),
        ],
    )
    def test_bad_urls(self, url: str, reason: str) -> None:
        """Bad URLs give a reason that names the problem but not the URL or its secrets."""
        got = check_url(url)
        assert got == reason
        assert_no_secrets(got)

    def test_version_does_not_import_apprise(self) -> None:
        """Importing render and delivery does not load apprise; only sending or checking does."""
        code = (
            "import sys, omealert.notify.delivery, omealert.notify.render;"
            "print('apprise' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"
