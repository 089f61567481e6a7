"""The library's front door: ``remove()`` for one call, ``Remover`` to keep a model loaded.

Both are thin shells over ``pipeline``: inputs become a ``Picture``, the pipeline cuts it out,
and ``Result`` encodes and verifies on demand.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from . import pipeline
from .errors import UsageError
from .fsutil import atomic_write
from .imageio.decode import Picture
from .imageio.encode import straight_rgba
from .imageio.formats import by_extension
from .models.catalog import DEFAULT_MODEL, ModelSpec, get_spec
from .options import KEYWORDS, Options
from .pipeline import Cutout, StageCallback
from .steps import Stages, decode_source

Source = str | Path | bytes | Image.Image | np.ndarray


def make_options(base: Options | None = None, **overrides: Any) -> Options:
    """An Options value from keyword arguments (grouped or flat, see ``options``), with a clear
    error for unknown names."""
    unknown = set(overrides) - KEYWORDS
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return replace(base or Options(), **overrides)


def picture_from(src: Source, *, name: str | None = None, options: Options | None = None) -> Picture:
    """Any supported source → Picture (files and bytes are sniffed and decoded; arrays are taken as RGB)."""
    opts = options or Options()
    if isinstance(src, Image.Image):
        src = np.asarray(src.convert("RGBA" if "A" in src.getbands() else "RGB"))
    if isinstance(src, np.ndarray):
        return _picture_from_array(src, name or "<array>")
    return decode_source(src, name=name, options=opts)


def _picture_from_array(arr: np.ndarray, name: str) -> Picture:
    if arr.dtype not in (np.uint8, np.uint16):
        raise UsageError(f"arrays must be uint8 or uint16, not {arr.dtype}", path=name)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UsageError(f"arrays must be (H, W), (H, W, 3) or (H, W, 4), not {arr.shape}", path=name)
    alpha = None
    if arr.shape[2] == 4:
        top = 65535.0 if arr.dtype == np.uint16 else 255.0
        alpha = arr[:, :, 3].astype(np.float32) / np.float32(top)
        arr = arr[:, :, :3]
    return Picture(np.ascontiguousarray(arr), alpha, name=name)


class Result:
    """A finished cutout: the float matte, straight RGBA on demand, and verified encodings."""

    def __init__(self, cutout: Cutout) -> None:
        self._cutout = cutout

    @property
    def cutout(self) -> Cutout:
        return self._cutout

    @property
    def matte(self) -> np.ndarray:
        """float32 (H, W) alpha in 0..1 — never thresholded, never quantised."""
        return self._cutout.matte

    @property
    def foreground(self) -> np.ndarray:
        """(H, W, 3) decontaminated colour, same dtype as the input."""
        return self._cutout.foreground

    @property
    def rgba(self) -> np.ndarray:
        """(H, W, 4) straight-alpha RGBA at the input's depth (uint8 or uint16)."""
        depth = 16 if self._cutout.foreground.dtype == np.uint16 else 8
        return straight_rgba(self._cutout.foreground, self._cutout.matte, depth)

    @property
    def provider(self) -> str:
        return self._cutout.provider

    @property
    def warnings(self) -> list[str]:
        return self._cutout.warnings

    @property
    def timings(self) -> dict[str, float]:
        return self._cutout.timings

    def to_pil(self) -> Image.Image:
        """An 8-bit RGBA PIL image (straight alpha)."""
        return Image.fromarray(straight_rgba(self._cutout.foreground, self._cutout.matte, 8), "RGBA")

    def encode(self, format: str | None = None, **overrides: Any) -> bytes:
        """Verified bytes in ``format`` (png, webp, avif, tiff) with any Options overrides."""
        opts = make_options(self._cutout.options, **({"format": format} if format else {}), **overrides)
        return pipeline.render(self._cutout, opts, name=self._cutout.picture.name)

    def save(self, path: str | Path, format: str | None = None, **overrides: Any) -> Path:
        """Encode, verify, then write atomically; the format follows the extension unless given."""
        path = Path(path)
        if format is None:
            named = by_extension(path.suffix) if path.suffix else None
            format = named.name if named is not None and named.writes("still") else self._cutout.options.format
        return atomic_write(path, self.encode(format, **overrides))


class Remover:
    """Keeps one model session loaded for many images. Use it as a context manager."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        providers: list[str] | None = None,
        threads: int | None = None,
        accept_license: bool = False,
        store: Any = None,
        download_progress: Callable[..., None] | None = None,
    ) -> None:
        self.spec: ModelSpec = get_spec(model)
        self._providers = providers
        self._threads = threads
        self._accept_license = accept_license
        self._store = store
        self._download_progress = download_progress
        self._session: Any = None
        #: the stage sequence over this Remover's session, loaded when the first model pass needs it
        self.stages = Stages(None, self.spec, load=lambda: self.session, store=store)
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        """The ONNX session, created (and the model pulled if missing) on first use."""
        with self._lock:
            if self._session is None:
                from .models.session import open_session
                from .models.store import ModelStore

                self._session = open_session(self._store or ModelStore(), self.spec.name,
                                             accept_license=self._accept_license,
                                             progress=self._download_progress,
                                             providers=self._providers, threads=self._threads)
            return self._session

    def preload(self) -> None:
        """Start loading the session on a background thread, so the caller can decode its
        first image meanwhile (``session`` waits for the load): a 12 MP photo's decode hides
        under IS-Net's ~0.7 s load; the second opinion's model, when installed, loads there
        too. Only when the model is installed: a download shows its progress, and any error,
        on first use in the caller's thread."""
        from .models.store import ModelStore

        info = (self._store or ModelStore()).info(self.spec.name)
        if not info.installed or info.verified == "mismatch":
            return

        def load() -> None:
            try:
                self.session
                self.stages.helper(self.spec.name)  # installed helpers only, never a download
            except Exception:  # noqa: BLE001 - the first real use raises it again, where it is seen
                pass

        threading.Thread(target=load, name="alphacut-model-load", daemon=True).start()

    def process(self, picture: Picture, options: Options, *, on_stage: StageCallback = pipeline._noop) -> Cutout:
        """A decoded picture → its cutout, through ``steps.Stages`` (refuses another model's options)."""
        if options.model != self.spec.name:
            raise UsageError(f"this Remover holds {self.spec.name!r}, not {options.model!r}")
        return self.stages.cut_out(picture, options, on_stage=on_stage)

    def remove(self, src: Source, *, name: str | None = None, **options: Any) -> Result:
        opts = make_options(Options(model=self.spec.name), **options)
        picture = picture_from(src, name=name, options=opts)
        return Result(self.process(picture, opts))

    # --- moving pictures (alphacut.media) ------------------------------------------------

    def remove_video(self, src: str | Path, dst: str | Path | None = None, *, format: str | None = None,
                     video_codec: str | None = None, limits: Any = None, stabiliser: Any = None,
                     on_frame: Callable[[int, int, float], None] | None = None, cancel: Any = None,
                     **options: Any) -> Any:
        """Cut out every frame of a video or animation and write ``dst`` (default beside the
        input: ``clip.cutout.webm`` for a video, ``anim.cutout.webp`` for an animation; the
        suffix or ``format`` picks webm, mov, mp4, webp, apng, gif or frames). Streams frame
        by frame through the same stages as a still; the file is read back and checked before
        it is moved into place. Returns a ``media.ClipResult``."""
        from .media import DEFAULT_LIMITS, write_clip

        opts = make_options(Options(model=self.spec.name), **options)
        return write_clip(self.stages, src, dst, options=opts, format=format, video_codec=video_codec,
                          limits=limits or DEFAULT_LIMITS, stabiliser=stabiliser, on_frame=on_frame,
                          cancel=cancel)

    def video_frames(self, src: str | Path, *, limits: Any = None, stabiliser: Any = None,
                     **options: Any) -> Any:
        """Yield ``(Frame, Result)`` for each frame of a video or animation, streaming (one
        frame's pixels at a time, a few frames ahead in the decoder and the model)."""
        from .media import DEFAULT_LIMITS, cutouts, open_clip

        opts = make_options(Options(model=self.spec.name), **options)
        source = open_clip(src, limits=limits or DEFAULT_LIMITS)
        for frame, cutout in cutouts(self.stages, source, opts, stabiliser=stabiliser):
            yield frame, Result(cutout)

    def close(self) -> None:
        with self._lock:
            self._session = None

    def __enter__(self) -> "Remover":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default_removers: dict[str, Remover] = {}
_default_lock = threading.Lock()


def remove(src: Source, *, model: str = DEFAULT_MODEL, name: str | None = None, **options: Any) -> Result:
    """Cut the background out of one image (path, bytes, PIL image or NumPy array).

    The model session is kept for later calls in this process; use ``Remover`` to control that.
    """
    with _default_lock:
        remover = _default_removers.get(model)
        if remover is None:
            remover = _default_removers[model] = Remover(model)
    return remover.remove(src, name=name, **options)
