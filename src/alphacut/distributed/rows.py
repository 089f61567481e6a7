"""What runs inside Ray's actors: one row (one input) through ``steps.Stages``.

The three steps are the halves the local engine's workers run, called the same way, each on a
pool of long-lived actors:

- ``Decode`` (CPU) runs ``decode_row``: ``Stages.decode`` reads the item (file, ZIP member or
  object) and decodes it;
- ``Infer`` (each holding one model session, on a GPU when the cluster has them):
  ``Stages.infer``, every model pass;
- ``Finish`` (CPU) runs ``finish_row``: ``Stages.finish`` + ``Stages.render`` (upsample, refine,
  decontaminate, compose, encode, **verify**), then the sink writes the verified bytes
  (temporary name + rename on a filesystem, write-then-verify on an object store).

Each actor asks the run's tally (``attempts``) before a row, so a file whose process keeps
dying is failed instead of run forever.

Every step catches its own errors and turns them into the row's ``status``/``code``/``reason``
(the manifest's fields): Ray Data drops a whole block when a function raises, and a file must
never vanish from the manifest because another one was bad. A row that failed passes through
the later steps untouched. Between the steps the decoded picture or the coarse matte travels
as one pickled column (``payload``); the finish step returns only the small record, so the
driver never receives pixels.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import socket
import time
from typing import Any

from ..errors import AlphacutError, UnsupportedFormatError, WorkerCrashedError, plain_reason
from ..imageio.decode import read_input
from ..imageio.formats import SNIFF_BYTES, sniff
from ..inputs import Item, opener
from ..models.catalog import get_spec
from ..options import Options
from ..steps import Stages, timed

Row = dict[str, Any]




def _dumps(obj: Any) -> bytes:
    """Pickled with Ray's cloudpickle when there is Ray (a document part's reader is a closure),
    else plain pickle; ``pickle.loads`` reads both."""
    try:
        from ray import cloudpickle
    except ImportError:
        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


def new_row(idx: int, item: Item, output_rel: str) -> Row:
    """The row the driver puts in the dataset for one input: small, no pixels."""
    return {"idx": idx, "item": _dumps(item), "name": item.name, "output_rel": output_rel,
            "status": "", "code": None, "reason": None, "payload": b"", "provider": "", "warnings": "[]",
            "timings": "{}", "sha256": None, "bytes": None, "output": None, "node": "",
            "started": 0.0, "finished": 0.0}


def _fail(row: Row, exc: BaseException) -> Row:
    code, reason = plain_reason(exc)
    name = row["name"]
    row.update(status="failed", code=code, reason=reason if name in reason else f"{name}: {reason}",
               payload=b"", finished=time.time())
    return row


class _NoModel:
    """Decode tasks hold no model: ``Stages`` is built with this loader, which is never called
    by ``decode`` (asking it for the session is a bug, said plainly)."""

    def __call__(self) -> Any:
        raise RuntimeError("a decode task has no model session")


class RanOn:
    """The session that ran the model passes, as a finishing task on another process sees it:
    its provider and warnings, which ``Stages.finish`` attaches to the cutout. It runs nothing."""

    def __init__(self, provider: str, warnings: list[str]) -> None:
        self.provider = provider
        self.warnings = warnings

    def run(self, x: Any) -> Any:
        raise RuntimeError("the model ran in an actor; a finishing task runs no model")


def refuse_clips(head: bytes, name: str) -> None:
    """A clip (video or animation) is refused in a ``--ray`` batch, with the reason: its
    temporal stage needs every frame in order on one actor, which the executor does not do yet.
    Stills and a document's parts go on."""
    try:
        kind = sniff(head, name=name).kind
    except AlphacutError:
        return  # empty or unknown: the decoder reports it, as everywhere
    if kind in ("video", "animation"):
        raise UnsupportedFormatError(f"a {kind} in a --ray batch is not supported yet (its frames must "
                                     "be cut in order on one actor); run it without --ray", path=name)


def _read(source: Any) -> bytes:
    """An item's bytes (``inputs.opener``'s path or reader), with the decoder's errors."""
    return source() if callable(source) else read_input(source)[0]


def decode_row(row: Row, *, model: str, options: Options) -> Row:
    """CPU step: read and decode one input (``Stages.decode``); clips are refused."""
    row["started"] = time.time()
    try:
        item: Item = pickle.loads(row["item"])
        stages = Stages(None, get_spec(model), load=_NoModel())
        data = _read(opener(item))
        refuse_clips(data[:SNIFF_BYTES], item.name)
        decoded = stages.decode(data, name=item.name, options=options)
        del data
        row["payload"] = pickle.dumps(decoded, protocol=5)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the row's reason
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return _fail(row, exc)
    return row


_DOING = {"decode": "decoding it", "infer": "running the model on it", "finish": "finishing it"}


def _guarded(starts: Any, row: Row, step: Any) -> Row:
    """Run ``step(row)`` unless the row failed already or has been started too often on this
    step (its process died each time: ``attempts.Tally``); the tally forgets it afterwards."""
    if row["status"]:
        return row
    died = starts.too_many(row["idx"])
    if died:
        starts.end(row["idx"])
        doing = _DOING.get(starts.step, starts.step)
        return _fail(row, WorkerCrashedError(
            f"the process {doing} died {died} times (killed, out of memory, or a crash in native code); "
            "not tried again", path=row["name"]))
    try:
        return step(row)
    finally:
        starts.end(row["idx"])


class Decode:
    """Actor: ``decode_row`` for every row it is given. A long-lived process (not a task per
    block): Ray's worker pool reaps idle task workers beyond a node's CPU count within a second,
    so quarter-CPU tasks had it start a new Python process — imports and all — for most blocks."""

    def __init__(self, model: str, options: Options, tally: Any = None, limit: int = 4) -> None:
        from .attempts import Starts

        self.model, self.options = model, options
        self.starts = Starts(tally, limit, "decode")

    def __call__(self, row: Row) -> Row:
        return _guarded(self.starts, row, lambda r: decode_row(r, model=self.model, options=self.options))


class Infer:
    """Actor: one model session (``Stages``) for its lifetime; every model pass of each row.

    It makes sure its node has the models first (``nodes.ensure_here``: a stat() on a node
    prepared before the batch started), so an actor restarted on a new node works too. Ray Data
    re-runs a row whose actor died without end; ``tally`` (``attempts.Tally``) bounds that: a
    row started more than ``limit`` times is failed as ``worker-crashed`` instead.
    """

    def __init__(self, model: str, options: Options, names: list[str], source: str | None,
                 threads: int | None, accept_license: bool = False, tally: Any = None,
                 limit: int = 4) -> None:
        from ..models.session import open_session
        from ..models.store import ModelStore
        from .attempts import Starts
        from .nodes import ensure_here

        ensure_here(names, source, accept_license=accept_license)
        store = ModelStore()
        session = open_session(store, model, threads=threads)
        self.stages = Stages(session, get_spec(model), store=store)
        self.options = options
        self.node = socket.gethostname()
        self.starts = Starts(tally, limit, "infer")

    def __call__(self, row: Row) -> Row:
        return _guarded(self.starts, row, self._infer)

    def _infer(self, row: Row) -> Row:
        try:
            decoded = pickle.loads(row["payload"])
            inferred = self.stages.infer(decoded, self.options)
            row["payload"] = pickle.dumps(inferred, protocol=5)
            row["provider"] = self.stages.provider
            row["warnings"] = json.dumps(list(getattr(self.stages.session, "warnings", [])))
            row["node"] = self.node
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return _fail(row, exc)
        return row


class Finish:
    """Actor: ``finish_row`` for every row it is given (long-lived, as ``Decode``)."""

    def __init__(self, model: str, options: Options, sink: Any, tally: Any = None, limit: int = 4) -> None:
        from .attempts import Starts

        self.model, self.options, self.sink = model, options, sink
        self.starts = Starts(tally, limit, "finish")

    def __call__(self, row: Row) -> Row:
        return _guarded(self.starts, row,
                        lambda r: finish_row(r, model=self.model, options=self.options, sink=self.sink))


def finish_row(row: Row, *, model: str, options: Options, sink: Any) -> Row:
    """CPU step: ``Stages.finish`` + ``Stages.render`` (verified bytes), then the sink writes
    them; the row comes back without pixels."""
    if row["status"]:
        return row
    try:
        inferred = pickle.loads(row["payload"])
        row["payload"] = b""
        stages = Stages(RanOn(row["provider"], json.loads(row["warnings"])), get_spec(model))
        cutout = stages.finish(inferred)
        data = stages.render(cutout, options, name=row["name"])
        timings = cutout.timings  # decode, the model passes, finish, encode, verify: the stages'
        del cutout, inferred
        with timed(timings, "write"):
            where = sink.write(row["output_rel"], data)
        row.update(status="done", output=where, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
                   timings=json.dumps(timings), finished=time.time())
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return _fail(row, exc)
    return row
