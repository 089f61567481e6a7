"""The job engine with the real u2netp model and real faults in real worker processes.

Faults come from the tests' worker (``support.faulty_worker``, a subclass of the product's
``Worker`` run in each real worker process, driven by ``ALPHACUT_TEST_FAULT``): the worker really
SIGKILLs itself, calls ``os._exit``, segfaults, hangs or allocates memory — nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import QueueFullError
from alphacut.jobs.engine import JobEngine
from alphacut.jobs.state import Stage
from alphacut import pipeline
from alphacut.pipeline import Options
from conftest import encode_image, subject_image
from support.faulty_worker import FAULT_ENV, faulty_worker_main

OPTS = Options(model="u2netp")


def images(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, n in enumerate(names):
        p = folder / n
        p.write_bytes(encode_image(subject_image(160, 120, seed=i), "PNG"))
        out.append(p)
    return out


def wait_for(pred, timeout: float = 60.0) -> None:
    t = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def test_stage_events_outputs_and_artifacts(tmp_path: Path) -> None:
    [src] = images(tmp_path / "in", ["one.png"])
    seen: list[tuple[str, str]] = []
    with JobEngine("u2netp", workers=1, artifacts_dir=tmp_path / "art") as eng:
        eng.subscribe(lambda ev: seen.append((ev.job_id, ev.stage.value)))
        job = eng.submit(src, options=OPTS, output=tmp_path / "out" / "one.png")
        job = eng.wait(job.id, 120)
        assert job.stage is Stage.DONE, job.reason
        # subscribers are called outside the engine's lock: the final event may land just after wait()
        wait_for(lambda: (job.id, "done") in seen, 10)
        stages = list(dict.fromkeys(s for j, s in seen if j == job.id))
        assert stages == ["queued", "decoding", "inferring", "refining", "encoding", "verifying", "done"]
        assert job.provider == "CPUExecutionProvider" and job.output_sha256
        assert {"predict", "encode", "inferring"} <= set(job.timings)
        data = (tmp_path / "out" / "one.png").read_bytes()
        cut = eng.load_cutout(job)
        assert cut.matte.dtype == np.float32 and cut.matte.shape == (120, 160)
        again = pipeline.render(cut, OPTS)
        a1 = np.asarray(Image.open(tmp_path / "out" / "one.png"))
        import io
        a2 = np.asarray(Image.open(io.BytesIO(again)))
        assert np.array_equal(a1, a2)
        assert len(data) == job.output_bytes
        # bytes in, output in the engine's own place
        job2 = eng.wait(eng.submit(src.read_bytes(), name="bytes.png", options=OPTS).id, 60)
        assert job2.ok and Path(job2.output_path).is_file()


def test_real_faults_fail_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["a.png", "exit.png", "b.png", "segv.png", "c.png", "bloat.png", "d.png", "hang.png", "e.png"]
    srcs = images(tmp_path / "in", names)
    monkeypatch.setenv(FAULT_ENV, "exit:exit.png;segv:segv.png;bloat:bloat.png;hang:hang.png")
    with JobEngine("u2netp", workers=1, job_timeout=6, max_rss_mb=700, worker_main=faulty_worker_main) as eng:
        jobs = {p.name: eng.submit(p, options=OPTS, output=tmp_path / "out" / p.name) for p in srcs}
        for j in jobs.values():
            eng.wait(j.id, 240)
    status = {n: (j.stage.value, j.error_code) for n, j in jobs.items()}
    assert status == {
        "a.png": ("done", None), "b.png": ("done", None), "c.png": ("done", None),
        "d.png": ("done", None), "e.png": ("done", None),
        "exit.png": ("failed", "worker-crashed"), "segv.png": ("failed", "worker-crashed"),
        "bloat.png": ("failed", "memory-limit"), "hang.png": ("failed", "timeout"),
    }
    assert "exit.png" in jobs["exit.png"].reason and "status 3" in jobs["exit.png"].reason
    assert "SIGSEGV" in jobs["segv.png"].reason
    assert "700 MB" in jobs["bloat.png"].reason
    assert "6 s" in jobs["hang.png"].reason
    assert "Traceback" not in "".join(j.reason or "" for j in jobs.values())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png", "d.png", "e.png"]


def test_external_sigkill_mid_inference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim, *others = images(tmp_path / "in", ["victim.png", "x.png", "y.png"])
    monkeypatch.setenv(FAULT_ENV, "hang:victim.png")  # keeps it inside inference until we kill it
    with JobEngine("u2netp", workers=1, job_timeout=None, worker_main=faulty_worker_main) as eng:
        vj = eng.submit(victim, options=OPTS, output=tmp_path / "out" / "victim.png")
        wait_for(lambda: vj.stage is Stage.INFERRING)
        rest = [eng.submit(p, options=OPTS, output=tmp_path / "out" / p.name) for p in others]
        os.kill(vj.worker_pid, signal.SIGKILL)  # like the kernel's OOM killer
        eng.wait(vj.id, 60)
        for j in rest:
            eng.wait(j.id, 120)
    assert vj.stage is Stage.FAILED and vj.error_code == "worker-crashed"
    assert "victim.png" in vj.reason and "SIGKILL" in vj.reason
    assert all(j.ok for j in rest)


def test_cancel_queued_and_mid_inference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srcs = images(tmp_path / "in", ["hang.png", "p1.png", "p2.png", "p3.png", "p4.png", "p5.png"])
    monkeypatch.setenv(FAULT_ENV, "hang:hang.png")
    with JobEngine("u2netp", workers=1, job_timeout=None, worker_main=faulty_worker_main) as eng:
        jobs = [eng.submit(p, options=OPTS, output=tmp_path / "out" / p.name) for p in srcs]
        assert eng.cancel(jobs[-1].id)  # still queued: cancelled at once
        assert jobs[-1].stage is Stage.CANCELLED
        wait_for(lambda: jobs[0].stage is Stage.INFERRING)
        pid = jobs[0].worker_pid
        assert eng.cancel(jobs[0].id)  # mid-inference: its worker is ended and replaced
        assert not eng.cancel(jobs[0].id)
        for j in jobs[1:-1]:
            eng.wait(j.id, 120)
        assert all(j.ok for j in jobs[1:-1])
        assert pid not in eng.worker_pids()
    assert jobs[0].stage is Stage.CANCELLED and jobs[-1].stage is Stage.CANCELLED


def test_queue_full_and_cancel_all(tmp_path: Path) -> None:
    [src] = images(tmp_path / "in", ["q.png"])
    with JobEngine("u2netp", workers=1, max_queue=2) as eng:
        a = eng.submit(src, options=OPTS)
        b = eng.submit(src, options=OPTS)
        if eng.stats()["queued"] >= 2:  # nothing dispatched yet (the worker is still starting)
            with pytest.raises(QueueFullError) as exc:
                eng.submit(src, options=OPTS)
            assert exc.value.exit_code == 75 and exc.value.code == "queue-full"
        assert eng.cancel_all() >= 1
        assert all(eng.wait(j.id, 30).final for j in (a, b))


def test_isolate_job_gives_each_job_a_fresh_process(tmp_path: Path) -> None:
    srcs = images(tmp_path / "in", ["i1.png", "i2.png", "i3.png"])
    with JobEngine("u2netp", workers=1, isolate="job") as eng:
        jobs = [eng.submit(p, options=OPTS, output=tmp_path / "out" / p.name) for p in srcs]
        for j in jobs:
            assert eng.wait(j.id, 120).ok, j.reason
    assert len({j.worker_pid for j in jobs}) == 3


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_artifacts_on_a_full_disk_are_disk_full_and_leave_nothing(tmp_path: Path) -> None:
    """A real ENOSPC: the matte's temporary file is a link to /dev/full."""
    from alphacut.errors import DiskFullError
    from alphacut.imageio.decode import decode
    from alphacut.jobs.artifacts import save_artifacts
    from alphacut.pipeline import Cutout

    pic = decode(encode_image(subject_image(64, 48), "PNG"), name="x.png")
    cutout = Cutout(pic, np.full((48, 64), 0.5, np.float32), pic.rgb, Options())
    job = tmp_path / "job"
    job.mkdir()
    (job / ".matte.npy.part").symlink_to("/dev/full")
    with pytest.raises(DiskFullError, match="disk is full"):
        save_artifacts(job, cutout, "x.png")
    assert list(job.iterdir()) == [], "no partial or temporary file is left"
