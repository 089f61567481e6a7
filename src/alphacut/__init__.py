"""alphacut: private, professional background removal on your own machine.

>>> import alphacut
>>> result = alphacut.remove("photo.jpg")
>>> result.save("photo.png")
"""

from .api import Remover, Result, remove
from .errors import AlphacutError
from .pipeline import Options

__version__ = "0.1.0"
__all__ = ["AlphacutError", "Options", "Remover", "Result", "remove", "__version__"]
