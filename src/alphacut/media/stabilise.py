"""The seam between the frame loop and a temporal stage: frames and mattes in, in order;
stabilised mattes out, in the same order, possibly a few frames later.

``push`` takes one frame's upright RGB and its full-resolution float matte and returns the
mattes that are ready (none while a stage looks ahead, several when it catches up);
``flush`` returns the rest at the end of the clip. The loop pairs them with its frames in
order, so a stage's delay is its own business; its state must stay bounded (the loop holds
only the frames a stage has not given back yet).
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np


class Stabiliser(Protocol):
    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list[np.ndarray]: ...

    def flush(self) -> list[np.ndarray]: ...


class Independent:
    """No temporal stage: every frame keeps its own matte (the per-frame baseline)."""

    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list[np.ndarray]:
        return [matte]

    def flush(self) -> list[np.ndarray]:
        return []


def default_stabiliser() -> Stabiliser:
    """The temporal stage the loop runs unless told otherwise (none is built in yet: each
    frame keeps its own matte)."""
    return Independent()


StabiliserFactory = Callable[[], Stabiliser]
