"""The second opinion: a different model's matte, weighed against the chosen one's.

IS-Net misses whole parts of some subjects (a dog's body left as a faint ghost) and U²-Netp
(4.5 MB, one pass at 320² costs a small fraction of IS-Net's) often sees them, so both tiers
ask it, and ``matte.decide`` decides each region where the two disagree (docs/quality.md). The
helper comes from the same model store as the chosen model, but only when it is installed
(``scripts/setup.sh`` pulls it): nothing is fetched behind the user's back. Without it the
cutout runs on the chosen model alone and says so in its warnings.

No second *view* of the chosen model is run (IS-Net again at 768², its log-odds averaged with
the 1024² pass: the best tier did that until the decided fusion). It paid while the helper's
opinion was added in log-odds (alphamatting-dev SAD 52.33 -> 49.08), but with the decided
fusion it cost: the smaller view sees less of a subject's thin or faint parts, the average
weakened what the 1024² pass was sure of, and more regions were decided against the subject
(sod-dev objects, coarse mattes: mean IoU 0.750 -> 0.739, gross failures 40 -> 46;
alphamatting-dev SAD 45.5 -> 47.4). docs/quality.md.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .errors import AlphacutError
from .matte.predict import Runner
from .models.catalog import ModelSpec, get_spec

__all__ = ["HELPERS", "Helper", "HelperLoader", "helper_loader"]

#: chosen model -> the model asked for a second opinion (both tiers)
HELPERS: dict[str, str] = {"isnet": "u2netp"}

Helper = tuple[Runner, ModelSpec]
#: given the chosen model's name: the helper session and spec, or None (with a reason)
HelperLoader = Callable[[str], "tuple[Helper | None, str | None]"]

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

        def open_installed() -> Any:  # asked only until a session is open, not per image
            info = st.info(name)
            return open_session(st, name) if info.installed and info.verified != "mismatch" else None

        try:
            session = _shared_session(st, name, open_installed)
        except AlphacutError as exc:
            return None, f"ran on {model} alone, without its second opinion ({name}): {exc}"
        if session is None:
            state = "damaged" if st.info(name).installed else "not installed"
            return None, (f"ran on {model} alone, without its second opinion: {name} is {state}"
                          f" (`alphacut models pull {name}` adds it)")
        return (session, get_spec(name)), None

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
