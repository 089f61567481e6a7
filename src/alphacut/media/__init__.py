"""Moving pictures: animations (GIF, APNG, WebP, AVIF) and video in, frame by frame through
the one stage sequence, out as transparent video, animations or PNG frames — streamed,
verified, delivered atomically. See ``loop`` for the flow and ``outputs`` for the formats."""

from .clip import ClipInfo, Frame
from .limits import DEFAULT_LIMITS, MediaLimits
from .loop import ClipResult, cutouts, first_frame, open_clip, write_clip
from .sniff import clip_kind

__all__ = ["ClipInfo", "ClipResult", "DEFAULT_LIMITS", "Frame", "MediaLimits", "clip_kind", "cutouts",
           "first_frame", "open_clip", "write_clip"]
