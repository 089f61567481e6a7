"""Animations out through Pillow: animated WebP (lossless), APNG, GIF (1-bit alpha).

Pillow's animated writers take every frame before they write (GIF and APNG compare frames
to store only what changed), so this sink holds its frames; ``MediaLimits`` bounds an
animation's frames × pixels for that reason. Durations are written per frame in
milliseconds (GIF stores centiseconds), and the loop count is kept.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from .clip import ClipInfo
from .outputs import OutputPlan

#: GIF alpha is one bit: pixels at or above half opacity are kept, the rest are clear
GIF_ALPHA_CUT = 128
GIF_WARNING = ("GIF has 1-bit transparency: soft edges (hair, shadows, motion blur) become hard "
               "(pixels under 50% opacity are dropped); use .webp or .png (APNG) to keep them")


class AnimationSink:
    """Collects frames and writes them as one animated file (bytes, verified by the caller)."""

    def __init__(self, plan: OutputPlan, info: ClipInfo) -> None:
        self.plan = plan
        self.info = info
        self.images: list[Image.Image] = []
        self.durations: list[int] = []
        self.times: list[float] = []
        self.warnings: list[str] = [GIF_WARNING] if plan.format == "gif" and plan.alpha else []

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """The pixels as this format will store them (GIF: alpha cut to one bit), so the
        verifier is handed exactly what should read back."""
        if self.plan.format == "gif" and pixels.ndim == 3 and pixels.shape[2] == 4:
            out = pixels.copy()
            out[:, :, 3] = np.where(pixels[:, :, 3] >= GIF_ALPHA_CUT, 255, 0)
            return out
        return pixels

    def write(self, pixels: np.ndarray, time: float, duration: float) -> None:
        ms = max(1, round(duration * 1000)) if self.plan.format != "gif" else max(10, round(duration * 100) * 10)
        self.times.append(time)
        self.durations.append(ms)
        self.images.append(self._image(pixels))

    def _image(self, pixels: np.ndarray) -> Image.Image:
        if pixels.ndim == 2:
            return Image.fromarray(pixels, "L")
        if pixels.shape[2] == 3:
            img = Image.fromarray(pixels, "RGB")
            return img.quantize(255, method=Image.Quantize.FASTOCTREE) if self.plan.format == "gif" else img
        if self.plan.format != "gif":
            return Image.fromarray(pixels, "RGBA")
        # GIF: a palette of 255 colours for the visible pixels, index 255 for clear ones
        rgb = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), "RGB")
        pal = rgb.quantize(255, method=Image.Quantize.FASTOCTREE)
        idx = np.asarray(pal).copy()
        idx[pixels[:, :, 3] == 0] = 255
        out = Image.fromarray(idx, "P")
        palette = (pal.getpalette() or [])[: 255 * 3]
        out.putpalette(palette + [0] * (768 - len(palette)))
        out.info["transparency"] = 255
        return out

    def encode(self) -> bytes:
        """The whole animation as bytes, in the plan's format."""
        if not self.images:
            raise ValueError("no frames")
        first, rest = self.images[0], self.images[1:]
        buf = io.BytesIO()
        loop = self.info.loop
        kwargs: dict[str, Any] = {"save_all": True, "append_images": rest, "duration": self.durations}
        if self.plan.format == "webp":
            kwargs.update(lossless=True, exact=True, method=4, loop=1 if loop is None else loop)
            first.save(buf, "WEBP", **kwargs)
        elif self.plan.format == "apng":
            kwargs.update(loop=1 if loop is None else loop, disposal=0, blend=0, optimize=False)
            first.save(buf, "PNG", **kwargs)
        else:
            if loop is not None:
                kwargs["loop"] = loop
            if self.plan.alpha:
                kwargs.update(transparency=255, disposal=2)
            first.save(buf, "GIF", optimize=False, **kwargs)
        return buf.getvalue()
