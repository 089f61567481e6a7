"""Check an encoded file before it is handed over: decode it again and compare with what we meant.

A file that fails is never delivered. The checks: the signature is the format asked for, the file
decodes, the size and channel layout are right, the alpha equals the quantised matte within 1, and
the colour under every visible pixel is the (decontaminated, straight) colour within the format's
tolerance — which is what catches premultiplied or thresholded output.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import AlphacutError, VerificationError
from .encode import EncodeSettings
from .sniff import sniff


def colour_tolerance(settings: EncodeSettings) -> tuple[float, float]:
    """(max abs error, mean abs error) allowed on colour, in units of the output's bit depth."""
    scale = 257.0 if settings.bit_depth == 16 else 1.0
    if settings.format in ("png", "tiff") or (settings.format == "webp" and settings.lossless):
        return 1.0 * scale, 0.5 * scale
    if settings.format == "avif" and settings.lossless:
        return 4.0 * scale, 1.0 * scale  # 4:4:4 YUV round trip
    # lossy: noise and texture cost a few levels; premultiplication costs tens
    return 255.0 * scale, (6.0 + (100 - settings.quality) / 4.0) * scale


def decode_for_check(data: bytes, settings: EncodeSettings) -> np.ndarray:
    if settings.bit_depth == 16:
        import cv2

        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
        if arr is None:
            raise ValueError("OpenCV could not decode it")
        if arr.ndim == 3:
            arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
        return arr
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img)


def verify_encoded(data: bytes, expected: np.ndarray, settings: EncodeSettings, *, name: str = "<output>") -> None:
    """Raise VerificationError unless ``data`` decodes back to ``expected`` (see module doc)."""

    def fail(reason: str) -> None:
        raise VerificationError(f"output failed verification: {reason}; it was not written", path=name)

    try:
        found = sniff(data[:64])
    except AlphacutError:
        found = "nothing recognisable"
    if found != settings.format:
        fail(f"expected a {settings.format.upper()} signature, found {found}")
    try:
        got = decode_for_check(data, settings)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a verification failure
        fail(f"it does not decode ({exc})")
    if got.shape[:2] != expected.shape[:2]:
        fail(f"size {got.shape[1]}x{got.shape[0]} instead of {expected.shape[1]}x{expected.shape[0]}")
    exp_ch = 1 if expected.ndim == 2 else expected.shape[2]
    got_ch = 1 if got.ndim == 2 else got.shape[2]
    if exp_ch != got_ch or got.dtype != expected.dtype:
        fail(f"layout {got_ch} channel(s) {got.dtype} instead of {exp_ch} channel(s) {expected.dtype}")
    if exp_ch == 1:
        diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
        if diff.max() > 1:
            fail(f"mask differs from the matte by up to {int(diff.max())} levels")
        return
    if exp_ch == 4:
        alpha_diff = np.abs(got[:, :, 3].astype(np.int32) - expected[:, :, 3].astype(np.int32))
        if alpha_diff.max() > 1:
            fail(f"alpha differs from round(matte x max) by up to {int(alpha_diff.max())} levels")
        visible = expected[:, :, 3] > 0
    else:
        visible = np.ones(expected.shape[:2], bool)
    if not visible.any():
        return
    colour_diff = np.abs(got[:, :, :3][visible].astype(np.int32) - expected[:, :, :3][visible].astype(np.int32))
    max_err, mean_err = colour_tolerance(settings)
    if exp_ch == 4:
        # weight by alpha: a colour error under a 1% visible pixel is 1% as visible
        weights = expected[:, :, 3][visible].astype(np.float32)[:, None]
        mean = float((colour_diff * weights).sum() / max(float(weights.sum()) * 3.0, 1e-6))
    else:
        mean = float(colour_diff.mean())
    if colour_diff.max() > max_err or mean > mean_err:
        fail(
            f"colour under visible pixels differs by up to {int(colour_diff.max())} "
            f"(alpha-weighted mean {mean:.2f}; allowed {max_err:.0f}/{mean_err:.2f}) — "
            "premultiplied or damaged colour"
        )
