"""Moving pictures: animations (GIF, APNG, WebP, AVIF) and video in, frame by frame through
the one stage sequence, out as transparent video, animations or PNG frames — streamed,
verified, delivered atomically. See ``loop`` for the flow and ``outputs`` for the formats.

Names are imported on first use: the format registry imports ``media.formats`` while it
loads, and that must not pull in the pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clip import ClipInfo, Frame
    from .limits import DEFAULT_LIMITS, MediaLimits
    from .loop import ClipResult, cutouts, first_frame, open_clip, write_clip
    from .sniff import clip_kind

_HOMES = {"ClipInfo": "clip", "Frame": "clip", "DEFAULT_LIMITS": "limits", "MediaLimits": "limits",
          "ClipResult": "loop", "cutouts": "loop", "first_frame": "loop", "open_clip": "loop",
          "write_clip": "loop", "clip_kind": "sniff"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'alphacut.media' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
