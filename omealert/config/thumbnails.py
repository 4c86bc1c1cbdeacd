"""A server's ``thumbnails:`` block as a ``ThumbnailSpec``: the URL and ``match`` checked,
each problem reported at its own key (FILE:LINE:COL)."""

from __future__ import annotations

from collections.abc import Callable

from ..rules import TargetPattern, ThumbnailSpec
from .model import ThumbnailsModel
from .urls import server_url
from .yamlsource import KeyPath

__all__ = ["thumbnail_spec"]


def thumbnail_spec(
    path: KeyPath, model: ThumbnailsModel | None, add: Callable[[KeyPath, str], None]
) -> ThumbnailSpec | None:
    """The spec of ``servers[i].thumbnails`` at ``path``; problems go to ``add``."""
    if model is None:
        return None
    url, problem = server_url(model.url)
    if problem:
        add((*path, "url"), problem.replace("server url", "thumbnails url"))
    patterns: list[TargetPattern] = []
    if model.match is not None:
        if not model.match:
            add((*path, "match"), "match lists no patterns; leave it out for every stream")
        for j, glob in enumerate(model.match):
            segments = tuple(glob.split("/"))
            if len(segments) not in (2, 3) or not all(segments):
                add(
                    (*path, "match", j),
                    f"match '{glob}' must be app/stream or vhost/app/stream, without empty parts",
                )
            else:
                patterns.append(TargetPattern(segments))
    return ThumbnailSpec(
        url=url,
        every_s=model.every,
        max_in_flight=model.max_in_flight,
        patterns=tuple(patterns),
        extension=model.format,
    )
