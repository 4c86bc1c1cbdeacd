"""``GET /{app}/{stream}/thumb.jpg`` (or ``.png``): thumbnails the simulator draws, on cue.

As a real OME 0.18 answers (``../shared/ome-real-0.18/thumbnails.json``): a 320x180 image,
only ``Content-Type``, ``Content-Length``, ``Server`` and CORS headers, no auth (it is the
publisher port, not the API), and ``404 text/html`` "There is no stream or cannot pull a
stream" for a stream that is not listed. ``set_picture`` picks what a stream shows:

- ``moving`` (the default): a bar that moves on every fetch, a new image each time;
- ``frozen``: the last moving picture again, re-encoded with a little noise, as a frozen
  capture card gives: new bytes, the same picture;
- ``black``: a black frame with a little noise;
- ``missing``: 404 while the stream stays listed.
"""

from __future__ import annotations

import io
import random
import re
from typing import Final

from PIL import Image, ImageDraw

from .reply import _Reply
from .topology import _Topology

_THUMB: Final = re.compile(r"/([^/]+)/([^/]+)/thumb\.(jpg|png)")
_NO_STREAM: Final = b"There is no stream or cannot pull a stream"
_CORS: Final = [
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Allow-Methods", "GET"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Vary", "Origin"),
    ("Access-Control-Allow-Origin", "*"),
]
PICTURE_MODES: Final = frozenset({"moving", "frozen", "black", "missing"})
_SIZE: Final = (320, 180)


class _Pictures(_Topology):
    """``Simulator``'s thumbnails (see ``_SimClock``)."""

    #: (app, stream) -> mode; a stream not named shows ``moving``
    _picture_modes: dict[tuple[str, str], str]
    #: (app, stream) -> how many moving frames it has shown
    _picture_frames: dict[tuple[str, str], int]
    _picture_misses: int

    def set_picture(self, app: str, stream: str, mode: str) -> None:
        """What ``app/stream``'s thumbnail shows from now on: one of ``PICTURE_MODES``."""
        if mode not in PICTURE_MODES:
            raise ValueError(f"unknown picture {mode!r}; use one of {sorted(PICTURE_MODES)}")
        with self._lock:
            self._pictures_state()[0][(str(app), str(stream))] = mode

    def thumbnail_fetches(self) -> int:
        """How many thumbnails were asked for so far."""
        with self._lock:
            return sum(self._pictures_state()[1].values()) + self._picture_misses

    def _pictures_state(self) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], int]]:
        return self._picture_modes, self._picture_frames

    def _thumbnail(self, path: str) -> _Reply | None:
        """The answer to a thumbnail path, or None if ``path`` is not one."""
        match = _THUMB.fullmatch(path)
        if match is None:
            return None
        app, stream, ext = match.groups()
        with self._lock:
            modes, frames = self._pictures_state()
            listed = any(
                stream in a.streams for v in self._vhosts.values() if (a := v.apps.get(app))
            )
            mode = modes.get((app, stream), "moving")
            if not listed or mode == "missing":
                self._picture_misses += 1
                return _Reply(404, raw=_NO_STREAM, content_type="text/html", headers=list(_CORS))
            frame = frames.get((app, stream), 0)
            if mode == "moving":
                frame += 1
            frames[(app, stream)] = frame
        body = _draw(frame, mode, ext)
        kind = "image/jpeg" if ext == "jpg" else "image/png"
        return _Reply(200, raw=body, content_type=kind, headers=list(_CORS))


def _draw(frame: int, mode: str, ext: str) -> bytes:
    """A 320x180 picture: a grey ramp with a white bar whose place follows ``frame``."""
    noise = random.Random()
    if mode == "black":
        image = Image.new("L", _SIZE, 0)
        draw = ImageDraw.Draw(image)
        for _ in range(40):  # a little sensor noise, far under any threshold
            x, y = noise.randrange(_SIZE[0]), noise.randrange(_SIZE[1])
            draw.point((x, y), fill=noise.randrange(4, 12))
    else:
        image = Image.linear_gradient("L").resize(_SIZE).rotate(90, expand=False)
        image = image.resize(_SIZE)
        draw = ImageDraw.Draw(image)
        x = (frame * 97) % (_SIZE[0] - 80)
        draw.rectangle((x, 10, x + 80, 170), fill=255)
        draw.rectangle((_SIZE[0] - 80 - x, 50, _SIZE[0] - x, 130), fill=0)
        if mode == "frozen":  # the same picture, encoded afresh: new bytes
            for _ in range(20):
                xy = (noise.randrange(_SIZE[0]), noise.randrange(_SIZE[1]))
                draw.point(xy, fill=noise.randrange(100, 140))
    out = io.BytesIO()
    rgb = image.convert("RGB")
    if ext == "jpg":
        rgb.save(out, "JPEG", quality=75)
    else:
        rgb.save(out, "PNG")
    return out.getvalue()
