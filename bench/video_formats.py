"""Every file in ../shared/eval/video-formats through `Remover.remove_video` at default settings
(video → .webm VP9 with alpha, animation → animated .webp): a verified output or a specific
refusal per file, printed as a Markdown table (docs/video.md holds the last run's).

    nice python bench/video_formats.py [--model u2netp] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alphacut.api import Remover  # noqa: E402
from alphacut.errors import AlphacutError  # noqa: E402
from alphacut.models.store import ModelStore, default_home  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval" / "video-formats"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="u2netp")
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default=None, help="comma-separated substrings of the file names to run")
    args = ap.parse_args()
    if not (EVAL / "MANIFEST.tsv").exists():
        sys.exit(f"no {EVAL}: nothing to run")
    out = Path(args.out or tempfile.mkdtemp(prefix="alphacut-formats-"))
    remover = Remover(args.model, store=ModelStore(default_home()))
    rows = list(csv.DictReader(open(EVAL / "MANIFEST.tsv"), delimiter="\t"))
    print("| file | input | result | frames | output | time |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if args.only and not any(part in row["file"] for part in args.only.split(",")):
            continue
        src = EVAL / row["file"]
        what = " ".join(x for x in (row["container"], row["video"], row["size"], row["audio"]) if x and x != "?")
        t = time.perf_counter()
        try:
            res = remover.remove_video(src, out / (src.stem + (".webp" if "animated" in row["file"] else ".webm")))
            ext = res.path.suffix
            audio = f", audio {res.audio_route or 'dropped'}" if res.info.audio else ""
            warn = ("; " + "; ".join(res.warnings)) if res.warnings else ""
            result = (f"verified {res.plan.codec} {res.info.width}x{res.info.height}"
                      f"{' rot ' + str(res.info.rotation) if res.info.rotation else ''}{audio}{warn}")
            frames = str(res.frames)
            output = f"{ext} {res.bytes / 1e3:.0f} kB (input {src.stat().st_size / 1e3:.0f} kB)"
        except AlphacutError as exc:
            result, frames, output = f"refused ({exc.code}): {exc.reason}", "-", "none"
        print(f"| {row['file']} | {what} | {result} | {frames} | {output} | {time.perf_counter() - t:.0f} s |",
              flush=True)


if __name__ == "__main__":
    main()
