"""Models on every node: each node ensures and verifies its own copy through the model store.

Before any image is read, one small task runs on every alive node (pinned there) and calls
``ensure_here``: the node's model store (``ALPHACUT_HOME`` on that node, which may be a shared
cache path) gets each model the batch needs, verified by sha256, from

- ``source`` when the user gives one: a folder (a shared filesystem) or an object-store
  prefix (``s3://bucket/models``) holding the model files under their catalog file names; the
  file is imported through ``ModelStore.import_file``, which checks its sha256 against the
  catalog, so a wrong or damaged file is refused;
- otherwise the store's own sources (the registry), which a warm cache never contacts: an
  installed, stamped model costs a stat(), so nodes work offline once warm.

A node that cannot get a model fails the batch before it starts, with the node and the reason
(``ModelError``), instead of every image failing on it later. Actors call ``ensure_here``
again when they start, which is a stat() on a prepared node and covers nodes that joined later.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from ..errors import AlphacutError, ModelError
from ..models.catalog import get_spec
from ..second_opinion import HELPERS


def models_for(model: str, store: Any) -> list[str]:
    """The batch's model, plus its second opinion's helper when the driver has it installed
    (so every node computes what the local engine would; never fetched behind the user's back
    otherwise)."""
    names = [model]
    helper = HELPERS.get(model)
    if helper is not None and store.info(helper).installed:
        names.append(helper)
    return names


def ensure_here(names: list[str], source: str | None = None, *, accept_license: bool = False) -> dict[str, str]:
    """On this node: every model in ``names`` installed and verified; {name: path}.
    Raises ModelError naming this node when one cannot be had."""
    from ..models.store import ModelStore

    store = ModelStore()
    paths: dict[str, str] = {}
    for name in names:
        try:
            if source is not None and not _installed_ok(store, name):
                _import_from(store, name, source)
            paths[name] = str(store.ensure(name, accept_license=accept_license))
        except AlphacutError as exc:
            raise ModelError(f"node {socket.gethostname()} ({store.dir}): {exc}") from None
    return paths


def _installed_ok(store: Any, name: str) -> bool:
    info = store.info(name)
    return info.installed and info.verified != "mismatch"


def _import_from(store: Any, name: str, source: str) -> None:
    """Copy ``<source>/<filename>`` into the store, verified (``import_file`` checks sha256)."""
    from .. import objstore

    filename = get_spec(name).filename
    if objstore.is_uri(source):
        uri = objstore.join(source, filename)
        data = objstore.read(uri)
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            del data
            store.import_file(tmp, name)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return
    path = Path(source).expanduser() / filename
    if not path.is_file():
        raise ModelError(f"model {name!r}: {path} does not exist (the --model-source folder must hold {filename})")
    store.import_file(path, name)


def prepare_all(names: list[str], source: str | None = None, *, accept_license: bool = False,
                timeout: float = 600.0) -> dict[str, dict[str, str]]:
    """Run ``ensure_here`` on every alive node (pinned to it, no CPU reserved, so it runs even
    on a busy cluster); {node id: {name: path}}. ModelError listing every node that failed."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote = ray.remote(num_cpus=0, max_retries=1)(ensure_here)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {n["NodeID"]: remote.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
    ).remote(names, source, accept_license=accept_license) for n in nodes}
    done: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    for node, ref in refs.items():
        try:
            done[node] = ray.get(ref, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - each node's failure is reported by name
            cause = getattr(exc, "cause", None) or exc
            errors.append(str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__)
    if errors:
        raise ModelError("the models could not be made ready on every node:\n  " + "\n  ".join(errors))
    return done
