"""Check an encoded file before it is handed over: decode it again and compare with what we meant.

A file that fails is never delivered. The checks: the signature is the format asked for, the file
decodes, the size and channel layout are right, the alpha equals the quantised matte within 1, and
the colour under every visible pixel is the (decontaminated, straight) colour within the format's
tolerance — which is what catches premultiplied or thresholded output.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import AlphacutError, VerificationError
from .encode import StraightRGBA, pixel_rows
from .formats import SNIFF_BYTES, EncodeSettings, by_name, sniff


def colour_tolerance(settings: EncodeSettings) -> tuple[float, float]:
    """(max abs error, mean abs error) allowed on colour, in units of the output's bit depth:
    the format's own ``Check.tolerance`` from the registry."""
    return _check(settings).tolerance(settings)


def decode_for_check(data: bytes, settings: EncodeSettings) -> tuple[np.ndarray, bool]:
    """Decode with a standard decoder (the format's ``Check.read_back``); returns the pixels
    and whether they are in BGR(A) order."""
    return _check(settings).read_back(data, settings)


def _check(settings: EncodeSettings):
    check = by_name(settings.format).check
    assert check is not None  # EncodeSettings accepts output formats only; those have a Check
    return check


def read_back_cv2(data: bytes, settings: EncodeSettings) -> tuple[np.ndarray, bool]:
    """OpenCV (libpng/libtiff) decodes into one buffer that we use as it is: the channel order
    is swapped strip by strip during the comparison, so a 200 MP check holds no second copy."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None:
        raise ValueError("the decoder rejected the file")
    return arr, arr.ndim == 3


def read_back_pillow(data: bytes, settings: EncodeSettings) -> tuple[np.ndarray, bool]:
    """Pillow's decoders (libwebp, libavif, libtiff), RGB(A) order."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img), False


def verify_encoded(data: bytes, expected: np.ndarray | StraightRGBA, settings: EncodeSettings, *,
                   name: str = "<output>") -> None:
    """Raise VerificationError unless ``data`` decodes back to ``expected`` (see module doc)."""

    def fail(reason: str) -> None:
        raise VerificationError(f"output failed verification: {reason}; it was not written", path=name)

    try:
        found = sniff(data[:SNIFF_BYTES]).name
    except AlphacutError:
        found = "nothing recognisable"
    if found != settings.format:
        fail(f"expected a {settings.format.upper()} signature, found {found}")
    try:
        got, bgr = decode_for_check(data, settings)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a verification failure
        fail(f"it does not decode ({exc})")
    if got.shape[:2] != expected.shape[:2]:
        fail(f"size {got.shape[1]}x{got.shape[0]} instead of {expected.shape[1]}x{expected.shape[0]}")
    exp_ch = 1 if len(expected.shape) == 2 else expected.shape[2]
    got_ch = 1 if got.ndim == 2 else got.shape[2]
    if exp_ch != got_ch or got.dtype != expected.dtype:
        fail(f"layout {got_ch} channel(s) {got.dtype} instead of {exp_ch} channel(s) {expected.dtype}")
    stats = _compare(got, expected, exp_ch, bgr)
    if exp_ch == 1:
        if stats.alpha_max > 1:
            fail(f"mask differs from the matte by up to {stats.alpha_max} levels")
        return
    if stats.alpha_max > 1:
        fail(f"alpha differs from round(matte x max) by up to {stats.alpha_max} levels")
    if stats.weight == 0:
        return
    max_err, mean_err = colour_tolerance(settings)
    mean = stats.weighted_sum / (stats.weight * 3.0)
    if stats.colour_max > max_err or mean > mean_err:
        fail(
            f"colour under visible pixels differs by up to {stats.colour_max} "
            f"(alpha-weighted mean {mean:.2f}; allowed {max_err:.0f}/{mean_err:.2f}) — "
            "premultiplied or damaged colour"
        )


#: rows compared at a time: the comparison's temporaries stay a few MB even at 200 MP
STRIP_ROWS = 256


@dataclass
class _Stats:
    alpha_max: int = 0
    colour_max: int = 0
    weighted_sum: float = 0.0
    weight: float = 0.0


def _compare(got: np.ndarray, expected: np.ndarray | StraightRGBA, channels: int, bgr: bool = False) -> _Stats:
    """Differences between decoded and expected pixels, strip by strip.

    Colour counts only under visible pixels, weighted by alpha (a colour error under a 1%
    visible pixel is 1% as visible); without alpha every pixel has weight 1. OpenCV's absdiff
    does the arithmetic in the pixels' own type, exactly (no widening copies). Strips that
    decode to exactly the expected pixels (all of a lossless file) are passed after one
    comparison; the statistics below are computed only where something differs.
    """
    import cv2

    stats = _Stats()
    identical: list[int] = []  # strips whose weight is needed only if another strip differs
    for y0 in range(0, expected.shape[0], STRIP_ROWS):
        g = got[y0 : y0 + STRIP_ROWS]
        e = pixel_rows(expected, y0, min(expected.shape[0], y0 + STRIP_ROWS))
        if bgr and channels in (3, 4):
            g = cv2.cvtColor(g, cv2.COLOR_BGRA2RGBA if channels == 4 else cv2.COLOR_BGR2RGB)
        g, e = np.ascontiguousarray(g), np.ascontiguousarray(e)
        if cv2.norm(g, e, cv2.NORM_INF) == 0:  # identical (every lossless file): no error to add
            if channels == 3:
                stats.weight += float(e.shape[0] * e.shape[1])
            elif channels == 4:
                identical.append(y0)
            continue
        d = cv2.absdiff(g, e)
        if channels == 1:
            stats.alpha_max = max(stats.alpha_max, int(d.max(initial=0)))
            continue
        if channels == 4:
            stats.alpha_max = max(stats.alpha_max, int(d[:, :, 3].max(initial=0)))
            alpha = e[:, :, 3]
            visible = alpha > 0
            weights = alpha.astype(np.float32).ravel()
            stats.weight += float(weights.sum(dtype=np.float64))
        else:
            visible, weights = None, None
            stats.weight += float(d.shape[0] * d.shape[1])
        for c in range(3):
            dc = d[:, :, c]
            if visible is None:
                stats.colour_max = max(stats.colour_max, int(dc.max(initial=0)))
                stats.weighted_sum += float(dc.sum(dtype=np.float64))
            else:  # colour under invisible pixels does not count
                stats.colour_max = max(stats.colour_max, int(dc.max(initial=0, where=visible)))
                stats.weighted_sum += float(np.dot(dc.astype(np.float32).ravel(), weights))
    if identical and stats.weighted_sum > 0:
        # the alpha-weighted mean error needs every visible pixel's weight; a file that decoded
        # to exactly what was meant (every lossless one) has no error to average, and its
        # verdict cannot depend on the weights: they are summed only when something differs
        for y0 in identical:
            e = pixel_rows(expected, y0, min(expected.shape[0], y0 + STRIP_ROWS))
            stats.weight += float(cv2.sumElems(np.ascontiguousarray(e))[3])
    return stats
