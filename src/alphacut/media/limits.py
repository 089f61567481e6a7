"""How much moving picture alphacut accepts before decoding it, with documented defaults.

A clip's cost grows with frames × pixels, so the limits bound that product as well as each
frame's size and the frame count. They are checked from the header before any frame is
decoded (declared sizes and counts), and again while frames stream (a header can lie, or say
nothing: WebM rarely declares a frame count), so a clip past a limit is refused before, or
stopped during, its work — never half delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ImageTooLargeError


@dataclass(frozen=True)
class MediaLimits:
    """Refusal limits for one clip or animation (pass your own to ``remove_video``)."""

    #: pixels in one frame: 8K UHD (7680 × 4320 = 33.2 MP) passes, 16K × 16K does not
    max_frame_pixels: int = 36_000_000
    #: longest side of a frame (VP9 and H.264 encoders stop at 16,384)
    max_side: int = 16_384
    #: frames in a video (100,000 frames: 55 minutes at 30 fps)
    max_frames: int = 100_000
    #: frames × pixels of a video: 50 gigapixels, about 24,000 frames of 1080p (13 minutes at
    #: 30 fps; hours of CPU work on the fast tier)
    max_total_pixels: int = 50_000_000_000
    #: frames in an animation (GIF, APNG, animated WebP/AVIF)
    max_animation_frames: int = 5_000
    #: frames × canvas pixels of an animation: 250 megapixels. Pillow's animated writers
    #: (WebP, APNG, GIF) take every frame before they write, so an animated output holds its
    #: frames as RGBA: 1 GB at this limit. (Video outputs stream and are bounded per frame.)
    max_animation_pixels: int = 250_000_000

    def check_frame(self, width: int, height: int, name: str) -> None:
        """Refuse a frame size past the limits, or an empty one."""
        if width <= 0 or height <= 0:
            raise ImageTooLargeError(f"the clip declares an empty frame size {width}x{height}", path=name)
        if max(width, height) > self.max_side:
            raise ImageTooLargeError(
                f"frames of {width}x{height} are over the limit of {self.max_side} pixels on a side", path=name)
        if width * height > self.max_frame_pixels:
            raise ImageTooLargeError(
                f"frames of {width}x{height} ({width * height / 1e6:.1f} MP) are over the limit of "
                f"{self.max_frame_pixels / 1e6:.1f} MP per frame", path=name)

    def check_count(self, frames: int, width: int, height: int, name: str, *, animation: bool,
                    declared: bool = True) -> None:
        """Refuse a frame count (declared, or counted so far) past the limits."""
        most = self.max_animation_frames if animation else self.max_frames
        total = self.max_animation_pixels if animation else self.max_total_pixels
        what = "declares" if declared else "has"
        kind = "animation" if animation else "clip"
        if frames > most:
            raise ImageTooLargeError(f"the {kind} {what} {frames:,} frames, over the limit of {most:,}", path=name)
        if frames * width * height > total:
            raise ImageTooLargeError(
                f"the {kind} {what} {frames:,} frames of {width}x{height}: "
                f"{frames * width * height / 1e9:.2f} gigapixels, over the limit of {total / 1e9:.2f} "
                "(frames × pixels)", path=name)


DEFAULT_LIMITS = MediaLimits()
