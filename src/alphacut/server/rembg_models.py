"""rembg's model names → the alphacut model that runs for them (``--rembg-api``).

rembg 2.0.86 knows 22 session names (``rembg/sessions/__init__.py``). Many clients send one
explicitly, most often rembg's old default ``u2net``. Each name falls in one group:

- **general** (salient-object models): the same model where alphacut has it installed, else
  alphacut's best installed general model;
- **person** (``u2net_human_seg``, ``birefnet-portrait``): MODNet (portrait matting) when
  installed, else a general model (they cut people out too);
- **non-commercial** (``bria-rmbg`` = BRIA RMBG-2.0): only when the server was started with
  ``--accept-license``, and only when installed;
- **refused**, with the reason: models for another task (SAM needs prompts, cloth
  segmentation returns three garment masks, camouflage and anime models), custom models (the
  request would name a model file on the server) and cloud sessions (they send the image to
  a third party).

alphacut's own names (``isnet``, ``modnet``, ...) are accepted as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..models.catalog import CATALOG, get_spec

#: alphacut's general models, best first: what a rembg general name runs when its own is absent
GENERAL = ("isnet", "isnet-general-use", "birefnet-general-lite", "birefnet-general", "isnet-small", "u2netp")
PERSON = ("modnet",)

#: rembg 2.0.86 name -> alphacut models to try, in order
CANDIDATES: dict[str, tuple[str, ...]] = {
    "u2net": GENERAL,
    "u2netp": ("u2netp", *GENERAL),
    "silueta": GENERAL,
    "isnet-general-use": ("isnet-general-use", *GENERAL),
    "birefnet-general": ("birefnet-general", *GENERAL),
    "birefnet-general-lite": ("birefnet-general-lite", *GENERAL),
    "birefnet-general-fp16": ("birefnet-general", *GENERAL),
    "birefnet-dis": ("birefnet-general", *GENERAL),
    "birefnet-hrsod": ("birefnet-general", *GENERAL),
    "birefnet-massive": ("birefnet-general", *GENERAL),
    "u2net_human_seg": (*PERSON, *GENERAL),
    "birefnet-portrait": (*PERSON, *GENERAL),
}
#: non-commercial licences: need the server's --accept-license
NON_COMMERCIAL: dict[str, tuple[str, ...]] = {"bria-rmbg": ("rmbg-2.0", "rmbg-1.4")}
REFUSED: dict[str, str] = {
    "sam": "Segment Anything needs point or box prompts; alphacut has no promptable model",
    "u2net_cloth_seg": "cloth segmentation returns three garment masks, not a cutout; alphacut has no such model",
    "birefnet-cod": "camouflaged-object detection is a different task; alphacut has no such model",
    "isnet-anime": "the anime-character model is not available in alphacut",
    "u2net_custom": "a request cannot make the server load a model file; install it with `alphacut models import`",
    "dis_custom": "a request cannot make the server load a model file; install it with `alphacut models import`",
    "ben_custom": "a request cannot make the server load a model file; install it with `alphacut models import`",
    "withoutbg": "this rembg session sends the image to a cloud service; alphacut never sends images anywhere",
    "atlascloud": "this rembg session sends the image to a cloud service; alphacut never sends images anywhere",
}
LICENCE_FLAG = "--accept-license"


class ModelChoiceError(Exception):
    """A model name that cannot run: ``status`` (400/403/409), ``code`` and a reason that lists
    what can run."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass(frozen=True)
class ModelChoice:
    requested: str
    model: str
    #: "same" (the model asked for), "mapped" (a rembg name run by another model), "default"
    how: str


def available(installed: Callable[[str], bool], accept_license: bool) -> list[str]:
    """Every name a request may send that would run now, sorted."""
    names = {n for n, spec in CATALOG.items() if installed(n) and (spec.commercial_use or accept_license)}
    names |= {n for n, c in CANDIDATES.items() if any(installed(m) for m in c)}
    if accept_license:
        names |= {n for n, c in NON_COMMERCIAL.items() if any(installed(m) for m in c)}
    return sorted(names)


def choose(requested: str | None, default: str, installed: Callable[[str], bool],
           accept_license: bool) -> ModelChoice:
    """The model to run for a request's ``model`` value, or a ModelChoiceError (never a 500)."""
    name = (requested or "").strip()
    if not name:
        return ModelChoice(default, default, "default")

    def listing() -> str:
        names = available(installed, accept_license)
        return "available here: " + (", ".join(names) if names else "none (install one with `alphacut models pull isnet`)")

    if name in REFUSED:
        raise ModelChoiceError(400, "model-refused", f"model {name!r}: {REFUSED[name]}; {listing()}")
    if name in NON_COMMERCIAL or (name in CATALOG and not get_spec(name).commercial_use):
        if not accept_license:
            raise ModelChoiceError(
                403, "license-required",
                f"model {name!r} has a non-commercial licence; the server accepts it only when started with "
                f"`alphacut serve --rembg-api {LICENCE_FLAG}` (read the licence first: `alphacut models list`); "
                f"{listing()}")
        options = NON_COMMERCIAL.get(name, (name,))
        return _first_installed(name, options, installed, listing)
    if name in CATALOG:
        if not installed(name):
            raise ModelChoiceError(409, "model-not-installed",
                                   f"model {name!r} is not installed (`alphacut models pull {name}`); {listing()}")
        return ModelChoice(name, name, "same")
    if name in CANDIDATES:
        return _first_installed(name, CANDIDATES[name], installed, listing)
    raise ModelChoiceError(400, "unknown-model", f"unknown model {name!r}; {listing()}")


def _first_installed(name: str, options: tuple[str, ...], installed: Callable[[str], bool],
                     listing: Callable[[], str]) -> ModelChoice:
    for m in options:
        if installed(m):
            return ModelChoice(name, m, "same" if m == name else "mapped")
    raise ModelChoiceError(409, "model-not-installed",
                           f"model {name!r} would run as {' or '.join(options[:2])}, which is not installed "
                           f"(`alphacut models pull {options[0]}`); {listing()}")
