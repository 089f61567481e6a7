"""PNG frames out: a folder, or a ZIP when the output ends in ``.zip``.

Each frame is encoded and verified by the still pipeline (``pipeline.render``), so a frame
here is exactly what ``alphacut remove`` writes for a still. ``frames.json`` beside the
frames lists each one's time and duration (variable frame rates can be rebuilt). The folder
is written under a temporary name and renamed into place when complete; the ZIP is written
to a temporary file and renamed: a reader never sees half a set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import UsageError
from ..fsutil import output_error, temp_prefix


class FramesSink:
    def __init__(self, dst: str | Path, *, zipped: bool) -> None:
        self.dst = Path(dst)
        self.zipped = zipped
        if not zipped and self.dst.exists() and not (self.dst.is_dir() and (self.dst / "frames.json").is_file()):
            # replacing a folder is only ever done to an earlier frames output, never to a user's folder
            raise UsageError("already exists and is not a frames folder alphacut wrote; choose another output",
                             path=str(self.dst))
        self.index: list[dict[str, float | str | int]] = []
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
            if zipped:
                fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.dst), suffix=".part", dir=self.dst.parent)
                os.close(fd)
                self.tmp = Path(tmp)
                self.zip: zipfile.ZipFile | None = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED)
            else:
                self.tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(self.dst), suffix=".part", dir=self.dst.parent))
                self.zip = None
        except OSError as exc:
            raise output_error(exc, "cannot write here", self.dst) from None
        self.stem = self.dst.name[: -len(".zip")] if zipped else self.dst.name

    def write(self, png: bytes, index: int, time: float, duration: float) -> None:
        name = f"frame_{index + 1:06d}.png"
        self.index.append({"file": name, "index": index, "time": round(time, 6), "duration": round(duration, 6)})
        try:
            if self.zip is not None:
                self.zip.writestr(f"{self.stem}/{name}", png)
            else:
                (self.tmp / name).write_bytes(png)
        except OSError as exc:
            raise output_error(exc, "cannot write a frame", self.dst) from None

    def close(self) -> Path:
        """Finish and put the set in place (replacing an older one of the same name)."""
        manifest = json.dumps({"frames": self.index}, indent=1).encode()
        try:
            if self.zip is not None:
                self.zip.writestr(f"{self.stem}/frames.json", manifest)
                self.zip.close()
                with open(self.tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(self.tmp, self.dst)
            else:
                (self.tmp / "frames.json").write_bytes(manifest)
                old = None
                if self.dst.exists():
                    old = self.dst.with_name(self.dst.name + f".old-{os.getpid()}")
                    os.replace(self.dst, old)
                os.replace(self.tmp, self.dst)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        except OSError as exc:
            self.abort()
            raise output_error(exc, "cannot write the output", self.dst) from None
        return self.dst

    def abort(self) -> None:
        if self.zip is not None:
            try:
                self.zip.close()
            except Exception:  # noqa: BLE001
                pass
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()
