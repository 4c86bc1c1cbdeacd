"""Decoding a thumbnail: luma, the black threshold, the difference hash and the limits."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from omealert.ome.picture import (
    BLACK_LUMA,
    MAX_PICTURE_BYTES,
    BadPicture,
    distance,
    inspect,
)


def encoded(image: Image.Image, kind: str = "JPEG") -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, kind)
    return out.getvalue()


def test_real_thumbnail_of_ome_018_decodes() -> None:
    """The real 0.18 thumbnail (320x180 JPEG) gives its size, a mid luma and is not black."""
    from pathlib import Path

    body = (Path(__file__).parents[1] / "data" / "ome-real-0.18" / "thumb-1.jpg").read_bytes()
    picture = inspect(body)
    assert (picture.width, picture.height) == (320, 180)
    assert 10 < picture.luma < 250 and picture.black is False


@pytest.mark.parametrize(
    ("level", "black"), [(0, True), (BLACK_LUMA - 4, True), (BLACK_LUMA + 12, False)]
)
def test_black_is_luma_under_the_threshold_across_the_frame(level: int, black: bool) -> None:
    """A flat frame is black at luma 32 or under (PNG: no compression shifts the level)."""
    picture = inspect(encoded(Image.new("L", (320, 180), level), "PNG"))
    assert picture.black is black and abs(picture.luma - level) < 1


def test_a_bright_logo_on_black_is_not_black() -> None:
    """More than 2% of bright pixels (a caption, a logo) make a frame not black."""
    image = Image.new("L", (320, 180), 0)
    ImageDraw.Draw(image).rectangle((0, 0, 40, 40), fill=255)  # ~2.9% of the frame
    assert inspect(encoded(image, "PNG")).black is False


def test_the_difference_hash_tells_noise_from_a_new_picture() -> None:
    """Re-encoding at another quality moves the hash little; a moved object moves it a lot."""
    image = Image.linear_gradient("L").resize((320, 180))
    ImageDraw.Draw(image).rectangle((40, 20, 120, 160), fill=255)
    moved = Image.linear_gradient("L").resize((320, 180))
    ImageDraw.Draw(moved).rectangle((200, 20, 280, 160), fill=255)
    a = inspect(encoded(image)).dhash
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=40)
    assert distance(a, inspect(out.getvalue()).dhash) <= 4
    assert distance(a, inspect(encoded(moved)).dhash) > 10


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>There is no stream</html>", "not a JPEG or PNG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "JPEG"),
        (b"\x00" * (MAX_PICTURE_BYTES + 1), "bytes"),
    ],
)
def test_what_is_no_image_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    """Text, a broken JPEG and an oversized body each raise BadPicture saying why."""
    with pytest.raises(BadPicture, match=reason):
        inspect(body)
