"""The second opinion: a different model's matte, weighed against the chosen one's.

IS-Net misses whole parts of some subjects (a dog's body left as a faint ghost) and U²-Netp
(4.5 MB, one pass at 320² costs a small fraction of IS-Net's) often sees them, so both tiers
ask it, and ``matte.decide`` decides each region where the two disagree (docs/quality.md). The
helper comes from the same model store as the chosen model, but only when it is installed
(``scripts/setup.sh`` pulls it): nothing is fetched behind the user's back. Without it the
cutout runs on the chosen model alone and says so in its warnings.

Also here: the best tier's extra *views* (``VIEWS``): the chosen model run again at another
input size, its log-odds averaged with the first pass's (``matte.fuse.mean_log_odds``) before
the helper is asked. None is assigned today. IS-Net at 768² besides 1024² paid while the
helper's opinion was added in log-odds (alphamatting-dev SAD 52.33 -> 49.08), but with the
decided fusion it costs: the smaller view sees less of a subject's thin or faint parts, the
average weakens what the 1024² pass was sure of, and more regions are decided against the
subject (sod-dev objects, coarse mattes: mean IoU 0.750 -> 0.739, gross failures 40 -> 46;
alphamatting-dev SAD 45.5 -> 47.4). docs/quality.md.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

from .errors import AlphacutError
from .matte.predict import Runner
from .models.catalog import ModelSpec, get_spec

__all__ = ["HELPERS", "VIEWS", "Helper", "HelperLoader", "ViewLoader", "helper_loader", "view_loader"]

#: chosen model -> the model asked for a second opinion (both tiers)
HELPERS: dict[str, str] = {"isnet": "u2netp"}

#: chosen model -> the other input sizes it also runs at in the best tier (square models)
VIEWS: dict[str, tuple[int, ...]] = {}

Helper = tuple[Runner, ModelSpec]
#: given the chosen model's name: the helper session and spec, or None (with a reason)
HelperLoader = Callable[[str], "tuple[Helper | None, str | None]"]
#: given the chosen model's spec: a session and spec per extra view (none when it has none)
ViewLoader = Callable[[ModelSpec], "list[Helper]"]

_sessions: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def helper_loader(store: Any = None) -> HelperLoader:
    """A loader that finds helpers in ``store`` (default: the user's model store), installed
    ones only (a missing helper is a warning, never a download); sessions are loaded once per
    process and shared."""

    def load(model: str) -> tuple[Helper | None, str | None]:
        name = HELPERS.get(model)
        if name is None:
            return None, None
        from .models.session import open_session
        from .models.store import ModelStore

        st = store or ModelStore()
        info = st.info(name)
        if not info.installed or info.verified == "mismatch":
            state = "not installed" if not info.installed else "damaged"
            return None, (f"ran on {model} alone, without its second opinion: {name} is {state}"
                          f" (`alphacut models pull {name}` adds it)")
        try:
            session = _shared_session(st, name, lambda: open_session(st, name))
        except AlphacutError as exc:
            return None, f"ran on {model} alone, without its second opinion ({name}): {exc}"
        return (session, get_spec(name)), None

    return load


def view_loader(store: Any = None) -> ViewLoader:
    """A loader for the chosen model's extra views (``VIEWS``), from ``store`` (default: the
    user's model store); sessions are loaded once per process and shared. A view that cannot
    be built is left out: the tier then runs with the views it has."""

    def load(spec: ModelSpec) -> list[Helper]:
        from .models.session import ModelSession
        from .models.store import ModelStore

        st = store or ModelStore()
        found: list[Helper] = []
        for size in VIEWS.get(spec.name, ()):
            def open_view(size: int = size) -> Any:
                path = st.view_file(spec.name, size)
                return None if path is None else ModelSession(path)

            try:
                session = _shared_session(st, f"{spec.name}@{size}", open_view)
            except AlphacutError:
                continue
            if session is not None:
                found.append((session, dataclasses.replace(spec, input_size=size)))
        return found

    return load


def _shared_session(store: Any, key: str, open_session: Callable[[], Any]) -> Any:
    """The session for ``key`` in ``store``, opened once per process (under a lock) and shared;
    ``open_session`` may return None (nothing to open: not cached, asked again next time)."""
    cache_key = (str(store.home), key)
    with _lock:
        session = _sessions.get(cache_key)
        if session is None:
            session = open_session()
            if session is not None:
                _sessions[cache_key] = session
        return session
