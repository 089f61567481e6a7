"""Work split into independent pieces, run on a small thread pool over every core.

Shared by the matte's full-resolution tile work (``matte/tiles.py``, ``matte/upsample.py``,
``matte/decontaminate.py``) and the encoder's strip building (``imageio/encode.py``): OpenCV
and NumPy release the GIL on arrays this size, so threads use every core without copying data.
It lives outside both packages so that ``imageio`` does not depend on ``matte``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["map_pieces", "use_threads", "worker_threads"]

P = TypeVar("P")


#: threads for piecewise work in this process, when set (``use_threads``): the job engine's
#: workers size it by measurement, beside ONNX Runtime's own threads
_budget: int | None = None


def use_threads(n: int | None) -> None:
    """Run piecewise work (tiles, the PNG writer's strips) on ``n`` threads from now on; None:
    every core.

    A pipelined worker finishes one image while the model runs on the next; giving its
    full-resolution work every core as well would put twice as many busy threads as cores on
    the machine (``jobs/layout.py`` picks ``n``)."""
    global _budget
    _budget = None if n is None else max(1, int(n))


def worker_threads() -> int:
    """Threads for piecewise work: ``ALPHACUT_TILE_THREADS``, else the budget set by
    ``use_threads``, else the cores this process may use."""
    env = os.environ.get("ALPHACUT_TILE_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if _budget is not None:
        return _budget
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not Linux
        return max(1, min(8, os.cpu_count() or 1))


def map_pieces(fn: Callable[[P], None], pieces: Iterable[P], threads: int | None = None) -> None:
    """Run ``fn`` on every piece (pieces must not overlap in what they write); errors propagate."""
    pieces = list(pieces)
    n = min(worker_threads() if threads is None else threads, len(pieces))
    if n <= 1:
        for p in pieces:
            fn(p)
        return
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="alphacut-tile") as pool:
        for _ in pool.map(fn, pieces):
            pass
