"""rembg's alpha mattes, computed once per image ever and kept in the bench cache.

rembg (``pip install "rembg[cpu,cli]"``) need not be installed beside alphacut: it runs in a
subprocess under any Python that has it (``--rembg-python``), which reads the upright RGB
pixels we give it as ``.npy`` and writes its alpha as PNG. The PNGs live in
``raw_cache.cache_dir() / "rembg"``, named by a hash of the model file's sha256, rembg's
session and mode, and the exact pixels rembg was given, so a second run only reads them.

Run as a script (in rembg's environment) it is that subprocess: ``python rembg_alpha.py JOB``
where ``JOB`` is a JSON file ``{"session": ..., "model_path": ..., "mode": ..., "items":
[[in.npy, out.png], ...]}``. That side imports only NumPy, Pillow and rembg.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: rembg modes this module knows: its flags to ``rembg.remove``
MODES = {"default": {}, "-dc": {"decontaminate": True}, "-a": {"alpha_matting": True}}


def rembg_session_for(model: str) -> str:
    """The rembg session that runs alphacut's ``model`` file: ``dis_custom`` for IS-Net."""
    return "dis_custom" if model.startswith("isnet") else model


class RembgAlphas:
    """Alphas from rembg for one model file and mode, through the disk cache."""

    def __init__(self, python: str, model: str, model_file: Path, mode: str = "default") -> None:
        from raw_cache import cache_dir, file_digest

        if mode not in MODES:
            raise ValueError(f"unknown rembg mode {mode!r}; known: {', '.join(MODES)}")
        self.python, self.model, self.mode = python, model, mode
        self.model_file = Path(model_file)
        self.session = rembg_session_for(model)
        self.model_key = file_digest(self.model_file)
        self.folder = cache_dir() / "rembg"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def path_for(self, rgb: np.ndarray) -> Path:
        import hashlib

        h = hashlib.blake2b(digest_size=20)
        h.update(f"{self.model_key}|{self.session}|{self.mode}|{rgb.dtype.str}|{rgb.shape}".encode())
        h.update(np.ascontiguousarray(rgb).data)
        return self.folder / f"{h.hexdigest()}.png"

    def alphas(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """float32 alphas in 0..1, one per RGB uint8 image; the missing ones in one subprocess."""
        paths = [self.path_for(img) for img in images]
        todo = [(img, p) for img, p in zip(images, paths) if not p.is_file()]
        self.hits += len(images) - len(todo)
        self.misses += len(todo)
        if todo:
            self._compute(todo)
        return [read_alpha(p) for p in paths]

    def _compute(self, todo: list[tuple[np.ndarray, Path]]) -> None:
        with tempfile.TemporaryDirectory(prefix="alphacut-rembg-") as tmp:
            t = Path(tmp)
            items = []
            for i, (img, out) in enumerate(todo):
                np.save(t / f"{i}.npy", np.ascontiguousarray(img))
                items.append([str(t / f"{i}.npy"), str(out)])
            # rembg finds a named model's file in U2NET_HOME and takes a custom model_path only
            # from inside it: a link there to our file serves both, and nothing is downloaded
            (t / "home").mkdir()
            link = t / "home" / f"{self.session}.onnx"
            os.symlink(self.model_file, link)
            env = dict(os.environ, U2NET_HOME=str(t / "home"))
            job = {"session": self.session, "model_path": str(link), "mode": self.mode, "items": items}
            (t / "job.json").write_text(json.dumps(job))
            subprocess.run([self.python, str(Path(__file__).resolve()), str(t / "job.json")], env=env, check=True)


def read_alpha(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), np.float32) / 255.0


def rembg_available(python: str | None) -> str | None:
    """Why rembg cannot be run under ``python``, or None when it can."""
    if not python:
        return "no --rembg-python given (a Python with rembg installed)"
    r = subprocess.run([python, "-c", "import rembg"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"rembg does not import under {python}: {r.stderr.strip()[-200:]}"


def child_main(job_file: str) -> int:
    """The subprocess: one rembg session, every item of the job, alpha PNGs written atomically."""
    from PIL import Image
    from rembg import new_session, remove

    job = json.loads(Path(job_file).read_text())
    kw = {"model_path": job["model_path"]} if job["session"] == "dis_custom" else {}
    session = new_session(job["session"], **kw)
    for src, dst in job["items"]:
        out = np.asarray(remove(np.load(src), session=session, **MODES[job["mode"]]))
        tmp = f"{dst}.{os.getpid()}.tmp.png"
        Image.fromarray(np.ascontiguousarray(out[..., 3])).save(tmp)
        os.replace(tmp, dst)
        print(f"  rembg {job['session']} {job['mode']}: {Path(dst).name}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv[1]))
