"""The one flow every entry point runs, for one image.

bytes ─► sniff/decode ─► plan ─► predict ─► upsample ─► (refine) ─► decontaminate ─► compose ─► encode ─► verify

Each stage is a small function over plain data. The library, the CLI, the job engine's workers
and the web server all call ``cut_out`` (pixels in memory) and ``render`` (verified bytes).
Stage names reported through ``on_stage`` are the job state machine's stage names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import cv2
import numpy as np

from .errors import UsageError
from .imageio.decode import DEFAULT_MAX_PIXELS, Picture, decode, to_srgb
from .imageio.encode import EncodeSettings, SIXTEEN_BIT_FORMATS, encode_pixels, quantize, StraightRGBA, convert_depth
from .imageio.verify import verify_encoded
from .matte.decontaminate import estimate_foreground
from .matte.predict import Runner, predict_matte
from .matte.upsample import upsample_matte
from .models.catalog import DEFAULT_MODEL, ModelSpec

Quality = Literal["fast", "best"]
StageCallback = Callable[[str, float], None]

#: images up to this many pixels on a side are fed as they are; larger ones are downscaled for
#: inference only — the matte is applied back to the full-resolution original.
INFERENCE_MAX_SIDE = 4096
#: above this many pixels the Cutout keeps the decontaminated colour only, not the original too
RELEASE_ORIGINAL_PIXELS = 64_000_000


@dataclass(frozen=True)
class Options:
    """Everything that decides an output, in one value that flows through the stages."""

    model: str = DEFAULT_MODEL
    quality: Quality = "fast"
    format: str = "png"
    #: None: 16-bit when the input is 16-bit and the format carries it, else 8
    bit_depth: int | None = None
    decontaminate: bool = True
    clear_transparent: bool = False
    mask_only: bool = False
    #: an RGB colour to composite onto (opaque output), or None for a transparent cutout
    background: tuple[int, int, int] | None = None
    crop: bool = False
    crop_margin: int = 0
    color: Literal["keep", "srgb"] = "keep"
    lossless: bool = True
    quality_level: int = 90
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.quality not in ("fast", "best"):
            raise UsageError(f"quality must be 'fast' or 'best', not {self.quality!r}")
        if self.color not in ("keep", "srgb"):
            raise UsageError(f"color must be 'keep' or 'srgb', not {self.color!r}")
        if self.mask_only and self.background is not None:
            raise UsageError("--mask-only and --bg do not go together")
        if not 0 <= self.quality_level <= 100:
            raise UsageError("output quality must be between 0 and 100")


@dataclass
class Cutout:
    """A cut-out image in memory: the float matte, the foreground colours and where they came from."""

    picture: Picture
    matte: np.ndarray
    foreground: np.ndarray
    options: Options
    provider: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.picture.width, self.picture.height


def _noop(stage: str, fraction: float) -> None:
    return None


def plan_inference_image(rgb: np.ndarray, max_side: int = INFERENCE_MAX_SIDE) -> np.ndarray:
    """The copy the model sees: the image itself up to ``max_side``, else a downscaled copy."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def cut_out(
    picture: Picture,
    session: Runner,
    spec: ModelSpec,
    options: Options,
    *,
    on_stage: StageCallback = _noop,
) -> Cutout:
    """Matte and foreground for a decoded picture (the inference and refinement stages)."""
    timings: dict[str, float] = {}
    if options.color == "srgb":
        picture = to_srgb(picture)

    on_stage("inferring", 0.0)
    t = time.perf_counter()
    small = plan_inference_image(picture.rgb)
    coarse = predict_matte(session, small, spec)
    del small
    timings["predict"] = time.perf_counter() - t
    on_stage("inferring", 0.7)

    t = time.perf_counter()
    matte = upsample_matte(coarse, picture.rgb)
    timings["upsample"] = time.perf_counter() - t
    on_stage("inferring", 1.0)

    if options.quality == "best":
        on_stage("refining", 0.0)
        t = time.perf_counter()
        from .matte.refine import refine_matte

        matte = refine_matte(matte, picture.rgb)
        timings["refine"] = time.perf_counter() - t
    if picture.alpha is not None:
        np.multiply(matte, picture.alpha, out=matte)  # what was transparent stays transparent

    on_stage("refining", 0.5)
    t = time.perf_counter()
    foreground = estimate_foreground(picture.rgb, matte) if options.decontaminate else picture.rgb
    if options.decontaminate and matte.size > RELEASE_ORIGINAL_PIXELS:
        # The original differs from the foreground only in the edge band; on huge photos keep
        # one of them (the cutout needs the foreground) so memory stays bounded.
        picture = replace(picture, rgb=foreground)
    timings["decontaminate"] = time.perf_counter() - t
    on_stage("refining", 1.0)
    return Cutout(picture, matte, foreground, options, timings=timings)


def output_bit_depth(picture: Picture, options: Options) -> int:
    if options.bit_depth is not None:
        return options.bit_depth
    return 16 if picture.bit_depth == 16 and options.format in SIXTEEN_BIT_FORMATS else 8


def subject_box(matte: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around every visible pixel, grown by ``margin``; the whole image if empty."""
    visible = matte >= (0.5 / 255.0)
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    h, w = matte.shape
    if rows.size == 0:
        return 0, 0, w, h
    return (
        max(0, int(cols[0]) - margin),
        max(0, int(rows[0]) - margin),
        min(w, int(cols[-1]) + 1 + margin),
        min(h, int(rows[-1]) + 1 + margin),
    )


def compose(cutout: Cutout, options: Options | None = None) -> tuple[np.ndarray | StraightRGBA, EncodeSettings]:
    """The exact pixels to write, and the encoder settings that go with them.

    A transparent cutout comes back as a ``StraightRGBA`` strip source (read a strip at a time
    by the PNG writer and the verifier); a mask or a composite over a background as an array.
    """
    opts = options or cutout.options
    picture = cutout.picture
    depth = output_bit_depth(picture, opts)
    settings = EncodeSettings(
        format=opts.format,
        bit_depth=depth,
        lossless=opts.lossless,
        quality=opts.quality_level,
        icc_profile=picture.icc_profile,
        exif=picture.exif,
    )
    matte, fg = cutout.matte, cutout.foreground
    if opts.crop:
        x0, y0, x1, y1 = subject_box(matte, opts.crop_margin)
        matte, fg = matte[y0:y1, x0:x1], fg[y0:y1, x0:x1]
    if opts.mask_only:
        return quantize(matte, depth), replace(settings, icc_profile=None)
    if opts.background is not None:
        top = np.float32(65535.0 if depth == 16 else 255.0)
        colour = np.asarray(opts.background, np.float32) / 255.0 * top
        a = matte[:, :, None]
        rgb = convert_depth(fg, depth).astype(np.float32) * a + colour * (1.0 - a)
        return np.rint(np.clip(rgb, 0, top)).astype(np.uint16 if depth == 16 else np.uint8), settings
    return StraightRGBA(fg, matte, depth, clear_transparent=opts.clear_transparent), settings


def render(cutout: Cutout, options: Options | None = None, *, name: str = "<output>", on_stage: StageCallback = _noop) -> bytes:
    """Encode and verify: the bytes returned have been decoded again and checked."""
    on_stage("encoding", 0.0)
    t = time.perf_counter()
    pixels, settings = compose(cutout, options)
    data = encode_pixels(pixels, settings)
    cutout.timings["encode"] = time.perf_counter() - t
    on_stage("verifying", 0.0)
    t = time.perf_counter()
    verify_encoded(data, pixels, settings, name=name)
    cutout.timings["verify"] = time.perf_counter() - t
    return data


def decode_input(data: bytes, *, name: str, options: Options, on_stage: StageCallback = _noop) -> Picture:
    on_stage("decoding", 0.0)
    return decode(data, name=name, max_pixels=options.max_pixels)
