"""The config of the page, the health states and the stream-ended report (``PageSpec``).

Apart from ``check`` so the checker stays one pass over the alerting sections; this only
needs the stream report's channels checked, which the checker's ``channel_refs`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..rules import PageSpec
from .parts import Parts
from .yamlsource import KeyPath


def page_spec(parts: Parts, channel_refs: Callable[[KeyPath, Iterable[str]], None]) -> PageSpec:
    """``health``, ``listen_auth`` and ``stream_report`` as one ``PageSpec``."""
    auth = None
    if parts.listen_auth is not None:
        auth = (parts.listen_auth.username, parts.listen_auth.password.get_secret_value())
    report = parts.stream_report
    if report is not None:
        channel_refs(("stream_report", "channels"), report.channels)
    return PageSpec(
        stale_after_s=parts.health.stale_after,
        listen_auth=auth,
        report_channels=tuple(report.channels) if report is not None else (),
        report_min_duration_s=report.min_duration if report is not None else 300.0,
    )
