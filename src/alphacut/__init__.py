"""alphacut: private, professional background removal on your own machine."""

__version__ = "0.1.0"
