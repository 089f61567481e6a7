"""The pipelined worker's thread layout at a batch's ends (issue 17), with real models.

The product's ``Worker`` runs in a thread of this process, served through a real OS pipe
(``multiprocessing.Pipe``) exactly as the engine serves it; the subclass below only records
what the worker decided. Checked: a job finished alone gets every core and the bytes it writes
are the same as those finished beside a model pass (tiles and PNG strips are independent
pieces, so their thread count cannot change a byte); the second opinion's session opens while
the model's loads, before any job arrives.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from alphacut import second_opinion
from alphacut.jobs.wire import Failed, Fatal, Finished, Ready, Stop, Task, WorkerConfig
from alphacut.jobs.worker import Worker
from alphacut.models.store import ModelStore
from alphacut.parallel import worker_threads
from alphacut.pipeline import Options
from conftest import encode_image, subject_image


class RecordingWorker(Worker):
    """The product's worker; notes, per job, whether it finished alone and on how many threads."""

    def __init__(self, conn: Any, cfg: WorkerConfig) -> None:
        super().__init__(conn, cfg)
        self.widths: list[tuple[bool, int]] = []

    def _widen(self) -> bool:
        alone = super()._widen()
        self.widths.append((alone, worker_threads()))
        return alone


def config(store: ModelStore, model: str, cores: int) -> WorkerConfig:
    cpu = store.cpu_file(model)  # a float32 copy of a float16 model; None for a float32 one
    return WorkerConfig(model=model, model_path=str(store.ensure(model)), cpu_model_path=str(cpu) if cpu else None,
                        threads=cores, providers=None, artifacts_dir=None, pipelined=True, cores=cores)


def serve(worker: Worker) -> threading.Thread:
    th = threading.Thread(target=worker.run, daemon=True)
    th.start()
    return th


def test_a_job_finished_alone_gets_every_core_and_the_same_bytes(store: ModelStore, tmp_path: Path) -> None:
    # a 4.3 MP photo: the fused full-resolution pass (above 2048 px) splits it into many tiles
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(encode_image(subject_image(2400, 1800, seed=3), "JPEG", quality=92))
    engine_end, worker_end = mp.Pipe(duplex=True)
    worker = RecordingWorker(worker_end, config(store, "u2netp", cores=2))
    for i in range(3):  # all three in the pipe before the worker reads any: three jobs held at once
        engine_end.send(Task(f"j{i}", photo.name, str(photo), Options(model="u2netp"), str(tmp_path / f"p{i}.png"),
                             str(photo)))
    th = serve(worker)
    finished: dict[str, Finished] = {}
    while len(finished) < 3:
        assert engine_end.poll(120), "the worker went quiet"
        msg = engine_end.recv()
        assert not isinstance(msg, (Failed, Fatal)), msg
        if isinstance(msg, Finished):
            finished[msg.job_id] = msg
    engine_end.send(Stop())
    th.join(60)
    assert not th.is_alive()
    # the first two were finished beside the next job's model pass, on the measured share (one
    # thread of two cores); the last alone, on both cores
    assert worker.widths[0] == (False, 1)
    assert worker.widths[-1] == (True, 2)
    assert worker.held == 0
    digests = {m.sha256 for m in finished.values()}
    assert len(digests) == 1, "finishing on more threads changed the output"
    assert all((tmp_path / f"p{i}.png").stat().st_size == finished[f"j{i}"].bytes for i in range(3))


def test_the_second_opinion_opens_while_the_model_loads(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    if not store.info("u2netp").installed:
        pytest.skip("u2netp (IS-Net's second opinion) is not installed")
    monkeypatch.setattr(second_opinion, "_sessions", {})  # nothing opened by earlier tests
    engine_end, worker_end = mp.Pipe(duplex=True)
    worker = Worker(worker_end, config(store, "isnet", cores=2))
    th = serve(worker)
    assert engine_end.poll(120)
    msg = engine_end.recv()
    assert isinstance(msg, Ready), msg
    deadline = time.monotonic() + 60
    while not any(name == "u2netp" for _, name in second_opinion._sessions) and time.monotonic() < deadline:
        time.sleep(0.02)
    opened = [name for _, name in second_opinion._sessions]
    engine_end.send(Stop())
    th.join(60)
    assert opened == ["u2netp"], "no job was sent: only the worker's start could have opened it"
