"""The one job state machine: legal moves, illegal ones refused, JSON-able jobs and events."""

import json

import pytest

from alphacut.errors import QueueFullError
from alphacut.jobs.state import ALLOWED, FINAL, IllegalTransition, Job, JobEvent, Stage, transition
from alphacut.pipeline import Options


def make() -> Job:
    return Job(name="a.png", options=Options())


def test_happy_path_and_timings() -> None:
    job = make()
    for st in ("decoding", "inferring", "inferring", "refining", "encoding", "verifying", "done"):
        transition(job, st, 0.5)
    assert job.stage is Stage.DONE and job.progress == 1.0 and job.finished is not None
    assert set(job.timings) == {"decoding", "inferring", "refining", "encoding", "verifying"}
    json.dumps(job.public())
    ev = JobEvent(job.id, job.stage, 1.0, "done", 0.0, job.public())
    assert json.loads(json.dumps(ev.public()))["stage"] == "done"


@pytest.mark.parametrize("path", [
    ("inferring",), ("decoding", "encoding"), ("decoding", "inferring", "done"), ("done",),
])
def test_skipping_stages_is_refused(path: tuple[str, ...]) -> None:
    job = make()
    with pytest.raises(IllegalTransition):
        for st in path:
            transition(job, st)


@pytest.mark.parametrize("final", sorted(s.value for s in FINAL))
def test_final_stages_are_final(final: str) -> None:
    job = make()
    if final == "done":
        for st in ("decoding", "inferring", "refining", "encoding", "verifying"):
            transition(job, st)
    transition(job, final, reason="x")
    for st in Stage:
        with pytest.raises(IllegalTransition):
            transition(job, st)


def test_failure_and_requeue() -> None:
    job = make()
    transition(job, "decoding")
    transition(job, "inferring")
    transition(job, "queued")  # its worker died for another job's fault
    assert job.progress == 0.0
    transition(job, "decoding")
    transition(job, "failed", reason="a.png: the PNG file is corrupt", code="corrupt")
    assert job.reason == "a.png: the PNG file is corrupt" and job.error_code == "corrupt"
    assert all(Stage.CANCELLED in ALLOWED[s] for s in Stage if not s.final)


def test_queue_full_error_contract() -> None:
    err = QueueFullError()
    assert err.code == "queue-full" and err.exit_code == 75 and err.retry_after > 0
