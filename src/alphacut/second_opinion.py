"""The best tier's second opinion: a different model's matte, fused with the chosen one's.

Only where it was measured to pay (see ``matte/fuse.py`` and docs/quality.md): IS-Net's
best tier asks U²-Netp (4.5 MB, one pass at 320² costs a fraction of IS-Net's). The helper
comes from the same model store as the chosen model and is pulled like any model when
missing; when it cannot be had (offline, not installed) the best tier runs without it and
says so in the cutout's warnings.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .errors import AlphacutError
from .matte.predict import Runner
from .models.catalog import ModelSpec, get_spec

__all__ = ["HELPERS", "Helper", "HelperLoader", "helper_loader"]

#: chosen model -> the model asked for a second opinion in the best tier
HELPERS: dict[str, str] = {"isnet": "u2netp"}

Helper = tuple[Runner, ModelSpec]
#: given the chosen model's name: the helper session and spec, or None (with a reason)
HelperLoader = Callable[[str], "tuple[Helper | None, str | None]"]

_sessions: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def helper_loader(store: Any = None) -> HelperLoader:
    """A loader that finds helpers in ``store`` (default: the user's model store); sessions
    are loaded once per process and shared."""

    def load(model: str) -> tuple[Helper | None, str | None]:
        name = HELPERS.get(model)
        if name is None:
            return None, None
        from .models.session import open_session
        from .models.store import ModelStore

        st = store or ModelStore()
        key = (str(st.home), name)
        with _lock:
            session = _sessions.get(key)
            if session is None:
                try:
                    session = _sessions[key] = open_session(st, name)
                except AlphacutError as exc:
                    return None, f"best quality ran without its second opinion ({name}): {exc}"
        return (session, get_spec(name)), None

    return load
