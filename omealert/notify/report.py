"""The stream-ended report: one short message saying how a stream went (``stream_report:``).

Plain text in every format (markdown and HTML channels read it as it is): the stream, how
long it was live, peak and average viewers, bytes in and out, reconnects, and the rules
that fired on it. Names come from OME, so they are made printable first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from ..durations import format_duration
from ..engine.alerts import Instance
from ..engine.story import Stories, Story
from ..errors import printable
from ..model import PollResult
from ..rules import ChannelSpec, Settings
from ..state.records import OutboxMessage, channel_services
from .filters import bytes_

REPORT_RULE = "stream-report"


def report_text(story: Story) -> tuple[str, str]:
    """(title, body) of one ended stream's report."""
    key = printable(story.target.key)
    lasted = format_duration(round(story.duration))
    began = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(story.first_seen))
    ended = time.strftime("%H:%M:%SZ", time.gmtime(story.last_seen))
    alerts = ", ".join(printable(a) for a in story.alerts) or "none"
    body = "\n".join(
        [
            f"{key} was live for {lasted} ({began} to {ended}).",
            f"viewers: peak {story.peak_viewers:.0f}, average {story.average_viewers:.0f}",
            f"bytes: {bytes_(story.total_in)} in, {bytes_(story.total_out)} out",
            f"reconnects: {story.reconnects}",
            f"alerts: {alerts}",
        ]
    )
    return f"[ENDED] {key} after {lasted}", body


def report_messages(
    ended: Iterable[Story],
    channels: Sequence[str],
    specs: dict[str, ChannelSpec],
    min_duration_s: float,
    now: float,
) -> list[OutboxMessage]:
    """One message per service of each channel for each stream live at least ``min_duration_s``."""
    out: list[OutboxMessage] = []
    for story in ended:
        if story.duration < min_duration_s:
            continue
        title, body = report_text(story)
        for name in channels:
            spec = specs.get(name)
            if spec is None:
                continue
            for key, index in channel_services(spec.urls).items():
                out.append(
                    OutboxMessage(
                        id=None,
                        channel=name,
                        url_index=index,
                        service_key=key,
                        created_at=now,
                        next_attempt_at=now,
                        attempts=0,
                        title=title,
                        body=body,
                        format="text",
                        notify_type="info",
                        reason="report",
                        rule=REPORT_RULE,
                        targets=[story.target.key],
                    )
                )
    return out


class Reporter:
    """Keeps the stories while ``stream_report`` is configured; says which streams ended."""

    def __init__(self) -> None:
        self.stories: Stories | None = None

    def observe(
        self,
        polls: Sequence[PollResult],
        instances: Iterable[Instance],
        settings: Settings,
        now: float,
    ) -> list[OutboxMessage]:
        page = settings.page
        if not page.report_channels:
            self.stories = None  # a reload turned it off: forget what was kept
            return []
        if self.stories is None:
            self.stories = Stories()
        ended = self.stories.observe(polls, instances)
        return report_messages(
            ended, page.report_channels, settings.channels, page.report_min_duration_s, now
        )
