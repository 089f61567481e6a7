"""What a worker leaves behind for the web app: enough to edit the matte and re-export
through ``pipeline.render`` without running the model again.

``<artifacts_dir>/<job_id>/matte.npy`` (float32, full resolution), ``foreground.npy``
(decontaminated colour, the input's depth), ``alpha.npy`` (the source's own alpha, if any)
and ``meta.json`` (format, bit depth, size, input name, ICC profile and EXIF as base64).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .worker import save_artifacts

__all__ = ["load_cutout", "save_artifacts"]


def load_cutout(directory: str | Path, options: Any = None) -> Any:
    """Rebuild the ``pipeline.Cutout`` a worker saved in ``directory``."""
    from ..imageio.decode import Picture
    from ..pipeline import Cutout, Options

    directory = Path(directory)
    try:
        meta = json.loads((directory / "meta.json").read_text())
        matte = np.load(directory / "matte.npy")
        fg = np.load(directory / "foreground.npy")
    except (OSError, ValueError) as exc:
        raise InputError(f"the saved cutout cannot be read ({exc})", path=directory) from None
    alpha = np.load(directory / "alpha.npy") if meta.get("has_alpha") and (directory / "alpha.npy").exists() else None
    picture = Picture(
        rgb=fg,
        alpha=alpha,
        icc_profile=base64.b64decode(meta["icc_profile"]) if meta.get("icc_profile") else None,
        exif=base64.b64decode(meta["exif"]) if meta.get("exif") else None,
        format=meta.get("format", "png"),
        name=meta.get("name", "<image>"),
    )
    return Cutout(picture, matte, fg, options or Options(), provider=meta.get("provider", ""),
                  warnings=list(meta.get("warnings", [])))
