"""What a worker leaves behind for the web app (written by ``save_artifacts`` in the worker, read
back by ``load_cutout`` in the server): enough to edit the matte and re-export
through ``pipeline.render`` without running the model again.

``<artifacts_dir>/<job_id>/matte.npy`` (float32, full resolution), ``foreground.npy``
(decontaminated colour, the input's depth), ``alpha.npy`` (the source's own alpha, if any)
and ``meta.json`` (format, bit depth, size, input name, ICC profile and EXIF as base64).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..fsutil import atomic_write, output_error

__all__ = ["load_cutout", "save_artifacts"]


def save_artifacts(directory: Path, cutout: Any, name: str) -> None:
    """matte.npy (float32), foreground.npy and meta.json: enough to re-render without the model."""
    directory.mkdir(parents=True, exist_ok=True)
    pic = cutout.picture
    arrays = [("matte.npy", cutout.matte), ("foreground.npy", cutout.foreground)]
    if pic.alpha is not None:
        arrays.append(("alpha.npy", pic.alpha))
    for fname, arr in arrays:
        tmp = directory / f".{fname}.part"
        try:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
            os.replace(tmp, directory / fname)
        except OSError as exc:  # a full work folder is "disk-full", and leaves no partial file
            tmp.unlink(missing_ok=True)
            raise output_error(exc, "cannot keep the job's matte for editing", directory / fname) from None
    meta = {
        "name": name,
        "format": pic.format,
        "bit_depth": pic.bit_depth,
        "width": pic.width,
        "height": pic.height,
        "icc_profile": base64.b64encode(pic.icc_profile).decode() if pic.icc_profile else None,
        "exif": base64.b64encode(pic.exif).decode() if pic.exif else None,
        "has_alpha": pic.alpha is not None,
        "provider": cutout.provider,
        "warnings": list(cutout.warnings),
    }
    atomic_write(directory / "meta.json", json.dumps(meta).encode())


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
