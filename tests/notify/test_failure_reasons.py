"""Every failed delivery says why, in one of six words, through real loopback receivers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.notify.delivery import Deliverer, Outcome
from omealert.notify.failure import (
    FailureReason,
    from_apprise_logs,
    from_http_status,
    from_smtp_code,
)
from omealert.notify.outbox import Outbox
from omealert.notify.render import Message
from omealert.rules import ChannelSpec
from omealert.state.records import OutboxMessage, service_key
from omealert.state.store import StateStore
from tests.receivers import HttpReceiver, SmtpSink, free_port

MSG = Message("[FIRING] stalled", "cam-7 stalled", "text", "warning")
PATH_SECRET = "PATH-SECRET-55aa"


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def send(url: str, timeout: float = 5.0) -> Outcome:
    return asyncio.run(Deliverer(timeout=timeout).send(ChannelSpec("ops", (url,)), 0, MSG))


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "auth"),
        (403, "auth"),
        (429, "rate_limited"),
        (500, "server_error"),
        (503, "server_error"),
        (400, "bad_request"),
        (404, "bad_request"),
    ],
)
def test_a_webhook_answering_an_error_status_is_classified_by_it(
    http: HttpReceiver, status: int, reason: str
) -> None:
    """apprise logs the status it got; the outcome's reason follows from it."""
    http.set_status(status)
    outcome = send(f"json://127.0.0.1:{http.port}/hooks/{PATH_SECRET}")
    assert (outcome.ok, outcome.reason) == (False, reason)
    assert PATH_SECRET not in outcome.error
    assert len(http.requests) == 1


def test_a_webhook_that_is_down_is_refused(http: HttpReceiver) -> None:
    """Nothing listening on the port: the connection is refused, and the reason says so."""
    http.set_down(True)
    outcome = send(f"json://127.0.0.1:{http.port}/hooks/{PATH_SECRET}")
    assert (outcome.ok, outcome.reason) == (False, "refused")


def test_a_webhook_that_does_not_answer_in_time_is_a_timeout(http: HttpReceiver) -> None:
    """A receiver holding its answer past the socket read timeout: a timeout, not refused."""
    http.set_delay(5.0)
    outcome = send(f"json://127.0.0.1:{http.port}/hooks/x?rto=0.5", timeout=3.0)
    http.release()
    assert (outcome.ok, outcome.reason) == (False, "timeout")


def test_the_send_deadline_running_out_is_a_timeout(http: HttpReceiver) -> None:
    """Our own deadline, shorter than the socket timeouts the URL chose, gives a timeout."""
    http.set_delay(5.0)
    outcome = send(f"json://127.0.0.1:{http.port}/hooks/x?rto=4&cto=4", timeout=0.5)
    http.release()
    assert (outcome.ok, outcome.reason) == (False, "timeout")
    assert outcome.error == "timed out after 0.5s"


def test_mail_relays_refusing_recipients_or_down_or_without_auth() -> None:
    """SMTP: 554 on RCPT is bad_request, no relay is refused, a login it cannot take is auth."""
    mail = "?from=alerts@example.com&to=oncall@example.com"
    with SmtpSink() as sink:
        sink.refuse(True)
        rejected = send(f"mailto://127.0.0.1:{sink.port}{mail}")
        sink.refuse(False)
        no_auth = send(f"mailto://user:pw-SECRET-1@127.0.0.1:{sink.port}{mail}")
    down = send(f"mailto://127.0.0.1:{free_port()}{mail}")
    assert rejected.reason == "bad_request"
    assert down.reason == "refused"
    assert no_auth.reason == "auth"
    assert "pw-SECRET-1" not in no_auth.error


def test_an_unusable_url_is_a_bad_request() -> None:
    """A URL apprise cannot build a service from fails every time: bad_request."""
    outcome = send("json://")
    assert (outcome.ok, outcome.reason) == (False, "bad_request")


class TestClassifiers:
    """The mapping itself, for the codes no loopback receiver here produces."""

    def test_http_statuses(self) -> None:
        """407 is auth, 408 a timeout, 3xx and other 4xx bad_request, 5xx server_error."""
        got = {code: from_http_status(code).value for code in (302, 407, 408, 422, 502, 504)}
        assert got == {
            302: "bad_request",
            407: "auth",
            408: "timeout",
            422: "bad_request",
            502: "server_error",
            504: "server_error",
        }

    def test_smtp_codes(self) -> None:
        """535/530 are auth, 4xx the relay's trouble, other 5xx a rejected message."""
        got = {code: from_smtp_code(code).value for code in (535, 530, 421, 451, 550, 552)}
        assert got == {
            535: "auth",
            530: "auth",
            421: "server_error",
            451: "server_error",
            550: "bad_request",
            552: "bad_request",
        }

    def test_apprise_lines(self) -> None:
        """A status in the text wins over the words around it; no detail at all is bad_request."""
        assert from_apprise_logs(["Connection error", "error=503."]) == "server_error"
        assert from_apprise_logs(["Socket Exception: (535, b'5.7.8 bad creds')"]) == "auth"
        assert from_apprise_logs(["Connection unexpectedly closed: timed out"]) == "timeout"
        assert from_apprise_logs(["A Connection error occurred sending"]) == "refused"
        assert from_apprise_logs([]) == FailureReason.BAD_REQUEST


def test_the_outbox_logs_records_and_counts_the_reason(
    tmp_path: Path, http: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 is logged as ``failed (auth)``, written to history and counted by reason; the
    URL's secret path appears in none of them."""
    url = f"json://127.0.0.1:{http.port}/hooks/{PATH_SECRET}"
    channel = ChannelSpec("ops", (url,))
    http.set_status(401)
    clock = FakeClock(1_000_000.0)

    async def go(store: StateStore) -> Outbox:
        outbox = Outbox(
            store=store,
            deliverer=Deliverer(timeout=5),
            channels={"ops": channel},
            clock=clock,
            max_age_s=3600,
        )
        msg = OutboxMessage(
            id=None, channel="ops", url_index=0, created_at=clock.now(),
            next_attempt_at=clock.now(), attempts=0, title=MSG.title, body=MSG.body,
            format="text", notify_type="warning", reason="first", rule="stalled",
            targets=["origin/default/live/cam-7"], service_key=service_key(url),
        )  # fmt: skip
        (msg.id,) = store.save_tick(outbox=[msg])
        outbox.add([msg])
        await outbox.deliver_due()
        return outbox

    with caplog.at_level(logging.WARNING), StateStore(tmp_path / "state.db") as store:
        outbox = asyncio.run(go(store))
        history = store.history(0)
    assert outbox.counters.failed_reasons == {("ops", "auth"): 1}
    (line,) = [r.getMessage() for r in caplog.records if "delivery to ops" in r.getMessage()]
    assert "failed (auth), attempt 1" in line
    (failed,) = [e for e in history if e.kind == "failed"]
    assert "attempt 1 failed (auth): failure:" in failed.detail
    for text in (line, failed.detail):
        assert PATH_SECRET not in text and "/hooks/" not in text
