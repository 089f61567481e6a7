"""The invariant every fuzz input is held to, and the seeds it starts from.

``sniff`` and ``decode`` either return a sane result or raise an ``InputError``; any other
exception, a hang past the time bound, or a picture larger than ``max_pixels`` is a finding.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from alphacut.errors import InputError
from alphacut.imageio.decode import decode
from alphacut.imageio.formats import SNIFF_BYTES, all_formats, sniff

ROOT = Path(__file__).resolve().parents[1]
SEED_DIRS = [ROOT / "tests" / "data" / "corpus", ROOT.parent / "shared" / "eval" / "formats"]
#: low enough that no accepted input can allocate much (3 bytes x 4 MP = 12 MB of pixels)
FUZZ_MAX_PIXELS = 4_000_000


class Finding(Exception):
    """An input broke the invariant."""


class InputTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def _expired(signum: int, frame: Any) -> None:
        raise InputTimeout(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_sniff(data: bytes) -> str | None:
    try:
        fmt = sniff(data[:SNIFF_BYTES], name="fuzz").name
    except InputError:
        return None
    except Exception as exc:  # noqa: BLE001
        raise Finding(f"sniff raised {type(exc).__name__}: {exc}") from exc
    if fmt not in {f.name for f in all_formats()}:
        raise Finding(f"sniff returned {fmt!r}")
    return fmt


def check_decode(data: bytes, *, max_pixels: int = FUZZ_MAX_PIXELS, timeout: float = 10.0) -> str:
    """'ok' or the InputError code; raises Finding for anything else."""
    check_sniff(data)
    try:
        with time_limit(timeout):
            picture = decode(data, name="fuzz", max_pixels=max_pixels)
    except InputError as err:
        return err.code
    except InputTimeout as exc:
        raise Finding(f"hang: {exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise Finding(f"decode raised {type(exc).__name__}: {exc}") from exc
    rgb = picture.rgb
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype in (np.uint8, np.uint16)):
        raise Finding(f"bad rgb array {getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', None)}")
    h, w = rgb.shape[:2]
    if h < 1 or w < 1 or h * w > max_pixels:
        raise Finding(f"picture {w}x{h} is empty or over max_pixels={max_pixels}")
    if picture.alpha is not None:
        a = picture.alpha
        if a.shape != (h, w) or a.dtype != np.float32 or not (0.0 <= float(a.min()) and float(a.max()) <= 1.0):
            raise Finding(f"bad alpha {a.shape} {a.dtype}")
    return "ok"


def load_seeds(max_bytes: int = 64_000) -> list[bytes]:
    """Small corpus files plus generated ones for formats the corpus lacks."""
    from mutators import generated_seeds

    seeds: list[bytes] = []
    for root in SEED_DIRS:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and 0 < path.stat().st_size <= max_bytes and path.suffix not in (".md", ".tsv", ".txt") and not path.name.startswith("LICENSE"):
                    seeds.append(path.read_bytes())
    seeds.extend(generated_seeds())
    return seeds
