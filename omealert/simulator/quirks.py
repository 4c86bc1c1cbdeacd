"""OME 0.18's measurement quirks, off unless asked for (``Simulator.set_quirks``).

What a real OME 0.18.0 printed (``../shared/recordings/real-ome-0.18``, issue 21):

- ``first_second``: a stream's first measurement windows. For its first second stream info
  shows uninitialised ``bitrateLatest`` (-1977517884 video, -572662307 audio), ``bitrateAvg``
  0, ``framerateLatest``/``framerateAvg`` 0.0 and ``keyFrameIntervalLatest`` 0 (until the
  second key frame, 2 s here), and stats show every throughput 0. In the second second,
  ``avgThroughputIn`` is 873841335088853936 and ``lastThroughputIn`` 109230166886106742
  (``_last_total_bytes_in`` was never initialised before 0.19.0), and ``maxThroughputIn``
  keeps that value for the stream's life.
- ``partial_window``: the first window after a stalled encoder resumes holds the few bytes
  since the last measurement spread over the whole gap (26 kbps after 20 s), and the next
  one the catch-up (twice the rate).

Only streams are affected; the app, vhost and server objects were clean.
"""

from __future__ import annotations

from typing import Any, Final

from .reply import _c_float
from .streams import _Stream

#: What ``set_quirks`` understands.
QUIRK_KINDS: Final = frozenset({"first_second", "partial_window"})

GARBAGE_AVG_IN: Final = 873841335088853936
GARBAGE_LAST_IN: Final = 109230166886106742
UNINITIALISED_VIDEO: Final = "-1977517884"
UNINITIALISED_AUDIO: Final = "-572662307"
_WINDOW_S: Final = 1.0
#: the second key frame, after which OME has a ``keyFrameIntervalLatest``
_KEY_FRAMES_S: Final = 2.0


def quirk_stats(body: dict[str, Any], s: _Stream, now: float, quirks: frozenset[str]) -> None:
    """Rewrite a stream's v1 stats ``body`` as OME 0.18 would print it at ``now``."""
    age = now - s.metrics.created
    if "first_second" in quirks:
        if age < _WINDOW_S:
            for key in ("avgThroughputIn", "lastThroughputIn", "maxThroughputIn",
                        "avgThroughputOut", "lastThroughputOut", "maxThroughputOut"):  # fmt: skip
                body[key] = 0
            return
        body["maxThroughputIn"] = GARBAGE_AVG_IN
        if age < 2 * _WINDOW_S:
            body["avgThroughputIn"] = GARBAGE_AVG_IN
            body["lastThroughputIn"] = GARBAGE_LAST_IN
            return
    if "partial_window" in quirks and s.resumed_at is not None and not s.stalled:
        since = now - s.resumed_at
        if since < _WINDOW_S:
            rate = int(s.bitrate / max(s.gap, _WINDOW_S))
        elif since < 2 * _WINDOW_S:
            rate = 2 * s.bitrate
        else:
            return
        body["avgThroughputIn"] = rate
        body["lastThroughputIn"] = rate // 8


def quirk_info(body: dict[str, Any], s: _Stream, now: float, quirks: frozenset[str]) -> None:
    """Rewrite a stream info ``body`` (``_Api._stream_info``) as OME 0.18 would print it."""
    if "first_second" not in quirks:
        return
    age = now - s.metrics.created
    for track in body["input"]["tracks"]:
        video, audio = track.get("video"), track.get("audio")
        if video is not None:
            if age < _KEY_FRAMES_S:
                video["keyFrameIntervalLatest"] = 0
            if age < _WINDOW_S:
                video.update(bitrateLatest=UNINITIALISED_VIDEO, bitrateAvg="0",
                             framerateLatest=_c_float(0.0), framerateAvg=_c_float(0.0),
                             keyFrameIntervalAvg=_c_float(1.0))  # fmt: skip
        if audio is not None and age < _WINDOW_S:
            audio.update(bitrateLatest=UNINITIALISED_AUDIO, bitrateAvg="0")
