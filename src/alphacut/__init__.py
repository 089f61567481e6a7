"""alphacut: private, professional background removal on your own machine.

>>> import alphacut
>>> result = alphacut.remove("photo.jpg")
>>> result.save("photo.png")

The public names are imported on first use, so ``import alphacut`` (and the ``alphacut``
command's start, see ``launch``) stays cheap until the pipeline is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AlphacutError", "Compose", "Encode", "Options", "Remover", "Result", "remove", "__version__"]

if TYPE_CHECKING:
    from .api import Remover, Result, remove
    from .errors import AlphacutError
    from .options import Compose, Encode, Options

_HOMES = {"Remover": "api", "Result": "api", "remove": "api", "AlphacutError": "errors", "Options": "options",
          "Compose": "options", "Encode": "options"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'alphacut' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
