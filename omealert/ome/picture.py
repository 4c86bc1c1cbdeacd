"""What a thumbnail shows: mean luma, black or not, and a perceptual hash to compare frames.

OME serves a stream's thumbnail as a small JPEG (320x180, ~9 KB on a real 0.18) or PNG. An
answer is untrusted bytes, so decoding is bounded before any pixel is made: the byte size,
then the pixel count read from the header alone (``Image.open`` decodes nothing yet). A
JPEG is decoded in draft mode at down to 1/8 scale, straight to grey, which is all that
luma and a 9x8 difference hash need. Decoding is CPU work: callers run ``inspect`` in a
thread (``asyncio.to_thread``), never on the event loop.

Black follows broadcast black detection: a pixel is black at luma ``BLACK_LUMA`` or below
(video black is 16, so this leaves room for noise and compression), and a frame is black
when at least ``BLACK_SHARE`` of its pixels are.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

__all__ = [
    "BLACK_LUMA",
    "BLACK_SHARE",
    "FROZEN_DISTANCE",
    "MAX_PICTURE_BYTES",
    "MAX_PICTURE_PIXELS",
    "BadPicture",
    "Picture",
    "distance",
    "inspect",
]

#: the largest thumbnail answer read (a 4K PNG is ~10 MB; OME's are ~9 KB)
MAX_PICTURE_BYTES = 4 * 1024 * 1024
#: the most pixels a thumbnail may declare (a little over 4K UHD); more is a decompression bomb
MAX_PICTURE_PIXELS = 3840 * 2400
#: a pixel at or under this luma (0-255) is black
BLACK_LUMA = 32
#: a frame is black when at least this share of its pixels is black
BLACK_SHARE = 0.98
#: two frames whose 64-bit difference hashes differ in at most this many bits are the same
#: picture (JPEG noise and a blinking cursor stay under it; a cut or motion does not)
FROZEN_DISTANCE = 4


class BadPicture(ValueError):
    """Bytes that are no image omealert will decode; the message says why."""


@dataclass(frozen=True, slots=True)
class Picture:
    """One decoded thumbnail: its size, mean luma, blackness and difference hash."""

    width: int
    height: int
    luma: float
    black: bool
    dhash: int


def inspect(body: bytes) -> Picture:
    """Decode ``body`` (JPEG or PNG) within the byte and pixel limits; ``BadPicture`` if not."""
    if len(body) > MAX_PICTURE_BYTES:
        raise BadPicture(f"{len(body):,} bytes (at most {MAX_PICTURE_BYTES:,} are decoded)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(body), formats=("JPEG", "PNG"))
            width, height = image.size
            if width * height > MAX_PICTURE_PIXELS:
                raise BadPicture(
                    f"{width}x{height} pixels (at most {MAX_PICTURE_PIXELS:,} are decoded)"
                )
            if image.format == "JPEG":
                image.draft("L", (max(1, width // 8), max(1, height // 8)))
            grey = image.convert("L")
    except BadPicture:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadPicture(f"more pixels than the limit ({MAX_PICTURE_PIXELS:,})") from None
    except UnidentifiedImageError:
        raise BadPicture("not a JPEG or PNG image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadPicture(f"the image does not decode: {exc}") from None
    histogram = grey.histogram()
    pixels = sum(histogram) or 1
    luma = sum(level * count for level, count in enumerate(histogram)) / pixels
    dark = sum(histogram[: BLACK_LUMA + 1])
    return Picture(width, height, luma, dark >= BLACK_SHARE * pixels, _dhash(grey))


def _dhash(grey: Image.Image) -> int:
    """A 64-bit difference hash: on a 9x8 shrink, one bit per pixel brighter than its right
    neighbour. Small changes (noise, recompression) flip few bits; a new picture flips many."""
    small = grey.resize((9, 8), Image.Resampling.BILINEAR)
    values = small.tobytes()  # one byte per pixel in mode L
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = values[row * 9 + col], values[row * 9 + col + 1]
            bits = (bits << 1) | (1 if left > right else 0)
    return bits


def distance(a: int, b: int) -> int:
    """How many bits two difference hashes differ in."""
    return (a ^ b).bit_count()
