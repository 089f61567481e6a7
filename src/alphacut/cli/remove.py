"""``alphacut remove``: files, folders and stdin in; verified cutouts out.

Parsing and reporting only: every image goes through ``pipeline`` via ``Remover``.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import ImageColor

from ..errors import AlphacutError, InputError, InputNotFoundError, UsageError
from ..fsutil import atomic_write, same_file
from ..imageio.formats import DocumentOptions, by_extension, by_name, names, output_formats
from ..inputs import Item, beside, distinct_outputs, expand, looks_like_glob, mirror
from ..models.catalog import CATALOG, DEFAULT_MODEL
from ..objstore import is_uri
from ..pipeline import Options
from ..steps import Readable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "remove",
        help="cut the background out of images",
        description="Cut the background out of images. INPUT is a file, a folder (recursive), a quoted "
                    "glob (\"shots/*.jpg\", ** recurses), a ZIP, an object-store prefix (s3://bucket/prefix), "
                    "or - (stdin).",
        epilog="Output names: NAME.cutout.png beside each input, or under -o FOLDER the input's relative "
               "path (shots/a/b.jpg -> FOLDER/a/b.png). Two inputs never share an output: when an earlier "
               "input already has a name (compared case-insensitively), or the name is an input, the later "
               "one gets NAME-2 (then -3, ...): a.jpg a.png -> a.cutout.png, a-2.cutout.png. "
               "Symbolic links found in a folder or by a glob that lead outside it are not read.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", help="output file, folder, or - (stdout); default: NAME.cutout.png beside each input")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(CATALOG), help="default: %(default)s")
    p.add_argument("--quality", default="fast", choices=["fast", "best"],
                   help="fast: one model pass; best: adds alpha matting in the edge band")
    p.add_argument("--format", choices=names(output_formats()) + ["frames"], default=None,
                   help="output format (default: png for images, webp for animations, webm for video; "
                        "frames: PNG frames in a folder, or a ZIP when -o ends in .zip)")
    p.add_argument("--bit-depth", type=int, choices=[8, 16], default=None,
                   help="default: 16 for 16-bit inputs when the format allows, else 8")
    p.add_argument("--mask-only", action="store_true", help="write the matte as a grayscale image")
    p.add_argument("--bg", metavar="COLOR", help="composite over a colour (#rrggbb, a name, or r,g,b)")
    p.add_argument("--bg-image", metavar="PATH", help="composite over an image (opaque output)")
    p.add_argument("--bg-fit", choices=["fill", "fit"], default="fill",
                   help="--bg-image: fill (cover, crop the overflow) or fit (inside, bars in --bg or white)")
    p.add_argument("--bg-blur", type=float, metavar="PX", default=None,
                   help="composite over the original photo blurred by PX (Gaussian sigma)")
    p.add_argument("--crop", action="store_true", help="crop to the subject")
    p.add_argument("--crop-margin", type=int, default=0, metavar="PX", help="margin around the crop")
    p.add_argument("--no-decontaminate", dest="decontaminate", action="store_false",
                   help="keep the original colours in the edge band")
    p.add_argument("--clear-transparent", action="store_true",
                   help="zero the colour of fully transparent pixels (smaller files)")
    p.add_argument("--color", choices=["keep", "srgb"], default="keep",
                   help="keep the input's ICC profile, or convert to sRGB")
    p.add_argument("--lossy", action="store_true", help="WebP/AVIF: lossy colour at --output-quality")
    p.add_argument("--output-quality", type=int, default=90, metavar="Q", help="0-100 for --lossy")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (decompression bombs)")
    p.add_argument("--accept-license", action="store_true", help="accept a non-commercial model licence")
    p.add_argument("--threads", type=int, default=None, help="inference threads")
    p.add_argument("--json", action="store_true", help="one JSON line per file on stdout")
    v = p.add_argument_group("video and animations",
                             "A video becomes NAME.cutout.webm (VP9 with alpha), an animation NAME.cutout.webp; "
                             "-o picks another by its ending: .mov (ProRes 4444 with alpha), .mp4 (H.264: needs "
                             "--bg, --bg-image or --bg-blur), .webm, .webp, .png (APNG), .gif (1-bit alpha), "
                             "or --format frames (PNG frames in a folder, or a ZIP with -o OUT.zip). Audio is carried "
                             "into video outputs.")
    v.add_argument("--video-codec", choices=["prores", "png", "qtrle"], default=None,
                   help=".mov: ProRes 4444 (default), or lossless PNG / QuickTime Animation")
    v.add_argument("--first-frame", action="store_true",
                   help="cut out only the first frame of a video or animation, as a still")
    v.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help=f"refuse clips of more frames (default {100_000:,}; animations {5_000:,})")
    d = p.add_argument_group("PDF inputs (each photo or page becomes its own output: NAME.p3-1.png)")
    d.add_argument("--pdf", choices=["images", "pages"], default="images",
                   help="images: the raster images embedded in its pages (default); pages: each page rendered")
    d.add_argument("--pdf-dpi", type=int, default=300, metavar="DPI", help="--pdf pages: resolution (default 300)")
    d.add_argument("--pdf-max-pages", type=int, default=2000, metavar="N",
                   help="refuse a PDF with more pages (default 2000)")
    b = p.add_argument_group("batches (folders, globs, ZIPs, many files)",
                             "Exit status: 0 every file done, 1 some failed (listed with the reason), "
                             "130 stopped by Ctrl-C. -o OUT.zip writes a ZIP; a manifest.jsonl records every file.")
    b.add_argument("--resume", action="store_true", help="continue a stopped batch from its manifest")
    b.add_argument("--workers", type=int, default=None, help="worker processes (default: from the machine)")
    b.add_argument("--isolate", choices=["worker", "job"], default="worker",
                   help="job: a fresh process for every image (slower, strongest isolation)")
    b.add_argument("--job-timeout", type=float, default=600.0, metavar="S", help="fail a file stuck this long")
    b.add_argument("--max-rss", type=float, default=None, metavar="MB", help="fail a file whose worker passes this memory")
    b.add_argument("--recycle-after", type=int, default=200, metavar="N", help="replace a worker after N files")
    b.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    b.add_argument("--manifest", type=Path, default=None, metavar="PATH",
                   help="for an s3:// (object-store) output: keep the manifest's local copy here (default: "
                        "in the user cache); it is also put whole to OUT/manifest.jsonl as it grows")
    r = p.add_argument_group(
        "on a Ray cluster (pip install 'alphacut[ray]')",
        "--ray runs the batch on Ray Data: decode and finishing on CPU, the model on a pool of "
        "actors (one per GPU, or per node). INPUT and -o may be folders (a shared filesystem on a real "
        "cluster) or object-store prefixes (s3://bucket/prefix; the AWS_* variables, AWS_ENDPOINT_URL "
        "included, say where and who). A local cluster alphacut starts listens on 127.0.0.1 only, with "
        "token authentication, no dashboard and Ray's usage statistics off.")
    r.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="auto (the cluster RAY_ADDRESS or `ray start` gives, else a local one), local, or host:port")
    r.add_argument("--model-source", metavar="PATH|URI", default=None,
                   help="where nodes without the model get it: a folder or s3:// prefix holding the model "
                        "files (checked by sha256); default: the model's registry (a warm cache needs nothing)")
    r.add_argument("--actors", type=int, default=None, metavar="N",
                   help="model actors (default: one per GPU, else one per node)")
    p.set_defaults(func=run)


def parse_color(text: str) -> tuple[int, int, int]:
    """'#ff8800', 'white' or '255,136,0' → (r, g, b)."""
    try:
        if "," in text:
            parts = tuple(int(v) for v in text.split(","))
            if len(parts) != 3 or not all(0 <= v <= 255 for v in parts):
                raise ValueError
            return parts  # type: ignore[return-value]
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UsageError(f"not a colour: {text!r} (use #rrggbb, a name like white, or r,g,b)") from None


def _existing_file(text: str) -> str:
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"--bg-image: no such file: {text}")
    return str(path.resolve())


def options_from_args(args: argparse.Namespace, fmt: str) -> Options:
    kwargs: dict[str, Any] = dict(
        model=args.model,
        quality=args.quality,
        format=fmt,
        bit_depth=args.bit_depth,
        decontaminate=args.decontaminate,
        clear_transparent=args.clear_transparent,
        mask_only=args.mask_only,
        background=parse_color(args.bg) if args.bg else None,
        background_image=_existing_file(args.bg_image) if args.bg_image else None,
        background_fit=args.bg_fit,
        background_blur=args.bg_blur,
        crop=args.crop,
        crop_margin=args.crop_margin,
        color=args.color,
        lossless=not args.lossy,
        lossy_quality=args.output_quality,
    )
    if args.max_pixels:
        kwargs["max_pixels"] = args.max_pixels
    return Options(**kwargs)


@dataclass
class Task:
    """One expanded input and where its output goes."""

    item: Item
    output: Path | None  # None: stdout

    @property
    def name(self) -> str:
        return self.item.name


def _format_for(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output and args.output != "-":
        named = by_extension(Path(args.output).suffix) if Path(args.output).suffix else None
        if named is not None and named.writes("still") and len(args.inputs) == 1 and not Path(args.inputs[0]).is_dir():
            return named.name
    return "png"


def document_options(args: argparse.Namespace) -> DocumentOptions:
    """--pdf, --pdf-dpi, --pdf-max-pages (and --max-pixels for each part)."""
    kw: dict[str, Any] = {"mode": args.pdf, "dpi": args.pdf_dpi, "max_pages": args.pdf_max_pages}
    if args.max_pixels:
        kw["max_pixels"] = args.max_pixels
    return DocumentOptions(**kw)


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"alphacut: note: {note}", file=sys.stderr)


def plan_tasks(args: argparse.Namespace, fmt: str) -> list[Task]:
    """Expand the inputs (`inputs.expand`: the rules every entry point shares) and decide every
    output path; two inputs never share one, and none is an input."""
    notes: list[str] = []
    items = expand(args.inputs, documents=document_options(args), notes=notes)
    print_notes(notes)
    many = len(items) > 1 or any(i.found for i in items)
    if args.output == "-" and many:
        raise UsageError("-o - (stdout) takes exactly one input")
    outputs = _outputs(items, args.output, by_name(fmt).extension, many)
    tasks = [Task(item, outputs.get(item.source_id)) for item in items]
    for task in tasks:
        if task.item.path is not None and task.output is not None and same_file(task.item.path, task.output):
            raise UsageError(f"the output would overwrite the input {task.item.path}; choose another -o")
    return tasks


def _outputs(items: list[Item], out: str | None, ext: str, many: bool) -> dict[str, Path]:
    """source id → output path; an item left out goes to stdout (``-o -``, or stdin without -o)."""
    if out == "-":
        return {}
    if out is None:
        members = [i for i in items if i.archive is not None]
        if members:
            raise UsageError(f"{members[0].archive}: a ZIP's images need -o (a folder, or OUT.zip)")
        files = [i for i in items if not i.is_stdin]
        ending = _endings(ext)  # a clip gets its kind's ending (.webm, .webp)
        return {sid: Path(n) for sid, n in
                distinct_outputs(files, lambda i: beside(ending(i))(i), on_disk=Path(".")).items()}
    if many or Path(out).is_dir():
        root = Path(out)
        ending = _endings(ext)
        return {sid: root / n for sid, n in
                distinct_outputs(items, lambda i: mirror(ending(i))(i), on_disk=root).items()}
    return {items[0].source_id: Path(out)} if items else {}


def _endings(ext: str) -> Any:
    from ..imageio.formats import by_extension
    from ..jobs.batch import clip_ending

    fmt = by_extension(ext)
    return clip_ending(fmt.name if fmt is not None else "png", ext)


def _is_batch(args: argparse.Namespace) -> bool:
    """Folders, ZIPs, globs, several inputs, object-store URIs, --ray or a ZIP output go through
    the job engine (or the cluster)."""
    if args.output == "-" or "-" in args.inputs:
        return False
    if args.ray or is_uri(args.output) or any(is_uri(i) for i in args.inputs):
        return True
    if args.output and args.output.lower().endswith(".zip"):
        return True
    if len(args.inputs) > 1:
        return True
    item = Path(args.inputs[0])
    return item.is_dir() or item.suffix.lower() == ".zip" or looks_like_glob(args.inputs[0])


def engine_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "job_timeout": args.job_timeout,
        "max_rss_mb": args.max_rss,
        "recycle_after": args.recycle_after,
        "isolate": args.isolate,
        "accept_license": args.accept_license,
    }


def run_batch_cli(args: argparse.Namespace, options: Options) -> int:
    from ..jobs.batch import run_batch
    from .progress import Reporter, RichReporter, print_summary

    if args.output is None:
        if args.ray or any(is_uri(i) for i in args.inputs):
            return _fail(UsageError("--ray and object-store inputs need -o (a folder or an s3:// prefix)"))
        return _run_beside(args, options)
    rich = sys.stderr.isatty() and not args.json and not args.no_progress
    reporter = RichReporter(0) if rich else Reporter(0, json_lines=args.json)
    notes: list[str] = []
    try:
        if args.ray:
            from ..distributed.executor import run_ray_batch

            summary = run_ray_batch(args.inputs, args.output, options, address=args.ray, resume=args.resume,
                                    reporter=reporter, manifest_at=args.manifest, model_source=args.model_source,
                                    actors=args.actors, threads=args.threads, accept_license=args.accept_license,
                                    documents=document_options(args), notes=notes)
        else:
            summary = run_batch(args.inputs, args.output, options, resume=args.resume,
                                engine_kwargs=engine_kwargs(args), reporter=reporter, manifest_at=args.manifest,
                                documents=document_options(args), notes=notes)
    except AlphacutError as err:
        return _fail(err)
    except KeyboardInterrupt:
        print("alphacut: stopped", file=sys.stderr)
        return 130
    print_summary(summary)
    print_notes(notes)
    return summary.exit_code


def _run_beside(args: argparse.Namespace, options: Options) -> int:
    """Many inputs, no -o: each cutout beside its input, through the engine (no manifest)."""
    from ..jobs.engine import JobEngine

    try:
        tasks = plan_tasks(args, options.format)
        if not tasks:
            raise UsageError("no images found in the given inputs")
    except AlphacutError as err:
        return _fail(err)
    failed = 0
    try:
        with JobEngine(args.model, **engine_kwargs(args)) as engine:
            # a bounded window of submitted jobs: a PDF's parts are bytes read only when their
            # turn comes, and the queue never overflows however many inputs there are
            window = max(4, 2 * engine.workers * engine.slots)
            inflight: collections.deque[tuple[Task, Any]] = collections.deque()

            def report(task: Task, job: Any) -> None:
                nonlocal failed
                if isinstance(job, InputError):
                    rec = {"input": task.name, "status": "failed", "output": None, "code": job.code, "reason": str(job)}
                else:
                    rec = _problem_record(task.item) if job is None else _job_record(engine.wait(job.id))
                if args.json:
                    print(json.dumps(rec), flush=True)
                elif rec["status"] == "done":
                    print(f"{rec['input']} → {rec['output']}", file=sys.stderr)
                else:
                    print(f"alphacut: error: {rec['reason']}", file=sys.stderr)
                failed += rec["status"] != "done"

            for t in tasks:
                if len(inflight) >= window:
                    report(*inflight.popleft())
                try:  # a PDF's part is read here (bytes); a file goes by its path
                    src = t.item.read() if t.item.read is not None else t.item.path
                    job: Any = None if t.item.problem else engine.submit(
                        src, name=t.name, options=options, output=t.output,  # type: ignore[arg-type]
                        **({"clip": True} if _is_clip(t) else {}))  # a video or animation: one job
                except InputError as err:
                    job = err
                inflight.append((t, job))
            while inflight:
                report(*inflight.popleft())
    except KeyboardInterrupt:
        print("alphacut: stopped", file=sys.stderr)
        return 130
    if failed:
        print(f"alphacut: {failed} of {len(tasks)} files failed", file=sys.stderr)
    return 1 if failed else 0


def _is_clip(task: Task) -> bool:
    """A video or animation (its output named for one): one job, frame by frame."""
    from ..jobs.batch import _CLIP_ENDINGS, item_kind

    return task.output is not None and task.output.suffix.lower() in _CLIP_ENDINGS and item_kind(task.item) is not None


def _job_record(job: Any) -> dict[str, Any]:
    return {"input": job.name, "status": job.stage.value, "output": job.output_path if job.ok else None,
            "code": job.error_code, "reason": job.reason}


def _problem_record(item: Item) -> dict[str, Any]:
    """An input refused before reading (a link out of its folder, a missing file), reported as
    the batch path reports it."""
    err = item.error()
    return {"input": item.name, "status": "failed", "output": None, "code": err.code, "reason": str(err)}


def _fail(err: AlphacutError) -> int:
    """Report an error the way every subcommand does, and give its exit code."""
    print(f"alphacut: error: {err}", file=sys.stderr)
    return err.exit_code


def _clip(args: argparse.Namespace) -> Path | None:
    """The one input, when it is a video or an animation to cut out frame by frame (-o OUT.zip
    is a batch's ZIP unless --format frames asks for the clip's PNG frames in it)."""
    if len(args.inputs) != 1 or args.inputs[0] == "-" or args.output == "-":
        return None
    if _is_batch(args) and not (args.format == "frames" and args.output and args.output.lower().endswith(".zip")):
        return None
    from ..media.sniff import clip_kind

    path = Path(args.inputs[0])
    return path if path.is_file() and clip_kind(path) is not None else None


def run(args: argparse.Namespace) -> int:
    clip = _clip(args)
    if clip is not None:
        return _run_clip_or_first_frame(args, clip)
    if args.format == "frames" or (args.format and not by_name(args.format).writes("still")):
        return _fail(UsageError(f"--format {args.format} writes animations and video; "
                                f"{args.inputs[0] if len(args.inputs) == 1 else 'these inputs'} "
                                "is not a video or an animation"))
    if _is_batch(args):
        try:
            options = options_from_args(args, args.format or "png")
        except AlphacutError as err:
            return _fail(err)
        return run_batch_cli(args, options)
    try:
        fmt = _format_for(args)
        options = options_from_args(args, fmt)
        tasks = plan_tasks(args, fmt)
    except AlphacutError as err:
        return _fail(err)
    if not tasks:
        print("alphacut: error: no images found in the given inputs", file=sys.stderr)
        return 3
    from ..api import Remover

    remover = Remover(args.model, threads=args.threads, accept_license=args.accept_license,
                      download_progress=_download_progress())
    remover.preload()  # the model loads while the first image decodes
    failures: list[AlphacutError] = []
    for task in tasks:
        started = time.perf_counter()
        try:
            written = _process(remover, task, options)
            record = {"input": task.name, "output": str(written) if written else "-", "status": "done"}
        except AlphacutError as err:
            failures.append(err)
            record = {"input": task.name, "status": "failed", "code": err.code, "reason": str(err)}
            if not args.json:
                print(f"alphacut: error: {err}", file=sys.stderr)
        record["seconds"] = round(time.perf_counter() - started, 3)
        if args.json:
            print(json.dumps(record), flush=True)
        elif record["status"] == "done" and task.output is not None:
            print(f"{task.name} → {record['output']} ({record['seconds']:.1f} s)", file=sys.stderr)
    if not failures:
        return 0
    if len(tasks) == 1:
        return failures[0].exit_code
    print(f"alphacut: {len(failures)} of {len(tasks)} files failed", file=sys.stderr)
    return 1


def _run_clip_or_first_frame(args: argparse.Namespace, clip: Path) -> int:
    from ..api import Remover
    from .clip import run_clip

    try:
        first = args.first_frame
        options = options_from_args(args, _format_for(args) if first else "png")
        if not first:  # refuse what cannot work (MP4 without a background) before the model loads
            from ..media.loop import plan_clip
            from ..media.outputs import EXTENSION, output_format
            from ..media.sniff import clip_kind

            kind = clip_kind(clip) or "video"
            if args.output and Path(args.output).is_dir() and args.format != "frames":
                # -o FOLDER: the clip's name with its output's ending, as a still's would be
                args.output = str(Path(args.output) / (clip.stem + EXTENSION[output_format(None, args.format, kind)]))
            plan_clip(clip, args.output, kind, options, format=args.format, video_codec=args.video_codec)
    except AlphacutError as err:
        if args.json:
            print(json.dumps({"input": str(clip), "status": "failed", "code": err.code, "reason": str(err)}))
        return _fail(err)
    remover = Remover(args.model, threads=args.threads, accept_license=args.accept_license,
                      download_progress=_download_progress())
    remover.preload()
    if not first:
        return run_clip(remover, clip, args.output, options, args)
    from ..media.loop import first_frame

    started = time.perf_counter()
    try:
        picture = first_frame(clip, name=str(clip))
        cutout = remover.process(picture, options)
        data = remover.stages.render(cutout)
        out = Path(args.output) if args.output else clip.with_name(
            f"{clip.stem}.cutout{by_name(options.format).extension}")
        if same_file(clip, out):
            raise UsageError("the output would overwrite the input", path=str(clip))
        atomic_write(out, data)
    except AlphacutError as err:
        return _fail(err)
    record = {"input": str(clip), "output": str(out), "status": "done",
              "seconds": round(time.perf_counter() - started, 3)}
    print(json.dumps(record) if args.json else f"{clip} → {out} ({record['seconds']:.1f} s)",
          file=sys.stdout if args.json else sys.stderr)
    return 0


def _process(remover: Any, task: Task, options: Options) -> Path | None:
    """One input through the stage sequence (``steps.Stages.run``), then to its file or stdout."""
    source, name = _source(task.item)
    _, data = remover.stages.run(source, name=name, options=options)
    if task.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return None
    return atomic_write(task.output, data)


def _source(item: Item) -> tuple[Readable, str | None]:
    """What to read for an item, and the name to show (None: the path's own). Stdin and ZIP
    members are read when decoding starts, so their bytes are let go once decoded."""
    if item.problem is not None:
        raise item.error()
    if item.is_stdin:
        return sys.stdin.buffer.read, item.name
    if item.archive is not None:
        return partial(_read_member, item.archive, item.member), item.name  # type: ignore[arg-type]
    if item.read is not None:  # a PDF's photo or page
        return item.read, item.name
    if item.path is None or not item.path.exists():
        raise InputNotFoundError("no such file", path=item.name)
    return item.path, None


def _read_member(archive: Path, member: str) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return zf.read(member)


def _download_progress():
    """A rich progress bar for a model download, shown only on a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    state: dict[str, Any] = {}

    def update(done: int, total: int | None, label: str) -> None:
        if "progress" not in state:
            state["progress"] = Progress("[progress.description]{task.description}", BarColumn(),
                                         DownloadColumn(), TransferSpeedColumn(), transient=True)
            state["progress"].start()
            state["task"] = state["progress"].add_task(label, total=total)
        state["progress"].update(state["task"], completed=done, total=total, description=label)
        if total is not None and done >= total:
            state.pop("progress").stop()

    return update
