"""Video throughput, memory flat in clip length, and output sizes — side by side in one run.

    nice python bench/video.py throughput [--sizes 854x480,1920x1080] [--frames 24] [--models isnet,u2netp]
    nice python bench/video.py stages [--size 1920x1080 --frames 24 --models u2netp]
    nice python bench/video.py encoder [--frames 48 --clip CLIP_WITH_ALPHA --variants ";cpu-used=8;..."]
    nice python bench/video.py memory [--short 300 --long 1500 --size 1920x1080] [--separate]
    nice python bench/video.py sizes [--clip tests/data/video/mb_trim-buck-bunny.webm]
    nice python bench/video.py rembg [--frames 24 --size 854x480]   (needs /tmp/venv-rembg)

throughput: the same generated frames (a textured disc moving over a gradient) through
  (a) inference alone — ``Stages.infer`` on each frame, sequentially: the inference-bound rate;
  (b) ``media.write_clip`` to VP9 WebM with alpha (decode, infer, finish, encode, verify,
      audio) at the encoder's default setting (realtime deadline, speed 6);
  and prints (b)/(a), in wall-clock rates and in CPU time a frame (the figure a shared
  machine's load barely moves).
stages: each stage's CPU and wall time a frame, the stages called one after another.
encoder: VP9 settings on the same RGBA frames: CPU a frame, size, whether verify_clip passes. Fast tier; IS-Net runs with its U²-Netp second opinion, as shipped.
memory: peak RSS after 300 and after 1,500 frames of a generated clip (a disc going back and
  forth, H.264 + AAC, made with PyAV in a temporary folder), U²-Netp, WebM: one process
  writing the long clip, read as it passes frame 300 and at its end (``--separate``: a fresh
  process per clip length); the parent samples the RSS of the child's process tree, the child
  reports its own every 50 frames (the curve) and its ru_maxrss.
sizes: one clip into every output format at default settings; bytes against the input's.
rembg: rembg's documented video route (raw frames piped into ``rembg b W H``, PNGs out, then
  a video rebuilt from them with its audio) against ``alphacut remove`` on the same clip and
  weights (U²-Netp). This machine has no ffmpeg command, so the two ffmpeg steps are done with
  PyAV (the same FFmpeg libraries); rembg itself runs as its CLI in /tmp/venv-rembg.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def _clip(path: Path, frames: int, w: int, h: int, audio: bool = True) -> Path:
    from support.clips import write_video

    return write_video(path, frames, width=w, height=h, fps=25, audio="aac" if audio else None)


def _remover(model: str):
    from alphacut.api import Remover
    from alphacut.models.store import ModelStore, default_home

    r = Remover(model, store=ModelStore(default_home()))
    r.session
    r.stages.helper(model)
    return r


def throughput(args: argparse.Namespace) -> None:
    """Inference alone, the whole file, inference alone again (the mean of the two is the
    reference, so a load that drifts during the run is split between them); wall-clock frames
    per second and the process's CPU time per frame for each."""
    from alphacut.media import open_clip
    from alphacut.media.outputs import VP9_OPTIONS
    from alphacut.pipeline import Options
    from alphacut.steps import Decoded
    from alphacut.imageio.decode import Picture

    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    vp9 = " ".join(f"{k}={v}" for k, v in VP9_OPTIONS)
    print(f"# throughput: {args.frames} frames per clip (generated H.264 + AAC), fast tier, {os.cpu_count()} CPUs "
          f"(shared; load {os.getloadavg()[0]:.1f}), WebM out with VP9 {vp9}, audio, verified", flush=True)
    print("| model | size | inference alone fps | whole file fps | ratio | inference CPU ms/frame | "
          "whole file CPU ms/frame | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        r = _remover(model)
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            clip = _bouncing_clip(tmp / f"c{w}.mp4", args.frames, w, h)
            opts = Options(model=model)
            frames = list(open_clip(clip).frames())
            r.stages.infer(Decoded(Picture(frames[0].rgb)), opts)  # warm

            def infer_alone() -> tuple[float, float]:
                t, c = time.perf_counter(), time.process_time()
                for f in frames:
                    r.stages.infer(Decoded(Picture(f.rgb, f.alpha)), opts)
                return time.perf_counter() - t, time.process_time() - c

            w1, c1 = infer_alone()
            t, c = time.perf_counter(), time.process_time()
            res = r.remove_video(clip, tmp / f"o{w}.webm")
            whole_s, whole_c = time.perf_counter() - t, time.process_time() - c
            w2, c2 = infer_alone()
            n = len(frames)
            infer_fps = 2 * n / (w1 + w2)
            whole = res.frames / whole_s
            ic, wc = 1000 * (c1 + c2) / (2 * n), 1000 * whole_c / res.frames
            print(f"| {model} | {w}x{h} | {infer_fps:.3f} ({n / w1:.3f}, {n / w2:.3f}) | {whole:.3f} | "
                  f"{whole / infer_fps:.2f} | {ic:.0f} | {wc:.0f} | {ic / wc:.2f} |", flush=True)
            del frames


def encoder(args: argparse.Namespace) -> None:
    """The VP9 encoder's settings, compared on the same frames with no model in the way: the
    frames of a generated clip with an alpha made from the disc (its colour thresholded and
    blurred: solid inside, clear outside, a soft band at the edge, as a matte is), written by
    the frame loop's own ``VideoSink`` with each setting, then read back by ``verify_clip``
    against the output plan's tolerance. CPU time of the process per frame for encoding and
    for verification, the file's size, and whether it passes."""
    import cv2
    import numpy as np
    from dataclasses import replace

    from alphacut.media import open_clip
    from alphacut.media.loop import plan_clip
    from alphacut.media.verify import Ledger, verify_clip
    from alphacut.media.video_out import VideoSink
    from alphacut.pipeline import Options
    from alphacut.errors import VerificationError

    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    if args.clip:  # a real clip with its own alpha (VP8/VP9 with alpha): real pictures, a real matte
        clip = Path(args.clip)
        source = open_clip(clip)
        rgba = []
        for f in source.frames():
            if len(rgba) == args.frames:
                break
            a = f.alpha if f.alpha is not None else np.full(f.rgb.shape[:2], 1.0, np.float32)
            a = np.rint(a * 255).astype(np.uint8) if a.dtype != np.uint8 else a
            rgba.append(np.dstack([f.rgb, a]))
        w, h = source.info.width, source.info.height
    else:
        w, h = map(int, args.size.split("x"))
        clip = _bouncing_clip(tmp / "clip.mp4", args.frames, w, h)
        source = open_clip(clip)
        rgba = []
        for f in source.frames():
            solid = (f.rgb[:, :, 0] > 150).astype(np.float32)
            a = cv2.GaussianBlur(solid, (0, 0), 1.5)
            rgba.append(np.dstack([f.rgb, np.rint(a * 255).astype(np.uint8)]))
    times = [i / 25 for i in range(len(rgba))]
    base, _ = plan_clip(clip, tmp / "o.webm", "video", Options(model="u2netp"))
    what = f"the first frames of {clip.name} with its own alpha" if args.clip else "a soft-edged disc"
    print(f"# VP9 encoder settings: {len(rgba)} frames {w}x{h} RGBA ({what}), VideoSink + verify_clip, "
          f"{os.cpu_count()} CPUs shared, load {os.getloadavg()[0]:.1f}", flush=True)
    print("| setting | encode CPU ms/frame | encode wall ms/frame | verify CPU ms/frame | bytes | read back |")
    print("|---|---|---|---|---|---|")
    for label in args.variants.split(";"):
        extra = dict(kv.split("=", 1) for kv in label.split(",") if "=" in kv)
        opts = dict(base.codec_options)
        opts.update(extra)
        plan = replace(base, codec_options=tuple(opts.items()))
        out = tmp / "e.webm"
        ledger = Ledger(plan, len(rgba))
        t, c = time.perf_counter(), time.process_time()
        sink = VideoSink(out, plan, source.info)
        try:
            for px, tm in zip(rgba, times):
                sink.write(px, tm)
                ledger.record(px, sink.last_time)
            sink.close()
        except Exception as exc:  # noqa: BLE001 - a setting the encoder refuses is a result
            sink.abort()
            print(f"| {label} | – | – | – | – | refused by the encoder ({type(exc).__name__}) |", flush=True)
            continue
        ew, ec = time.perf_counter() - t, time.process_time() - c
        c = time.process_time()
        try:
            verify_clip(out, ledger, name="bench")
            ok = "passes"
        except VerificationError as exc:
            ok = "FAILS: " + str(exc).split(": ", 1)[-1][:90]
        vc = time.process_time() - c
        ledger.close()
        n = len(rgba)
        print(f"| {label or 'default'} | {1000 * ec / n:.0f} | {1000 * ew / n:.0f} | {1000 * vc / n:.0f} | "
              f"{out.stat().st_size:,} | {ok} |", flush=True)


def stage_costs(args: argparse.Namespace) -> None:
    """What a frame costs in each stage, the stages run one after another on one thread (the
    loop overlaps them on three): wall time and the process's CPU time around each call, so a
    busy shared machine shows in the wall column but not much in the CPU one. The components
    are the frame loop's own (``VideoSource``, ``Stages``, ``MatteStabilizer``,
    ``FrameComposer``, ``VideoSink``, ``Ledger``, ``verify_clip``); the encoder settings can be
    overridden (``--vp9 k=v,...``) to compare them on the same frames."""
    from alphacut.media import open_clip
    from alphacut.media.loop import FrameComposer, plan_clip
    from alphacut.media.stabilise import default_stabiliser, unpack
    from alphacut.media.verify import Ledger, verify_clip
    from alphacut.media.video_out import VideoSink
    from alphacut.pipeline import Options
    from alphacut.steps import Decoded
    from alphacut.imageio.decode import Picture
    from dataclasses import replace

    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    w, h = map(int, args.size.split("x"))
    clip = _bouncing_clip(tmp / "clip.mp4", args.frames, w, h)
    overrides = [tuple(kv.split("=", 1)) for kv in args.vp9.split(",") if kv] if args.vp9 else []
    print(f"# stage costs: {args.frames} frames {w}x{h}, fast tier, WebM (VP9 + alpha) with audio, "
          f"one thread, {os.cpu_count()} CPUs (shared; load {os.getloadavg()[0]:.1f})"
          + (f", VP9 overrides {dict(overrides)}" if overrides else ""), flush=True)
    print("| model | stage | wall ms/frame | CPU ms/frame | CPU share |")
    print("|---|---|---|---|---|")
    for model in args.models.split(","):
        r = _remover(model)
        opts = Options(model=model)
        source = open_clip(clip)
        plan, _ = plan_clip(clip, tmp / "o.webm", "video", opts)
        if overrides:
            merged = dict(plan.codec_options)
            merged.update(dict(overrides))
            plan = replace(plan, codec_options=tuple(merged.items()))
        wall: dict[str, float] = {}
        cpu: dict[str, float] = {}

        def clock(key: str, fn, *a, **kw):
            t, c = time.perf_counter(), time.process_time()
            out = fn(*a, **kw)
            wall[key] = wall.get(key, 0.0) + time.perf_counter() - t
            cpu[key] = cpu.get(key, 0.0) + time.process_time() - c
            return out

        r.stages.infer(Decoded(Picture(next(iter(source.frames())).rgb)), opts)  # warm the sessions
        source = open_clip(clip)
        stab = default_stabiliser()
        composer = FrameComposer(opts)
        ledger = Ledger(plan, source.info.expected_frames)
        out = tmp / f"o-{model}.webm"
        sink = clock("encode", VideoSink, out, plan, source.info, audio_from=clip)
        frames = iter(source.frames())
        waiting = []
        n = 0

        def emit(ready) -> None:
            f, c = waiting.pop(0)
            c.matte = unpack(ready, f.index)
            pixels = clock("compose", composer, c)
            clock("encode", sink.write, pixels, f.time)
            clock("ledger", ledger.record, pixels, sink.last_time)

        while True:
            f = clock("decode", next, frames, None)
            if f is None:
                break
            inf = clock("infer", r.stages.infer, Decoded(Picture(f.rgb, f.alpha)), opts)
            cut = clock("finish", r.stages.finish, inf)
            waiting.append((f, cut))
            for ready in clock("temporal", stab.push, f.rgb, cut.matte):
                emit(ready)
            n += 1
        for ready in clock("temporal", stab.flush):
            emit(ready)
        clock("encode", sink.close)
        clock("verify", verify_clip, out, ledger, name=str(out), audio=True)
        ledger.close()
        total_c = sum(cpu.values())
        for key in ("decode", "infer", "finish", "temporal", "compose", "encode", "ledger", "verify"):
            print(f"| {model} | {key} | {1000 * wall[key] / n:.0f} | {1000 * cpu[key] / n:.0f} | "
                  f"{cpu[key] / total_c:.0%} |", flush=True)
        print(f"| {model} | **all** | {1000 * sum(wall.values()) / n:.0f} | {1000 * total_c / n:.0f} | |", flush=True)


_CHILD = """
import json, os, resource, sys
sys.path.insert(0, {src!r})
import psutil
from alphacut.api import Remover
from alphacut.models.store import ModelStore, default_home
me = psutil.Process()
curve = []
def maxrss():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
def on_frame(done, expected, seconds):
    if done % {every} == 0 or done == {mark} or done == expected:
        curve.append((done, round(me.memory_info().rss / 2**20), maxrss(), round(seconds, 1)))
        print(json.dumps({{'frame': done, 'rss_mb': curve[-1][1], 'maxrss_mb': curve[-1][2], 's': curve[-1][3]}}),
              flush=True)
r = Remover('u2netp', store=ModelStore(default_home()))
res = r.remove_video({clip!r}, {out!r}, on_frame=on_frame)
print(json.dumps({{'frames': res.frames, 'seconds': res.seconds, 'bytes': res.bytes, 'maxrss_mb': maxrss(),
                  'curve': curve}}))
"""


def _bouncing_clip(path: Path, frames: int, w: int, h: int, fps: int = 25) -> Path:
    """A generated H.264 MP4 with an AAC tone: a warm textured disc going back and forth over a
    gradient, so it stays in the picture however long the clip (``support.clips.moving_disc``
    leaves it after a few hundred frames, and an empty picture would not be the same work).
    The gradient and the disc are drawn once and the disc pasted per frame: a 1,500-frame
    1080p clip is made in about a minute of CPU."""
    import av
    from fractions import Fraction

    import numpy as np
    from support.clips import mux_tone

    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.clip(np.stack([40 + 60 * x / w, 120 + 40 * y / h, 190 + 0 * x], axis=-1), 0, 255)
    r = int(min(w, h) * 0.3)
    py, px = np.mgrid[0:2 * r + 1, 0:2 * r + 1].astype(np.float32)
    cover = np.clip(r - np.sqrt((px - r) ** 2 + (py - r) ** 2) + 0.5, 0, 1)[..., None]
    fg = np.stack([220 - 40 * py / (2 * r), 90 + 30 * np.sin(px / 7), 40 + 0 * px], axis=-1)
    top = h // 2 - r
    lo, hi = int(w * 0.05), int(w * 0.95) - 2 * r - 1  # the disc's left edge goes back and forth
    span = max(1, (hi - lo) // 6)  # 6 px a frame
    base = bg.astype(np.uint8)
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(frames):
            k = i % (2 * span)
            left = lo + 6 * (k if k < span else 2 * span - k)
            rgb = base.copy()
            under = bg[top:top + 2 * r + 1, left:left + 2 * r + 1]
            rgb[top:top + 2 * r + 1, left:left + 2 * r + 1] = np.clip(fg * cover + under * (1 - cover), 0, 255)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            f.time_base = Fraction(1, fps)
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        mux_tone(out, a, frames / fps + 0.1)
    return path


def _tree_rss(proc) -> int:
    """RSS of a process and all its descendants, bytes (0 once it is gone)."""
    import psutil

    total = 0
    try:
        for p in [proc] + proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        return 0
    return total


def _watch(code: str, mark: int, interval: float) -> tuple[dict, float, float]:
    """Run a child, sampling its process tree's RSS; returns its last JSON line, the peak
    sampled up to the moment it reported frame ``mark`` and the peak over the whole run (MB)."""
    import threading

    import psutil

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak, at_mark = 0, None
    lines: list[str] = []

    def read() -> None:
        nonlocal at_mark
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith('{"frame"'):
                if json.loads(line)["frame"] == mark and at_mark is None:
                    at_mark = max(peak, _tree_rss(ps))
                print("#   " + line.strip(), flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss(ps))
        time.sleep(interval)
    reader.join()
    if proc.returncode:
        sys.exit(f"the child failed (exit {proc.returncode})")
    return json.loads(lines[-1]), (at_mark or 0) / 2**20, peak / 2**20


def memory(args: argparse.Namespace) -> None:
    """Peak RSS after ``--short`` and after ``--long`` frames of a generated clip. By default
    one process writes the long clip and the peaks are read as it passes frame ``short`` and at
    its end (verification included); ``--separate`` writes a short and a long clip, each in a
    fresh process. The parent samples the RSS of the child's process tree every ``--interval``
    seconds; the child reports its own RSS and ru_maxrss every ``--every`` frames (the curve)."""
    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    w, h = map(int, args.size.split("x"))
    how = "a fresh process per clip" if args.separate else f"one process, peaks read at frame {args.short} and at the end"
    print(f"# memory: U2-Netp, fast tier, WebM (VP9 + alpha, audio), {w}x{h} generated H.264 + AAC clip; {how}; "
          f"tree RSS sampled every {args.interval}s; {os.cpu_count()} CPUs shared, load {os.getloadavg()[0]:.1f}",
          flush=True)
    runs = [args.short, args.long] if args.separate else [args.long]
    results = []
    for n in runs:
        t0 = time.perf_counter()
        clip = _bouncing_clip(tmp / f"m{n}.mp4", n, w, h)
        print(f"# generated {clip.name}: {n} frames, {clip.stat().st_size / 1e6:.1f} MB in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        code = _CHILD.format(src=str(ROOT / "src"), clip=str(clip), out=str(tmp / f"m{n}.webm"), every=args.every,
                             mark=args.short)
        rec, at_mark, peak = _watch(code, args.short, args.interval)
        results.append((n, rec, at_mark, peak))
        for p in (clip, tmp / f"m{n}.webm"):
            p.unlink(missing_ok=True)
    print(f"\nwhole run(s): " + "; ".join(f"{rec['frames']} frames in {rec['seconds']:.0f} s "
                                         f"({rec['frames'] / rec['seconds']:.2f} fps), {rec['bytes'] / 1e6:.1f} MB out"
                                         for _, rec, _, _ in results))
    print("| after | peak RSS, tree sampled (MB) | peak RSS, ru_maxrss (MB) |")
    print("|---|---|---|")
    if args.separate:
        (_, a, _, pa), (_, b, _, pb) = results
        rows = [(args.short, pa, a["maxrss_mb"]), (args.long, pb, b["maxrss_mb"])]
    else:
        _, rec, at_mark, peak = results[0]
        mark = next(c for c in rec["curve"] if c[0] == args.short)
        rows = [(args.short, at_mark, mark[2]), (rec["frames"], peak, rec["maxrss_mb"])]
    for n, sampled, maxrss in rows:
        print(f"| {n} frames | {sampled:.0f} | {maxrss:.0f} |")
    (_, s1, m1), (_, s2, m2) = rows
    print(f"\nlong / short peak: sampled {s2 / s1:.3f}, ru_maxrss {m2 / m1:.3f} (target: within 10%)")


def sizes(args: argparse.Namespace) -> None:
    r = _remover("u2netp")
    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    clip = _trim(Path(args.clip), tmp / ("trim" + Path(args.clip).suffix), args.seconds) if args.seconds else Path(args.clip)
    size_in = clip.stat().st_size
    print(f"# sizes: {clip.name} ({size_in / 1e3:.0f} kB), U2-Netp, default settings")
    print("| output | codec | bytes | × input |")
    print("|---|---|---|---|")
    for name, kw in [("out.webm", {}), ("out.mov", {}), ("png.mov", {"video_codec": "png"}),
                     ("qtrle.mov", {"video_codec": "qtrle"}), ("green.mp4", {"background": (0, 255, 0)}),
                     ("mask.webm", {"mask_only": True}), ("out.webp", {}), ("out.png", {}), ("out.gif", {}),
                     ("frames.zip", {})]:
        res = r.remove_video(clip, tmp / name, **kw)
        print(f"| {name} | {res.plan.codec} | {res.bytes:,} | {res.bytes / size_in:.1f} |", flush=True)


def _trim(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``src``, its packets copied (video and audio), no re-encoding."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format=inp.format.name.split(",")[-1]) as out:
        streams = [s for s in (inp.streams.video[:1] + inp.streams.audio[:1])]
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(*streams):
            if packet.pts is None or not packet.size:
                continue
            if float(packet.pts * packet.time_base) >= seconds:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return dst


def _cpu() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def rembg(args: argparse.Namespace) -> None:
    """rembg's documented video route against ``alphacut remove``, one run, same clip, same
    U²-Netp file. rembg's route (its README): ``ffmpeg -i clip -f rawvideo -pix_fmt rgb24 - |
    rembg b W H -o frames/%04d.png``, then ffmpeg to rebuild a video with the audio. No ffmpeg
    command exists here, so both ffmpeg steps run through PyAV (the same FFmpeg libraries) in
    this process; the rebuild encodes VP9 with alpha at alphacut's own settings (realtime,
    cpu-used 8, CRF 30, row-mt; ffmpeg's defaults for libvpx-vp9 are far slower) and the audio
    to Opus, so the two files are the same kind and the comparison is about the removal.
    Wall time and CPU time (this process + its children) per route; the rembg route's three
    steps are timed apart."""
    import av
    import numpy as np
    from PIL import Image
    from alphacut.media.outputs import VP9_OPTIONS

    exe = Path(args.rembg)
    if not exe.exists():
        sys.exit(f"no {exe}: python3 -m venv /tmp/venv-rembg && /tmp/venv-rembg/bin/pip install 'rembg[cpu]==2.0.86'")
    home = Path.home() / ".u2net"
    home.mkdir(exist_ok=True)
    weights = home / "u2netp.onnx"
    from alphacut.models.store import ModelStore, default_home

    ours = ModelStore(default_home()).info("u2netp").path
    if not weights.exists():  # the same weights alphacut's store holds (rembg's own release file)
        weights.symlink_to(ours)
    if weights.resolve() != Path(ours).resolve():
        import hashlib

        same = hashlib.sha256(weights.read_bytes()).digest() == hashlib.sha256(Path(ours).read_bytes()).digest()
        if not same:
            sys.exit(f"{weights} is not the file alphacut uses ({ours})")
    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    w, h = map(int, args.size.split("x"))
    clip = _bouncing_clip(tmp / "clip.mp4", args.frames, w, h)
    print(f"# rembg route vs alphacut: {args.frames} generated frames {w}x{h} (H.264 + AAC), U2-Netp in both "
          f"({Path(ours).name}), to a finished WebM (VP9 + alpha, Opus); {os.cpu_count()} CPUs shared, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []

    # 1. ffmpeg -i clip -f rawvideo -pix_fmt rgb24 - | rembg b W H -m u2netp -o frames/%04d.png
    t, c = time.perf_counter(), _cpu()
    frames_dir = tmp / "frames"
    frames_dir.mkdir()
    proc = subprocess.Popen([str(exe), "b", str(w), str(h), "-m", "u2netp", "-o", str(frames_dir / "%04d.png")],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with av.open(str(clip)) as src:
        for f in src.decode(video=0):
            proc.stdin.write(f.to_ndarray(format="rgb24").tobytes())  # type: ignore[union-attr]
    proc.stdin.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
    if proc.wait():
        sys.exit(f"rembg b failed: {err[-2000:]}")
    pngs = sorted(frames_dir.glob("*.png"))
    if len(pngs) != args.frames:
        sys.exit(f"rembg b wrote {len(pngs)} PNGs for {args.frames} frames")
    rows.append(("rembg: decode → rembg b → PNGs", time.perf_counter() - t, _cpu() - c))

    # 2. ffmpeg -framerate 25 -i frames/%04d.png -i clip -map 0:v -map 1:a -c:v libvpx-vp9 -pix_fmt yuva420p
    #    -deadline realtime -cpu-used 8 -crf 30 -b:v 0 -row-mt 1 -c:a libopus out.webm
    t, c = time.perf_counter(), _cpu()
    out_r = tmp / "rembg.webm"
    with av.open(str(out_r), "w") as out, av.open(str(clip)) as inp:
        v = out.add_stream("libvpx-vp9", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuva420p"
        v.codec_context.options = dict(VP9_OPTIONS)
        a = out.add_stream("libopus", rate=48000, layout="mono")
        for i, p in enumerate(pngs):
            vf = av.VideoFrame.from_ndarray(np.asarray(Image.open(p).convert("RGBA")), format="rgba")
            vf.pts = i
            for pk in v.encode(vf):
                out.mux(pk)
        for pk in v.encode(None):
            out.mux(pk)
        res = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for af in inp.decode(audio=0):
            for o in res.resample(af):
                o.pts = None
                for pk in a.encode(o):
                    out.mux(pk)
        for pk in a.encode(None):
            out.mux(pk)
    rows.append(("rembg: PNGs + audio → WebM (PyAV)", time.perf_counter() - t, _cpu() - c))
    with av.open(str(out_r)) as chk:
        assert chk.streams.audio and chk.streams.video[0].frames in (0, args.frames)
    rembg_wall = rows[0][1] + rows[1][1]
    rembg_cpu = rows[0][2] + rows[1][2]

    # 3. alphacut remove clip -o out.webm (decode, infer, finish, temporal, encode, audio, verify)
    t, c = time.perf_counter(), _cpu()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "alphacut", "remove", str(clip), "--model", "u2netp", "-o",
                           str(tmp / "alphacut.webm"), "--json"], capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"alphacut failed: {done.stderr[-2000:]}")
    ours_wall, ours_cpu = time.perf_counter() - t, _cpu() - c
    n = args.frames
    print("| route | wall s | fps | CPU s | CPU ms/frame | output |")
    print("|---|---|---|---|---|---|")
    for name, s_, c_ in rows:
        print(f"| {name} | {s_:.1f} | {n / s_:.2f} | {c_:.1f} | {1000 * c_ / n:.0f} | |")
    print(f"| **rembg route, total** | {rembg_wall:.1f} | {n / rembg_wall:.2f} | {rembg_cpu:.1f} | "
          f"{1000 * rembg_cpu / n:.0f} | {out_r.stat().st_size:,} B, not checked |")
    size = (tmp / "alphacut.webm").stat().st_size
    print(f"| **alphacut remove** (process start, model load, verify) | {ours_wall:.1f} | {n / ours_wall:.2f} | "
          f"{ours_cpu:.1f} | {1000 * ours_cpu / n:.0f} | {size:,} B, verified |")
    print(f"\nalphacut / rembg: wall {ours_wall / rembg_wall:.2f}, CPU {ours_cpu / rembg_cpu:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--sizes", default="854x480,1920x1080")
    t.add_argument("--frames", type=int, default=24)
    t.add_argument("--models", default="isnet,u2netp")
    m = sub.add_parser("memory")
    m.add_argument("--short", type=int, default=300)
    m.add_argument("--long", type=int, default=1500)
    m.add_argument("--size", default="1920x1080")
    m.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    m.add_argument("--every", type=int, default=50, help="the child reports its RSS every N frames")
    m.add_argument("--separate", action="store_true", help="a short and a long clip, each in its own process")
    e = sub.add_parser("encoder")
    e.add_argument("--size", default="1920x1080")
    e.add_argument("--frames", type=int, default=48)
    e.add_argument("--clip", default=None, help="a clip with its own alpha to take the frames from")
    e.add_argument("--variants", default=";cpu-used=7;cpu-used=6;row-mt=0;threads=1;"
                   "deadline=good,cpu-used=4;deadline=good,cpu-used=2",
                   help="';'-separated settings, each k=v,k=v over the default (empty: the default)")
    c = sub.add_parser("stages")
    c.add_argument("--size", default="1920x1080")
    c.add_argument("--frames", type=int, default=24)
    c.add_argument("--models", default="u2netp")
    c.add_argument("--vp9", default="", help="VP9 option overrides, k=v,k=v (e.g. cpu-used=9)")
    s = sub.add_parser("sizes")
    s.add_argument("--clip", default=str(ROOT / "tests/data/video/mb_trim-buck-bunny.webm"))
    s.add_argument("--seconds", type=float, default=None, help="only the first SECONDS of the clip")
    r = sub.add_parser("rembg")
    r.add_argument("--frames", type=int, default=24)
    r.add_argument("--size", default="854x480")
    r.add_argument("--rembg", default="/tmp/venv-rembg/bin/rembg")
    args = ap.parse_args()
    {"throughput": throughput, "encoder": encoder, "stages": stage_costs, "memory": memory, "sizes": sizes, "rembg": rembg}[args.cmd](args)


if __name__ == "__main__":
    main()
