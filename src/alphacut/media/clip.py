"""Plain data for moving pictures: what a clip is (``ClipInfo``) and one decoded ``Frame``.

Readers fill these in; the frame loop, the writers and the verifier read them. Times are in
seconds (floats) measured from the clip's first frame, so variable frame rates survive as
they are: each frame carries its own start time and duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .limits import DEFAULT_LIMITS, MediaLimits

Kind = Literal["video", "animation"]


@dataclass(frozen=True)
class ColourTags:
    """FFmpeg's colour description of a video stream (the AVCOL_* numbers), carried to the output."""

    primaries: int = 2  # 2 = unspecified
    transfer: int = 2
    matrix: int = 2
    full_range: bool = False

    @property
    def hdr(self) -> str | None:
        """"PQ" or "HLG" for an HDR transfer, else None."""
        return {16: "PQ", 18: "HLG"}.get(self.transfer)


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class ClipInfo:
    """What a clip declares, read before any frame is decoded."""

    kind: Kind
    name: str
    container: str
    codec: str
    #: upright frame size (after the display rotation)
    width: int
    height: int
    #: frames declared by the header; 0 when it does not say (WebM, MPEG-TS)
    declared_frames: int
    #: frames expected: the declared count, or duration × average rate
    expected_frames: int
    duration: float
    #: the average frame rate (frames per second); 0 when unknown
    fps: float
    #: degrees the picture is turned to display it upright (counter-clockwise), 0/90/180/270
    rotation: int = 0
    bit_depth: int = 8
    has_alpha: bool = False
    pix_fmt: str = ""
    colour: ColourTags = field(default_factory=ColourTags)
    audio: AudioInfo | None = None
    interlaced: bool = False
    #: input time (seconds) of the first frame: audio keeps its place relative to it
    start: float = 0.0
    #: animations: the loop count as the file says it (0 = forever; None = no loop
    #: instruction, which GIF players read as "play once")
    loop: int | None = 0

    @property
    def animated(self) -> bool:
        return self.kind == "animation"


@dataclass
class Frame:
    """One decoded frame, upright: ``rgb`` (H, W, 3) uint8, its own ``alpha`` float32 0..1
    (or None), and its time and duration in seconds from the first frame."""

    index: int
    rgb: np.ndarray
    alpha: np.ndarray | None
    time: float
    duration: float


@dataclass(frozen=True)
class ClipSettings:
    """How a clip job writes its file, beyond what ``Options`` and the output's ending say:
    the MOV codec (``--video-codec``: prores, png, qtrle) and the limits it is held to (the
    server's, say, when they are tighter than the defaults). Plain data: it crosses to a worker."""

    video_codec: str | None = None
    limits: MediaLimits = DEFAULT_LIMITS
