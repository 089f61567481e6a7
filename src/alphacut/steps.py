"""The stage sequence, written once: decode → infer → finish → render, for one image.

The library (``api.Remover``), the single-file CLI and the job engine's workers all run
``Stages``; the frame loop (video) and Ray actors are meant to run it too. It owns what every
caller would otherwise repeat: the order of the stages, where the second opinion's helper
comes from (the model store), the session's provider and warnings attached to each cutout,
and the timings. The pixel work itself stays in ``pipeline``.

Two ways in:

- whole images: ``cut_out`` (a decoded picture → ``Cutout``, for the library) and ``run``
  (a file or bytes → ``Cutout`` and verified bytes, for the CLI);
- in halves, for the workers' threads: ``decode``, ``infer`` (the model passes) and
  ``finish`` + ``render`` (the full-resolution work and the encoding), so one image is
  finished while the next is inferred.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import pipeline
from .imageio.decode import Picture, read_input
from .imageio.encode import EncodeSettings
from .matte.predict import Runner
from .models.catalog import ModelSpec
from .pipeline import Cutout, Inferred, Options, StageCallback
from .second_opinion import HelperLoader, helper_loader

__all__ = ["Decoded", "Readable", "Stages", "decode_source", "timed"]

#: what the stages can read an image from: a file, its bytes, or a callable that reads them
#: only when decoding starts (stdin, a ZIP member), so the encoded bytes live no longer than
#: the decode
Readable = str | Path | bytes | Callable[[], bytes]


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds the block took to ``timings[key]``: one way to time every stage."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - t


def decode_source(source: str | Path | bytes, *, name: str | None, options: Options) -> Picture:
    """A file or bytes → Picture, sniffed and decoded; the encoded bytes are let go on return
    (a 12 MP JPEG's bytes need not live beside its pixels)."""
    data, display = read_input(source, name=name)
    return pipeline.decode_input(data, name=display, options=options)


@dataclass
class Decoded:
    """A decoded picture and the time its decode took, on its way to the model thread."""

    picture: Picture
    timings: dict[str, float] = field(default_factory=dict)


class Stages:
    """One loaded model run through the stages, with its provider, warnings and helpers.

    ``session`` is the loaded model, or None with ``load`` to fetch it when the first model
    pass needs it (the library and the CLI: a file that cannot be decoded is reported as such
    before the model loads). ``helper`` defaults to a loader over ``store``
    (default: the user's model store); tests and benches pass their own.
    """

    def __init__(self, session: Runner | None, spec: ModelSpec, *, load: Callable[[], Runner] | None = None,
                 store: Any = None, helper: HelperLoader | None = None) -> None:
        if session is None and load is None:
            raise ValueError("Stages needs a session or a way to load one")
        self._session = session
        self._load = load
        self.spec = spec
        self.helper: HelperLoader = helper or helper_loader(store)

    @property
    def session(self) -> Runner:
        """The model's session (loaded through ``load`` when none was given)."""
        return self._session if self._session is not None else self._load()  # type: ignore[misc]

    @property
    def provider(self) -> str:
        """The execution provider the session runs on ("" for a runner that does not say)."""
        return getattr(self.session, "provider", "")

    # --- the halves -----------------------------------------------------------------------

    def decode(self, source: Readable, *, name: str | None, options: Options,
               on_stage: StageCallback = pipeline._noop) -> Decoded:
        """Read and decode one input (reading the file counts as decoding)."""
        timings: dict[str, float] = {}
        on_stage("decoding", 0.0)
        with timed(timings, "decode"):
            picture = decode_source(source() if callable(source) else source, name=name, options=options)
        return Decoded(picture, timings)

    def infer(self, decoded: Decoded, options: Options, *,
              on_stage: StageCallback = pipeline._noop) -> Inferred:
        """Every model pass (``pipeline.infer``) with this model's helper; the
        decode's time travels on with the result."""
        inferred = pipeline.infer(decoded.picture, self.session, self.spec, options, on_stage=on_stage,
                                  helper=self.helper)
        inferred.timings = {**decoded.timings, **inferred.timings}
        return inferred

    def finish(self, inferred: Inferred, *, on_stage: StageCallback = pipeline._noop,
               keep_original: bool = True) -> Cutout:
        """The full-resolution work (``pipeline.finish``); the cutout then says which provider
        ran it and carries the session's warnings after the models' own."""
        cutout = pipeline.finish(inferred, on_stage=on_stage, keep_original=keep_original)
        cutout.provider = self.provider
        cutout.warnings.extend(getattr(self.session, "warnings", []))
        return cutout

    def render(self, cutout: Cutout, options: Options | None = None, *, name: str | None = None,
               on_stage: StageCallback = pipeline._noop) -> bytes:
        """Compose, encode and verify (``pipeline.render``); the times land in ``cutout.timings``."""
        return pipeline.render(cutout, options, name=cutout.picture.name if name is None else name,
                               on_stage=on_stage)

    def output_pixels(self, cutout: Cutout, options: Options | None = None, *, timings: dict[str, float],
                      on_stage: StageCallback = pipeline._noop) -> tuple[Any, EncodeSettings]:
        """``render``'s first half (``pipeline.output_pixels``): after it the cutout may go."""
        return pipeline.output_pixels(cutout, options, timings=timings, on_stage=on_stage)

    def encode_verified(self, pixels: Any, settings: EncodeSettings, *, name: str, timings: dict[str, float],
                        on_stage: StageCallback = pipeline._noop) -> bytes:
        """``render``'s second half (``pipeline.encode_verified``): encode, verify."""
        return pipeline.encode_verified(pixels, settings, name=name, timings=timings, on_stage=on_stage)

    # --- whole images ---------------------------------------------------------------------

    def cut_out(self, picture: Picture, options: Options, *,
                on_stage: StageCallback = pipeline._noop) -> Cutout:
        """A decoded picture → its cutout in memory (the library renders it on demand)."""
        return self._cut_out(Decoded(picture), options, on_stage)

    def run(self, source: Readable, *, name: str | None = None, options: Options,
            on_stage: StageCallback = pipeline._noop) -> tuple[Cutout, bytes]:
        """A file or bytes → its cutout and verified output bytes: every stage in order."""
        cutout = self._cut_out(self.decode(source, name=name, options=options, on_stage=on_stage),
                               options, on_stage)
        return cutout, self.render(cutout, on_stage=on_stage)

    def _cut_out(self, decoded: Decoded, options: Options, on_stage: StageCallback) -> Cutout:
        return self.finish(self.infer(decoded, options, on_stage=on_stage), on_stage=on_stage)
