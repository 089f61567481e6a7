"""The one flow every entry point runs, for one image.

bytes ─► sniff/decode ─► plan ─► predict ─► upsample ─► (refine) ─► decontaminate ─► compose ─► encode ─► verify

Each stage is a small function over plain data. Their order, and the bookkeeping around them
(provider, warnings, helper models, timings), lives in one place: ``steps.Stages``, which the
library, the CLI and the job engine's workers run (the workers its halves, ``infer`` and
``finish`` + ``render``, on two threads, so one image is finished while the next is inferred).
Stage names reported through ``on_stage`` are the job state machine's stage names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import cv2
import numpy as np

from .imageio.decode import DEFAULT_MAX_PIXELS, Picture, decode, to_srgb
from .imageio.encode import EncodeSettings, encode_pixels, quantize, StraightRGBA
from .imageio.formats import by_name
from .imageio.verify import verify_encoded
from .matte.decontaminate import CONFIDENCE_POWER, REFINED_CONFIDENCE_POWER, estimate_foreground
from .matte.decide import decide_mattes
from .matte.fused import fuses, upsample_and_decontaminate
from .matte.predict import Runner, model_view, predict_matte
from .matte.upsample import to_unit_float, upsample_matte
from .models.catalog import ModelSpec
from .options import Options
from .second_opinion import Helper, HelperLoader

StageCallback = Callable[[str, float], None]

#: images up to this many pixels on a side are fed as they are; larger ones are downscaled for
#: inference only — the matte is applied back to the full-resolution original.
INFERENCE_MAX_SIDE = 4096
#: above this many pixels the Cutout keeps the decontaminated colour only, not the original too
RELEASE_ORIGINAL_PIXELS = 64_000_000
#: up to this many pixels the RGBA output is built once and shared by the encoder and the
#: verifier (128 MB at 8 bits); above it both read it strip by strip, so memory stays bounded
SHARED_RGBA_PIXELS = 32_000_000


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


@dataclass
class Inferred:
    """What the models said about a picture, before any full-resolution work: the coarse
    matte and, for a small subject in the best tier, the crop pass's coarse matte. The job
    engine's workers hand this from the thread that runs the model to the one that finishes
    and encodes, so the next image's inference starts while this one is finished."""

    picture: Picture
    coarse: np.ndarray
    crop: tuple[tuple[int, int, int, int], np.ndarray] | None
    options: Options
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: a second model's opinion was weighed in (``matte.decide``): its regions are decided, and
    #: the best tier's band matting refines their edges without re-deciding them
    decided: bool = False


def infer(
    picture: Picture,
    session: Runner,
    spec: ModelSpec,
    options: Options,
    *,
    on_stage: StageCallback = _noop,
    helper: HelperLoader | None = None,
) -> Inferred:
    """Every model pass a cutout needs: the whole picture with the chosen model and its second
    opinion and, in the best tier, a crop around a small subject."""
    timings: dict[str, float] = {}
    warnings: list[str] = []
    if options.color == "srgb":
        picture = to_srgb(picture)

    second = _second_opinion(spec, helper, warnings) if options.second_opinion else None
    # the best tier reads a min-max normalised helper's "no" as relative (matte/decide.py,
    # RELATIVE_NO_CLIP): more of the salient objects, at a cost on one-object video masks, so
    # the fast tier keeps the helper's "no" whole (docs/quality.md)
    relative = second is not None and second[1].output == "minmax" and options.quality == "best"

    def run_models(rgb: np.ndarray) -> np.ndarray:
        small = plan_inference_image(rgb)
        seen = model_view(small, spec)  # the model's own view, resized once
        coarse = predict_matte(session, seen, spec)
        if second is not None:  # decided where the models are: at the chosen model's resolution
            # the photo's edges at the matte's size: the model's view when it holds the very
            # pixels decide would make (8-bit, area-averaged or as it is), else the photo
            area = seen.shape[0] < small.shape[0] or seen.shape[1] < small.shape[1]
            same = seen.shape[:2] == coarse.shape and small.dtype == np.uint8 and (area or seen is small)
            edges = seen if same else small
            coarse = decide_mattes(coarse, predict_matte(second[0], small, second[1]), edges,
                                   other_relative=relative)
        return coarse

    on_stage("inferring", 0.0)
    t = time.perf_counter()
    coarse = run_models(picture.rgb)
    timings["predict"] = time.perf_counter() - t
    on_stage("inferring", 0.7)

    crop = None
    if options.quality == "best" and options.subject_crop_pass:
        from .matte.refine import CROP_MIN_GAIN, subject_crop_box

        box = subject_crop_box(coarse, picture.rgb.shape)
        if box is not None and _crop_gain(spec, picture.rgb.shape, box) < CROP_MIN_GAIN:
            box = None  # the model already saw the subject at full detail
        if box is not None:
            # a small subject: the model sees it again, cropped, at its full input resolution
            t = time.perf_counter()
            x0, y0, x1, y1 = box
            crop = (box, run_models(picture.rgb[y0:y1, x0:x1]))
            timings["crop_pass"] = time.perf_counter() - t
    on_stage("inferring", 1.0)
    return Inferred(picture, coarse, crop, options, warnings, timings, decided=second is not None)


def finish(inferred: Inferred, *, on_stage: StageCallback = _noop, keep_original: bool = True) -> Cutout:
    """The full-resolution work on what the models said: edge-aware upsampling, the best
    tier's refinement, the source's own transparency, decontamination.

    ``keep_original=False`` (a caller that owns the decoded picture and composes without the
    original colours, as the job engine's workers do unless asked to blur the background or
    keep artifacts): a large photo is decontaminated in place, and the cutout's picture holds
    the foreground colours, as above ``RELEASE_ORIGINAL_PIXELS``."""
    picture, options = inferred.picture, inferred.options
    timings = dict(inferred.timings)

    on_stage("refining", 0.0)
    if (inferred.crop is None and options.quality != "best" and picture.alpha is None
            and options.decontaminate and fuses(picture.rgb.shape)):
        # a large photo's upsampling and decontamination in one full-resolution pass (the
        # same matte; the colour within a stated tolerance: matte/fused.py)
        t = time.perf_counter()
        power = CONFIDENCE_POWER
        matte, foreground = upsample_and_decontaminate(inferred.coarse, picture.rgb, confidence_power=power,
                                                       in_place=not keep_original)
        timings["upsample+decontaminate"] = time.perf_counter() - t
        if matte.size > RELEASE_ORIGINAL_PIXELS or not keep_original:
            picture = replace(picture, rgb=foreground)  # as below: keep one of the two
        on_stage("refining", 1.0)
        return Cutout(picture, matte, foreground, options, warnings=list(inferred.warnings), timings=timings)
    t = time.perf_counter()
    matte = upsample_matte(inferred.coarse, picture.rgb)
    if inferred.crop is not None:
        box, crop_coarse = inferred.crop
        x0, y0, x1, y1 = box
        crop = picture.rgb[y0:y1, x0:x1]
        from .matte.refine import paste_crop_matte

        matte = paste_crop_matte(matte, upsample_matte(crop_coarse, crop), box)
    timings["upsample"] = time.perf_counter() - t

    if options.quality == "best":
        t = time.perf_counter()
        from .matte.refine import refine_matte

        matte = refine_matte(matte, picture.rgb, decided=inferred.decided)
        timings["refine"] = time.perf_counter() - t
    if picture.alpha is not None:
        np.multiply(matte, picture.alpha, out=matte)  # what was transparent stays transparent

    on_stage("refining", 0.5)
    t = time.perf_counter()
    if options.decontaminate:
        power = REFINED_CONFIDENCE_POWER if options.quality == "best" else CONFIDENCE_POWER
        foreground = estimate_foreground(picture.rgb, matte, confidence_power=power)
    else:
        foreground = picture.rgb
    if options.decontaminate and matte.size > RELEASE_ORIGINAL_PIXELS:
        # The original differs from the foreground only in the edge band; on huge photos keep
        # one of them (the cutout needs the foreground) so memory stays bounded.
        picture = replace(picture, rgb=foreground)
    timings["decontaminate"] = time.perf_counter() - t
    on_stage("refining", 1.0)
    return Cutout(picture, matte, foreground, options, warnings=list(inferred.warnings), timings=timings)


def _second_opinion(spec: ModelSpec, helper: HelperLoader | None, warnings: list[str]) -> Helper | None:
    """The best tier's second model for ``spec``, when one is assigned and can be had."""
    from .second_opinion import HELPERS, helper_loader

    if spec.name not in HELPERS:
        return None
    found, why = (helper or helper_loader())(spec.name)
    if why:
        warnings.append(why)
    return found


def _crop_gain(spec: ModelSpec, shape: tuple[int, ...], box: tuple[int, int, int, int]) -> float:
    from .matte.predict import model_input_size
    from .matte.refine import crop_pass_gain

    x0, y0, x1, y1 = box
    H, W = int(shape[0]), int(shape[1])
    return crop_pass_gain((H, W), model_input_size(spec, H, W),
                          (y1 - y0, x1 - x0), model_input_size(spec, y1 - y0, x1 - x0))


def output_bit_depth(picture: Picture, options: Options) -> int:
    enc = options.encode
    if enc.bit_depth is not None:
        return enc.bit_depth
    return 16 if picture.bit_depth == 16 and 16 in by_name(enc.format).bit_depths else 8


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
    look, enc = opts.compose, opts.encode
    picture = cutout.picture
    depth = output_bit_depth(picture, opts)
    settings = EncodeSettings(
        format=enc.format,
        bit_depth=depth,
        lossless=enc.lossless,
        quality=enc.lossy_quality,
        icc_profile=picture.icc_profile,
        exif=picture.exif,
    )
    matte, fg = cutout.matte, cutout.foreground
    x0, y0, x1, y1 = 0, 0, matte.shape[1], matte.shape[0]
    if look.crop:
        x0, y0, x1, y1 = subject_box(matte, look.margin)
        matte, fg = matte[y0:y1, x0:x1], fg[y0:y1, x0:x1]
    if look.mask_only:
        return quantize(matte, depth), replace(settings, icc_profile=None)
    if look.opaque:
        backdrop = background_pixels(cutout, opts, (x0, y0, x1, y1))  # float32 (h, w, 3) in 0..1
        a = matte[:, :, None]
        rgb = to_unit_float(fg) * a + backdrop * (1.0 - a)
        return quantize(rgb, depth), settings
    return StraightRGBA(fg, matte, depth, clear_transparent=look.clear_transparent), settings


def _resize_rgb(img: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    w, h = size_wh
    if img.shape[1] == w and img.shape[0] == h:
        return img
    interp = cv2.INTER_AREA if (w < img.shape[1] and h < img.shape[0]) else cv2.INTER_CUBIC
    return np.clip(cv2.resize(img, (w, h), interpolation=interp), 0.0, 1.0)


def load_background_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The background image as float32 RGB 0..1 (decoded like any input: by signature, upright)."""
    from .imageio.decode import read_input

    data, display = read_input(path)
    pic = decode(data, name=display, max_pixels=max_pixels)
    return to_unit_float(pic.rgb)


def blurred_original(rgb01: np.ndarray, matte: np.ndarray, sigma: float) -> np.ndarray:
    """The photo blurred by a Gaussian of ``sigma`` px, **background only**: a normalised
    convolution ``blur(I·(1-a)) / blur(1-a)`` so the subject's colours do not smear a halo into
    the backdrop around it (where there is no background nearby, the plain blur is used).
    Large sigmas run on a downscaled copy (a Gaussian that wide has no fine detail to lose)."""
    if sigma <= 0:
        return rgb01.copy()
    H, W = matte.shape
    f = max(1.0, sigma / 4.0)
    sw, sh = max(1, round(W / f)), max(1, round(H / f))
    small_i = cv2.resize(rgb01, (sw, sh), interpolation=cv2.INTER_AREA) if f > 1 else rgb01
    small_b = cv2.resize(1.0 - matte, (sw, sh), interpolation=cv2.INTER_AREA) if f > 1 else 1.0 - matte
    s = sigma / f
    blur = lambda x: cv2.GaussianBlur(x, (0, 0), s, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    wb = blur(small_b)
    num = blur(small_i * small_b[:, :, None])
    plain = blur(small_i)
    wgt = np.clip(wb * 20.0, 0.0, 1.0)[:, :, None]  # trust the normalised blur where it has support
    out = plain * (1 - wgt) + (num / np.maximum(wb, 1e-6)[:, :, None]) * wgt
    if f > 1:
        out = cv2.resize(out, (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


def background_pixels(cutout: Cutout, opts: Options, box: tuple[int, int, int, int]) -> np.ndarray:
    """The backdrop for the output region ``box`` (x0, y0, x1, y1): float32 (h, w, 3) in 0..1."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    look = opts.compose
    colour = np.asarray(look.background if look.background is not None else (255, 255, 255), np.float32) / 255.0
    if look.blur is not None:
        full = blurred_original(to_unit_float(cutout.picture.rgb), cutout.matte, float(look.blur))
        return np.ascontiguousarray(full[y0:y1, x0:x1])
    if look.image is None:
        return np.broadcast_to(colour, (h, w, 3))
    img = load_background_image(look.image, opts.max_pixels)
    ih, iw = img.shape[:2]
    if look.fit == "fill":
        s = max(w / iw, h / ih)
        sw, sh = max(w, round(iw * s)), max(h, round(ih * s))
        big = _resize_rgb(img, (sw, sh))
        ox, oy = (sw - w) // 2, (sh - h) // 2
        return np.ascontiguousarray(big[oy:oy + h, ox:ox + w])
    s = min(w / iw, h / ih)
    sw, sh = max(1, min(w, round(iw * s))), max(1, min(h, round(ih * s)))
    out = np.empty((h, w, 3), np.float32)
    out[:] = colour
    ox, oy = (w - sw) // 2, (h - sh) // 2
    out[oy:oy + sh, ox:ox + sw] = _resize_rgb(img, (sw, sh))
    return out


def render(cutout: Cutout, options: Options | None = None, *, name: str = "<output>", on_stage: StageCallback = _noop) -> bytes:
    """Encode and verify: the bytes returned have been decoded again and checked."""
    pixels, settings = output_pixels(cutout, options, timings=cutout.timings, on_stage=on_stage)
    return encode_verified(pixels, settings, name=name, timings=cutout.timings, on_stage=on_stage)


def output_pixels(cutout: Cutout, options: Options | None = None, *, timings: dict[str, float],
                  on_stage: StageCallback = _noop) -> tuple[np.ndarray | StraightRGBA, EncodeSettings]:
    """``render``'s first half: the pixels to write (``compose``), built once when the encoder
    and the verifier can share them (up to ``SHARED_RGBA_PIXELS``).

    Built, they hold everything the output needs: a caller that lets go of the cutout now (the
    job engine's workers) does not keep its matte, colour and photo (120 MB at 12 MP) through
    encoding and verification, beside the next image's inference."""
    on_stage("encoding", 0.0)
    t = time.perf_counter()
    pixels, settings = compose(cutout, options)
    if isinstance(pixels, StraightRGBA) and pixels.shape[0] * pixels.shape[1] <= SHARED_RGBA_PIXELS:
        pixels = pixels.materialize()  # built once, not once for the encoder and again to verify
    timings["encode"] = time.perf_counter() - t
    return pixels, settings


def encode_verified(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings, *, name: str = "<output>",
                    timings: dict[str, float], on_stage: StageCallback = _noop) -> bytes:
    """``render``'s second half: encode the pixels and verify the bytes (decoded again and
    checked); the times add to ``timings``."""
    t = time.perf_counter()
    data = encode_pixels(pixels, settings)
    timings["encode"] = timings.get("encode", 0.0) + time.perf_counter() - t
    on_stage("verifying", 0.0)
    t = time.perf_counter()
    verify_encoded(data, pixels, settings, name=name)
    timings["verify"] = time.perf_counter() - t
    return data


def decode_input(data: bytes, *, name: str, options: Options, on_stage: StageCallback = _noop) -> Picture:
    on_stage("decoding", 0.0)
    return decode(data, name=name, max_pixels=options.max_pixels)
