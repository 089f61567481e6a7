"""Run one real file through the whole pipeline and say what happened, within a time bound.

Shared by ``tests/test_corpus.py`` and ``bench/corpus.py`` so the table in the note and the test
suite judge files by the same rule: a file is either a verified cutout or refused with an
``AlphacutError``; any other exception, or running past the time bound, is a defect.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphacut.errors import AlphacutError
from alphacut.imageio.decode import DEFAULT_MAX_PIXELS, decode
from alphacut.pipeline import Options

# one per-input time limit for the fuzzer and the corpus checks
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
from harness import InputTimeout as FileTimeout, time_limit  # noqa: E402

SHARED_FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "formats"
LOCAL_CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"

#: files larger than this (pixels) are decoded only, unless the caller asks for the full pipeline
FULL_PIPELINE_MAX_PIXELS = 300_000
#: files larger than this are "slow": skipped by the default test run (ALPHACUT_SLOW=1 runs them)
SLOW_PIXELS = 20_000_000


@dataclass
class Outcome:
    """What happened to one file."""

    path: str
    #: processed (verified cutout), decoded (decode-only check), refused (AlphacutError), FAIL
    status: str
    code: str = ""
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "FAIL"


def corpus_files(root: Path) -> list[Path]:
    """The files MANIFEST.tsv lists, else every file under ``root`` but READMEs and licences, sorted."""
    manifest = root / "MANIFEST.tsv"
    if manifest.exists():
        rows = manifest.read_text().splitlines()[1:]
        return sorted(root / row.split("\t")[0] for row in rows if row.strip())
    skip = {"MANIFEST.tsv", "README.md"}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip and not p.name.startswith("LICENSE"))


def declared_pixels(path: Path) -> int:
    """Width x height as the file declares it (0 when it cannot be read): decides fast vs slow."""
    try:
        from PIL import Image
        import pillow_heif  # noqa: F401 - registers the HEIF opener

        with Image.open(path) as img:
            return img.size[0] * img.size[1]
    except Exception:  # noqa: BLE001 - unreadable files are judged by classify(), not here
        return 0


def classify(path: Path, remover: Any | None, *, full: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS,
             timeout: float = 120.0, name: str | None = None) -> Outcome:
    """Decode (and with ``full`` and a remover: cut out, encode and verify) one file."""
    shown = name or str(path)
    started = time.perf_counter()
    try:
        with time_limit(timeout):
            data = path.read_bytes()
            picture = decode(data, name=shown, max_pixels=max_pixels)
            _check_picture(picture)
            if not full or remover is None:
                return Outcome(shown, "decoded", detail=_describe(picture), seconds=time.perf_counter() - started)
            from alphacut.api import Result

            options = Options(model=remover.spec.name, max_pixels=max_pixels)
            cutout = remover.process(picture, options)
            encoded = Result(cutout).encode()  # encode() verifies before it returns
            detail = f"{_describe(picture)} -> {len(encoded)} B png"
            return Outcome(shown, "processed", detail=detail, seconds=time.perf_counter() - started)
    except AlphacutError as err:
        return Outcome(shown, "refused", code=err.code, detail=err.reason, seconds=time.perf_counter() - started)
    except FileTimeout as exc:
        return Outcome(shown, "FAIL", code="hang", detail=str(exc), seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - the point: any other exception is a defect to report
        return Outcome(shown, "FAIL", code=type(exc).__name__, detail=str(exc)[:200],
                       seconds=time.perf_counter() - started)


def _check_picture(picture: Any) -> None:
    rgb = picture.rgb
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype.name not in ("uint8", "uint16") or min(rgb.shape[:2]) < 1:
        raise AssertionError(f"decode returned a bad array {rgb.shape} {rgb.dtype}")
    if picture.alpha is not None and (picture.alpha.shape != rgb.shape[:2] or picture.alpha.dtype.name != "float32"):
        raise AssertionError(f"decode returned a bad alpha {picture.alpha.shape} {picture.alpha.dtype}")


def _describe(picture: Any) -> str:
    alpha = "+alpha" if picture.alpha is not None else ""
    return f"{picture.format} {picture.width}x{picture.height} {picture.bit_depth}-bit{alpha}"
