"""Is this file a moving picture? By its registered format (``imageio.formats``: signatures,
never names), then, for formats that are stills as often as animations (GIF, PNG, WebP,
AVIF), by the frame count Pillow reads."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .animation_in import animation_signature


def clip_kind(path: str | Path) -> Literal["video", "animation"] | None:
    """'video', 'animation' (more than one frame), or None for a still or anything else."""
    from ..errors import InputError
    from ..imageio.formats import SNIFF_BYTES, sniff

    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
        fmt = sniff(head, name=str(path))
    except (OSError, InputError):
        return None
    if fmt.kind == "video":
        return "video"
    if animation_signature(head):
        return "animation" if _frames(path) > 1 else None
    return None


def item_kind(item: object) -> Literal["video", "animation"] | None:
    """``clip_kind`` for an input ``Item`` (``alphacut.inputs``): a file, or a ZIP member
    (its first bytes; an animated member is opened to count its frames)."""
    path = getattr(item, "path", None)
    if path is not None and getattr(item, "archive", None) is None:
        return clip_kind(path)
    archive, member = getattr(item, "archive", None), getattr(item, "member", None)
    if archive is None or member is None:
        return None
    import io
    import zipfile

    from ..errors import InputError
    from ..imageio.formats import SNIFF_BYTES, sniff

    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as fh:
            head = fh.read(SNIFF_BYTES)
            if sniff(head, name=member).kind == "video":
                return "video"
            if not animation_signature(head):
                return None
            data = head + fh.read()
    except (OSError, zipfile.BadZipFile, KeyError, InputError):
        return None
    return "animation" if _frames(io.BytesIO(data)) > 1 else None


def _frames(path: object) -> int:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None  # the limits are checked by the readers, with clear errors
            with Image.open(path) as img:
                if img.format == "PNG":  # APNG declares its frames in acTL: no need to walk them
                    return int(getattr(img, "n_frames", 1))
                return 2 if getattr(img, "is_animated", False) else 1
    except Exception:  # noqa: BLE001 - not readable as an animation: the still path reports it
        return 1
