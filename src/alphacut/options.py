"""``Options``: every choice that decides an output, in one value that flows through the stages.

Grouped by the stage that reads them, so a reader sees what belongs together:

- the top level: the model, the tier (``quality``: "fast" | "best") and its switches (the
  second model's opinion, the best tier's crop pass), decontamination, colour handling and the
  decode limit;
- ``Compose``: what the output shows: the cutout, its matte alone, or the cutout over a colour,
  an image or the blurred original; cropped to the subject or whole;
- ``Encode``: how it is written: format, bit depth, lossless or lossy at ``lossy_quality``.

The flat keywords of earlier versions keep working, in the constructor and as attributes
(``Options(format="webp", background=(255, 255, 255), quality_level=80)``,
``options.format``), so ``alphacut.remove(..., **keywords)`` is unchanged; a flat keyword
overrides the same choice in a group given beside it.

Options is frozen, hashable and cheap to pickle: it travels whole to the engine's worker
processes, tier switches included (a module-level switch set in the parent would not reach a
spawned worker).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import UsageError
from .imageio.decode import DEFAULT_MAX_PIXELS
from .imageio.formats import check_depth, output_format
from .models.catalog import DEFAULT_MODEL

Quality = Literal["fast", "best"]
Fit = Literal["fill", "fit"]
Colour = tuple[int, int, int]

_UNSET: Any = object()


@dataclass(frozen=True)
class Compose:
    """What the output shows (``pipeline.compose`` reads these)."""

    #: write the matte as a grey image instead of the cutout
    mask_only: bool = False
    #: an RGB colour to composite onto (opaque output), or None for a transparent cutout; with
    #: an ``image`` and ``fit="fit"`` it fills the bars around the image (white when unset)
    background: Colour | None = None
    #: an image file to composite onto (opaque output); stored as a path (Options stays
    #: hashable and cheap to send to workers) and decoded in ``compose``
    image: str | None = None
    #: "fill": scale the image to cover the output and crop the overflow (centred);
    #: "fit": scale it to fit inside, centred, bars in ``background``
    fit: Fit = "fill"
    #: composite onto the original photo blurred by this Gaussian sigma in pixels
    blur: float | None = None
    #: crop to the subject, with ``margin`` pixels around it
    crop: bool = False
    margin: int = 0
    #: zero the colour of fully transparent pixels (smaller files; the colour there is unseen)
    clear_transparent: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.image, Path):
            object.__setattr__(self, "image", str(self.image))
        if self.background is not None:
            object.__setattr__(self, "background", tuple(self.background))
        if self.mask_only and (self.background is not None or self.image is not None or self.blur is not None):
            raise UsageError("a mask and a background (a colour, an image or a blur) do not go together")
        if self.fit not in ("fill", "fit"):
            raise UsageError(f"background fit must be 'fill' or 'fit', not {self.fit!r}")
        if self.image is not None and self.blur is not None:
            raise UsageError("a background image and a background blur do not go together")
        if self.blur is not None and not 0 <= float(self.blur) <= 1000:
            raise UsageError("background blur must be between 0 and 1000 pixels")

    @property
    def opaque(self) -> bool:
        """Composited over a backdrop (a colour, an image or the blurred original)."""
        return self.background is not None or self.image is not None or self.blur is not None


@dataclass(frozen=True)
class Encode:
    """How the output is written (``pipeline.compose`` turns these into ``EncodeSettings``)."""

    #: a registered output format's name (``imageio.formats``); an alias names its format
    format: str = "png"
    #: None: 16-bit when the input is 16-bit and the format carries it, else 8
    bit_depth: int | None = None
    #: WebP/AVIF: lossless (exact colour and alpha); otherwise lossy at ``lossy_quality``
    lossless: bool = True
    #: 0-100, the lossy encoders' quality setting (not the tier: that is ``Options.quality``)
    lossy_quality: int = 90

    def __post_init__(self) -> None:
        fmt = output_format(self.format)  # any kind: a video format writes frames, not stills
        object.__setattr__(self, "format", fmt.name)  # an alias ("tif") names its format
        if self.bit_depth is not None:
            check_depth(fmt, self.bit_depth)
        if not 0 <= self.lossy_quality <= 100:
            raise UsageError("output quality must be between 0 and 100")


#: flat keyword → (group, field) for the keywords of earlier versions
FLAT: dict[str, tuple[str, str]] = {
    "mask_only": ("compose", "mask_only"),
    "background": ("compose", "background"),
    "background_image": ("compose", "image"),
    "background_fit": ("compose", "fit"),
    "background_blur": ("compose", "blur"),
    "crop": ("compose", "crop"),
    "crop_margin": ("compose", "margin"),
    "clear_transparent": ("compose", "clear_transparent"),
    "format": ("encode", "format"),
    "bit_depth": ("encode", "bit_depth"),
    "lossless": ("encode", "lossless"),
    "quality_level": ("encode", "lossy_quality"),
    "lossy_quality": ("encode", "lossy_quality"),
}


@dataclass(frozen=True, init=False)
class Options:
    """Everything that decides an output; see the module docstring for the groups."""

    model: str = DEFAULT_MODEL
    #: the tier: "fast" (one model pass, plus the second opinion) or "best" (edge refinement)
    quality: Quality = "fast"
    #: both tiers: weigh a second model's matte where one is assigned and installed
    second_opinion: bool = True
    #: best tier: run the model again on a crop around a small subject
    subject_crop_pass: bool = True
    #: estimate the true foreground colour in the edge band (no fringe of the old background)
    decontaminate: bool = True
    #: "keep" the input's ICC profile, or convert the pixels to "srgb"
    color: Literal["keep", "srgb"] = "keep"
    #: refuse larger images (decompression bombs)
    max_pixels: int = DEFAULT_MAX_PIXELS
    compose: Compose = field(default_factory=Compose)
    encode: Encode = field(default_factory=Encode)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        quality: Quality = "fast",
        *,
        second_opinion: bool = True,
        subject_crop_pass: bool = True,
        decontaminate: bool = True,
        color: Literal["keep", "srgb"] = "keep",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        compose: Compose | None = None,
        encode: Encode | None = None,
        # the flat keywords of earlier versions (see FLAT); each overrides its group's field
        mask_only: bool = _UNSET,
        background: Colour | None = _UNSET,
        background_image: str | Path | None = _UNSET,
        background_fit: Fit = _UNSET,
        background_blur: float | None = _UNSET,
        crop: bool = _UNSET,
        crop_margin: int = _UNSET,
        clear_transparent: bool = _UNSET,
        format: str = _UNSET,
        bit_depth: int | None = _UNSET,
        lossless: bool = _UNSET,
        quality_level: int = _UNSET,
        lossy_quality: int = _UNSET,
    ) -> None:
        flat = {k: v for k, v in locals().items() if k in FLAT and v is not _UNSET}
        groups = {"compose": compose or Compose(), "encode": encode or Encode()}
        for group in groups:
            changes = {FLAT[k][1]: v for k, v in flat.items() if FLAT[k][0] == group}
            if changes:
                groups[group] = dataclasses.replace(groups[group], **changes)
        values = dict(model=model, quality=quality, second_opinion=second_opinion,
                      subject_crop_pass=subject_crop_pass, decontaminate=decontaminate, color=color,
                      max_pixels=max_pixels, **groups)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.quality not in ("fast", "best"):
            raise UsageError(f"quality must be 'fast' or 'best', not {self.quality!r}")
        if self.color not in ("keep", "srgb"):
            raise UsageError(f"color must be 'keep' or 'srgb', not {self.color!r}")

    # --- the flat view of earlier versions (read-only, like every field) ----------------------

    @property
    def format(self) -> str:
        return self.encode.format

    @property
    def bit_depth(self) -> int | None:
        return self.encode.bit_depth

    @property
    def lossless(self) -> bool:
        return self.encode.lossless

    @property
    def quality_level(self) -> int:
        """The lossy encoders' quality: ``encode.lossy_quality`` (not the tier, ``quality``)."""
        return self.encode.lossy_quality

    @property
    def mask_only(self) -> bool:
        return self.compose.mask_only

    @property
    def background(self) -> Colour | None:
        return self.compose.background

    @property
    def background_image(self) -> str | None:
        return self.compose.image

    @property
    def background_fit(self) -> Fit:
        return self.compose.fit

    @property
    def background_blur(self) -> float | None:
        return self.compose.blur

    @property
    def crop(self) -> bool:
        return self.compose.crop

    @property
    def crop_margin(self) -> int:
        return self.compose.margin

    @property
    def clear_transparent(self) -> bool:
        return self.compose.clear_transparent


#: every keyword ``Options(...)`` (and so ``alphacut.remove``) accepts
KEYWORDS: frozenset[str] = frozenset(inspect.signature(Options.__init__).parameters) - {"self"}
