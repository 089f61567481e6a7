"""``alphacut remove CLIP``: one video or animation in, one verified file out, with progress
per frame (frames done, frames per second, time left) on stderr and ``--json`` records.

Parsing and reporting only: the frames go through ``media.write_clip`` over the same
``steps.Stages`` a still goes through (via ``Remover.remove_video``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import AlphacutError
from ..media.limits import DEFAULT_LIMITS, MediaLimits
from ..pipeline import Options

#: plain progress lines at most this often (seconds); the last frame always prints
PLAIN_EVERY = 1.0


def limits_from_args(args: argparse.Namespace) -> MediaLimits:
    import dataclasses

    changes: dict[str, int] = {}
    if getattr(args, "max_frames", None):
        changes["max_frames"] = args.max_frames
        changes["max_animation_frames"] = args.max_frames
    if getattr(args, "max_pixels", None):
        changes["max_frame_pixels"] = min(args.max_pixels, DEFAULT_LIMITS.max_frame_pixels)
    return dataclasses.replace(DEFAULT_LIMITS, **changes) if changes else DEFAULT_LIMITS


def progress_printer(name: str, args: argparse.Namespace) -> tuple[Callable[[int, int, float], None], Callable[[], None]]:
    """(on_frame, done): a rich bar on a terminal, JSON lines with --json, else plain lines."""
    if args.json:
        def on_frame(done: int, total: int, seconds: float) -> None:
            fps = done / seconds if seconds > 0 else 0.0
            eta = (total - done) / fps if fps > 0 and total >= done else None
            print(json.dumps({"event": "frame", "input": name, "frame": done, "frames": total,
                              "fps": round(fps, 2), "eta": None if eta is None else round(eta, 1)}),
                  file=sys.stderr, flush=True)
        return on_frame, lambda: None
    if sys.stderr.isatty() and not args.no_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn(), transient=True)
        task = bar.add_task(Path(name).name, total=None, fps=0.0)
        bar.start()

        def on_frame_rich(done: int, total: int, seconds: float) -> None:
            bar.update(task, completed=done, total=total or None, fps=done / seconds if seconds > 0 else 0.0)
        return on_frame_rich, bar.stop
    last = [0.0]

    def on_frame_plain(done: int, total: int, seconds: float) -> None:
        if seconds - last[0] < PLAIN_EVERY and done != total:
            return
        last[0] = seconds
        fps = done / seconds if seconds > 0 else 0.0
        eta = f", {(total - done) / fps:.0f} s left" if fps > 0 and total > done else ""
        print(f"{name}: frame {done}/{total or '?'}, {fps:.1f} fps{eta}", file=sys.stderr, flush=True)
    return on_frame_plain, lambda: None


def run_clip(remover: Any, src: Path, output: str | None, options: Options, args: argparse.Namespace) -> int:
    """Cut out one clip; print its record; return the exit status."""
    name = str(src)
    on_frame, done = progress_printer(name, args)
    started = time.perf_counter()
    try:
        result = remover.remove_video(src, output, format=args.format, video_codec=args.video_codec,
                                      limits=limits_from_args(args), on_frame=on_frame, **_flat(options))
    except AlphacutError as err:
        done()
        record = {"input": name, "status": "failed", "code": err.code, "reason": str(err),
                  "seconds": round(time.perf_counter() - started, 3)}
        print(json.dumps(record) if args.json else f"alphacut: error: {err}",
              file=sys.stdout if args.json else sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        done()
        print("alphacut: stopped (nothing was written)", file=sys.stderr)
        return 130
    done()
    record = {"input": name, "output": str(result.path), "status": "done", "frames": result.frames,
              "format": result.plan.format, "codec": result.plan.codec, "audio": result.audio,
              "audio_route": result.audio_route,
              "fps": round(result.fps, 2), "seconds": round(result.seconds, 3), "bytes": result.bytes,
              "warnings": result.warnings}
    if args.json:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    else:
        for warning in result.warnings:
            print(f"alphacut: warning: {name}: {warning}", file=sys.stderr)
        print(f"{name} → {result.path} ({result.frames} frames, {result.fps:.1f} fps, {result.seconds:.1f} s)",
              file=sys.stderr)
    return 0


def _flat(options: Options) -> dict[str, Any]:
    """The options as ``Remover.remove_video`` keywords (the format is chosen per clip)."""
    return {"quality": options.quality, "decontaminate": options.decontaminate, "color": options.color,
            "mask_only": options.mask_only, "background": options.background,
            "background_image": options.background_image, "background_fit": options.background_fit,
            "background_blur": options.background_blur, "crop": options.crop,
            "second_opinion": options.second_opinion, "max_pixels": options.max_pixels}
