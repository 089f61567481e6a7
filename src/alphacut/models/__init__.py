"""Models: the catalog, the on-disk store (pull/verify/import/export) and ONNX sessions."""

from .catalog import CATALOG, DEFAULT_MODEL, ModelSpec, get_spec
from .session import ModelSession, provider_chain
from .store import ModelInfo, ModelStore

__all__ = [
    "CATALOG", "DEFAULT_MODEL", "ModelInfo", "ModelSession", "ModelSpec", "ModelStore",
    "get_spec", "provider_chain",
]
