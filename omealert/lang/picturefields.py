"""The ``picture.*`` fields: what a stream's thumbnail shows (``ome/thumbnails.py``).

Kept apart from ``lang/fields.py``, which builds them into the catalogue: name, type, unit
and the line the README's fields table repeats.
"""

from __future__ import annotations

__all__ = ["PICTURE_FIELDS", "PICTURE_PREFIX"]

PICTURE_PREFIX = "picture."

#: (path, type, unit, doc); type and unit are ``FieldType`` and ``Unit`` values
PICTURE_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("picture.luma", "number", "", "mean luma of the latest thumbnail, 0 (black) to 255 (white)"),
    (
        "picture.black",
        "bool",
        "",
        "at least 98% of the latest thumbnail's pixels have luma 32 or less",
    ),
    (
        "picture.frozen_for",
        "number",
        "seconds",
        "how long the thumbnail has shown the same picture (difference hash within 4 of 64 "
        "bits) while input bytes kept arriving; 0 while they do not (a stall is stale's job)",
    ),
    ("picture.age", "number", "seconds", "how long since the thumbnail's bytes last changed"),
    ("picture.missing", "bool", "", "the thumbnail URL answers 404 while the stream is listed"),
)
