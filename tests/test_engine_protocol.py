"""One ``Engine`` protocol: the product's engine, the server's pool and the tests' thread engine
all offer it, with the same parameters, so the server and the batch runner need no shim."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from alphacut.jobs.engine import JobEngine
from alphacut.jobs.protocol import Engine
from alphacut.models.store import ModelStore
from alphacut.server.state import EnginePool
from support.engine import ThreadEngineForTests

MEMBERS = [name for name in dir(Engine) if not name.startswith("_")]


def params(fn: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


def test_the_protocol_says_what_the_server_and_the_batch_use() -> None:
    assert set(MEMBERS) == {"capacity", "submit", "get", "jobs", "cancel", "cancel_all", "forget", "wait",
                            "subscribe", "load_cutout", "close"}


@pytest.mark.parametrize("cls", [JobEngine, EnginePool, ThreadEngineForTests])
def test_every_engine_takes_the_protocols_parameters(cls: type) -> None:
    for name in MEMBERS:
        ours = getattr(Engine, name)
        theirs = getattr(cls, name)
        if isinstance(ours, property):
            assert isinstance(theirs, property), f"{cls.__name__}.{name} is not a property"
            continue
        want = params(ours)
        got = params(theirs)
        assert got[:len(want)] == want, f"{cls.__name__}.{name}{got} does not take {want}"
        assert all(p.default is not inspect.Parameter.empty or p.kind is inspect.Parameter.VAR_KEYWORD
                   for p in list(inspect.signature(theirs).parameters.values())[len(want):]), \
            f"{cls.__name__}.{name} needs more than the protocol gives"


def test_instances_are_engines(store: ModelStore, tmp_path: Path) -> None:
    engine = JobEngine("u2netp", model_path=store.ensure("u2netp"), workers=1)  # no process until work comes
    tests_engine = ThreadEngineForTests(model="u2netp", store=store)
    pool = EnginePool(lambda model: tests_engine)
    try:
        assert isinstance(engine, Engine) and isinstance(pool, Engine) and isinstance(tests_engine, Engine)
        assert engine.capacity == 3 and tests_engine.capacity == 1
        assert pool.capacity == 0 and pool.engine_for("u2netp") is tests_engine and pool.capacity == 1
    finally:
        pool.close()
        engine.close()
