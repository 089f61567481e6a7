"""The wire protocol between the engine and its worker processes: typed messages over one pipe.

Engine → worker: a ``WorkerConfig`` once (the process's argument), then ``Task`` for each job and
``Stop`` to end after the jobs in hand. Worker → engine, in order (the worker sends under a lock):

- ``Ready`` once the model is loaded, or ``Fatal`` when it cannot be (every worker would fail alike)
- ``StageReached`` when a job starts or advances a stage
- ``Waiting`` when a job waits for the worker's next thread (it is not active then: no timeout runs)
- ``Finished`` / ``Failed``: a job's end

They are plain frozen dataclasses (pickled by ``multiprocessing``), so both ends agree on every
field by name and a type checker sees a misspelt one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to load its model and run jobs."""

    model: str
    model_path: str
    cpu_model_path: str | None
    threads: int
    providers: list[str] | None
    #: where to keep each job's matte for editing (``artifacts.save_artifacts``); None keeps none
    artifacts_dir: str | None
    #: three jobs at once on a decode | infer | finish+encode thread pipeline
    pipelined: bool = True
    #: the cores this worker may use (its share of the machine); 0: every core. A pipelined
    #: worker splits them between the model and the finishing side by measurement (``layout``)
    cores: int = 0


@dataclass
class Task:
    """One job for a worker. ``source`` is a path or the bytes themselves; the worker lets go of
    the bytes once the image is decoded (so it is not frozen)."""

    id: str
    name: str
    source: bytes | str | None
    options: Any
    output: str
    #: the input's own path, so the worker refuses to write over it (None for bytes)
    input_path: str | None
    #: a video or animation to cut out frame by frame into one file (``jobs.clips``); False:
    #: a still (an animated GIF submitted without it is cut out from its first frame, as before)
    clip: bool = False
    #: a clip's codec choice and limits (``media.clip.ClipSettings``); None: the defaults
    clip_settings: Any = None


@dataclass(frozen=True)
class Stop:
    """End after the jobs in hand."""


@dataclass(frozen=True)
class Ready:
    pid: int
    provider: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fatal:
    """The model cannot be loaded: every job would fail the same way."""

    code: str
    reason: str


@dataclass(frozen=True)
class StageReached:
    job_id: str
    stage: str
    progress: float
    #: a clip's job: frames finished so far and frames expected (0: not a clip)
    frame: int = 0
    frames: int = 0


@dataclass(frozen=True)
class Waiting:
    job_id: str


@dataclass(frozen=True)
class Finished:
    job_id: str
    output: str
    sha256: str
    bytes: int
    timings: dict[str, float]
    provider: str
    warnings: tuple[str, ...] = ()
    #: the folder holding the job's matte for editing, when the engine keeps them
    artifacts: str | None = None


@dataclass(frozen=True)
class Failed:
    job_id: str
    code: str
    reason: str


ToWorker = Union[Task, Stop]
FromWorker = Union[Ready, Fatal, StageReached, Waiting, Finished, Failed]

__all__ = ["Failed", "Fatal", "Finished", "FromWorker", "Ready", "StageReached", "Stop", "Task",
           "ToWorker", "Waiting", "WorkerConfig"]
