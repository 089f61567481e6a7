"""The seam between the frame loop and a temporal stage: frames and mattes in, in order;
stabilised mattes out, in the same order, possibly a few frames later.

``push`` takes one frame's upright RGB and its full-resolution float matte and returns the
mattes that are ready (none while a stage looks ahead, several when it catches up), each
either a matte or an ``(index, matte)`` pair (the frame's index in the clip, from 0: the loop
then checks the order);
``flush`` returns the rest at the end of the clip. The loop pairs them with its frames in
order, so a stage's delay is its own business; its state must stay bounded (the loop holds
only the frames a stage has not given back yet).
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np


Ready = np.ndarray | tuple[int, np.ndarray]


class Stabiliser(Protocol):
    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list[Ready]: ...

    def flush(self) -> list[Ready]: ...


class Independent:
    """No temporal stage: every frame keeps its own matte (the per-frame baseline)."""

    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list[np.ndarray]:
        return [matte]

    def flush(self) -> list[np.ndarray]:
        return []


def default_stabiliser() -> Stabiliser:
    """The temporal stage the loop runs unless told otherwise, one per clip: the
    motion-compensated ``matte.temporal.MatteStabilizer`` where this build has it, else
    ``Independent`` (every frame keeps its own matte)."""
    try:
        from ..matte.temporal import MatteStabilizer  # type: ignore[import-not-found]
    except ImportError:
        return Independent()
    return MatteStabilizer()  # type: ignore[no-any-return]


def unpack(ready: Ready, expected: int) -> np.ndarray:
    """The matte of one item a stage gave back, checked to be frame ``expected``'s."""
    if isinstance(ready, tuple):
        index, matte = ready
        if index != expected:
            raise RuntimeError(f"the temporal stage gave back frame {index + 1} where frame {expected + 1} was due")
        return matte
    return ready


StabiliserFactory = Callable[[], Stabiliser]
