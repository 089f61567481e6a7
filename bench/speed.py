"""Single-image speed and memory, side by side in one run: bare inference, alphacut, rembg.

"bare inference" is ``session.run`` alone on the session alphacut runs (for IS-Net on a CPU,
the float32 copy); "bare inference, downloaded file" is the same on the file as downloaded,
which is what another tool (rembg) runs. Each measurement runs in its own fresh process (so
peak RSS is that process's own), the model is loaded before the clock starts, and the cases
alternate round by round, because this machine is shared and noisy: read the medians and the
ratios, not one absolute time. Our cases run with glibc's huge-page tunable, as the ``alphacut``
command and the engine's workers do (``alphacut.memory``); rembg and the "4 KB pages" row
without it.

    .venv/bin/python bench/speed.py                      # isnet, 12 MP JPEG, 3 rounds
    .venv/bin/python bench/speed.py --model u2netp --rounds 5 --image photo.jpg
    .venv/bin/python bench/speed.py --sizes 12mp --baseline bad049f  # against an older commit

rembg (``pip install "rembg[cpu]"``) is measured on the same model file when importable
(``dis_custom`` for isnet, ``u2netp`` for u2netp); otherwise its rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"

# Each case is a small program run as `python -c CODE MODEL IMAGE OUT`; it prints one JSON line.
PRELUDE = """
import json, resource, sys, time
model, image, out = sys.argv[1], sys.argv[2], sys.argv[3]
_cpu0 = [0.0]
def start():
    _cpu0[0] = time.process_time()
    return time.perf_counter()
def report(seconds, stages=None):
    print(json.dumps({"seconds": seconds, "cpu_s": time.process_time() - _cpu0[0], "stages": stages or {},
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CASES = {
    "bare inference": PRELUDE + """
import numpy as np
from alphacut.api import Remover, picture_from
from alphacut.matte.predict import prepare_input
r = Remover(model); s = r.session
x = prepare_input(picture_from(image).rgb, r.spec)
t = start(); s.run(x); report(time.perf_counter() - t)
""",
    "bare inference, downloaded file": PRELUDE + """
import numpy as np
from alphacut.api import picture_from
from alphacut.matte.predict import prepare_input
from alphacut.models.catalog import get_spec
from alphacut.models.session import ModelSession
from alphacut.models.store import ModelStore
s = ModelSession(ModelStore().ensure(model))  # the file as downloaded (float16 for IS-Net)
x = prepare_input(picture_from(image).rgb, get_spec(model))
t = start(); s.run(x); report(time.perf_counter() - t)
""",
    "alphacut fast": PRELUDE + """
from pathlib import Path
from alphacut.api import Remover, Result, picture_from
from alphacut.fsutil import atomic_write
from alphacut.pipeline import Options
from alphacut.second_opinion import helper_loader
r = Remover(model); r.session
helper_loader()(model)  # the second opinion's model, loaded before the clock like the main one
t = start()
opts = Options(model=model)
picture = picture_from(Path(image), options=opts)
decoded = time.perf_counter() - t
res = Result(r.process(picture, opts))
atomic_write(out, res.encode("png"))
report(time.perf_counter() - t, {"decode": decoded, **res.timings})
""",
    "alphacut fast, 4 KB pages": None,  # the same code without the huge-page tunable (see PLAIN_PAGES)
    "rembg": PRELUDE + """
import os
import pillow_heif
pillow_heif.register_heif_opener()  # rembg reads images with Pillow, which needs this for HEIC
from rembg import new_session, remove
from alphacut.models.store import ModelStore
# rembg only loads model files from inside its own folder (U2NET_HOME): link ours in there
home = os.environ["U2NET_HOME"]
link = os.path.join(home, model + ".onnx")
if not os.path.exists(link):
    os.symlink(ModelStore().path(model), link)
s = new_session("dis_custom", model_path=link) if model.startswith("isnet") else new_session(model)
t = start()
data = remove(open(image, "rb").read(), session=s)
open(out, "wb").write(data)
report(time.perf_counter() - t)
""",
}


CASES["alphacut fast, 4 KB pages"] = CASES["alphacut fast"]
#: cases run as their users get them without alphacut's launcher: rembg, and alphacut itself
#: without glibc's huge-page tunable (what it bought). Every other case runs with the tunable,
#: as the ``alphacut`` command and the job engine's workers do (``alphacut.memory``), so "bare
#: inference" is measured under the same process settings as the pipeline around it.
PLAIN_PAGES = {"rembg", "alphacut fast, 4 KB pages"}


def default_images(tmp: Path, which: list[str]) -> list[Path]:
    """Real camera photos from the eval corpus at 1, 12 and 24 MP plus a 12 MP HEIC; synthetic
    photos of the same sizes when the corpus is absent."""
    import numpy as np
    from PIL import Image

    dog = EVAL / "formats/jpeg_odd/libavif/dog_exif_extended_xmp_icc.jpg"
    heic = EVAL / "formats/heic/pug.heic"
    if dog.exists():
        base = Image.open(dog)
        base.load()
    else:
        rng = np.random.default_rng(0)
        h, w = 3024, 4032
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], -1)
        disc = ((x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 3) ** 2)[..., None]
        img = np.where(disc, 255 - img, img) + rng.normal(0, 6, (h, w, 3))
        base = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    out = []
    for key in which:
        if key == "12mp" and dog.exists():
            out.append(dog)
            continue
        if key == "heic12":
            if heic.exists():
                out.append(heic)
            continue
        mp = {"1mp": 1.0, "12mp": 12.2, "24mp": 24.0}[key]
        scale = (mp * 1e6 / (base.size[0] * base.size[1])) ** 0.5
        size = (round(base.size[0] * scale), round(base.size[1] * scale))
        path = tmp / f"photo-{key}.jpg"
        base.resize(size, Image.Resampling.LANCZOS).save(path, quality=92)
        out.append(path)
    return out


def run_case(code: str, model: str, image: Path, out: Path, huge_pages: bool = True, src: Path | None = None) -> dict | None:
    from alphacut.memory import with_huge_pages

    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update(PYTHONPATH=str(src or REPO / "src"), U2NET_HOME=str(out.parent / "rembg-home"))
    if huge_pages:
        env = with_huge_pages(env) or env
    os.makedirs(env["U2NET_HOME"], exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", code, model, str(image), str(out)], capture_output=True,
                          text=True, env=env, timeout=1200)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(results: dict[str, list[dict]]) -> None:
    med = {c: statistics.median(r["seconds"] for r in rs) for c, rs in results.items() if rs}
    cpu = {c: statistics.median(r["cpu_s"] for r in rs) for c, rs in results.items() if rs}
    rss = {c: max(r["peak_rss_mb"] for r in rs) for c, rs in results.items() if rs}
    print("| case | median s | median CPU s | peak RSS MB | ×bare | ×bare (file) | ×rembg time | ×rembg CPU | ×rembg RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    nan = float("nan")
    file_case = "bare inference, downloaded file"
    for c in med:
        bare = med[c] / med["bare inference"] if "bare inference" in med else nan
        bare_file = med[c] / med[file_case] if file_case in med else nan
        vs_t = med[c] / med["rembg"] if "rembg" in med else nan
        vs_m = rss[c] / rss["rembg"] if "rembg" in rss else nan
        vs_c = cpu[c] / cpu["rembg"] if "rembg" in cpu else nan
        print(f"| {c} | {med[c]:.2f} | {cpu[c]:.2f} | {rss[c]:.0f} | {bare:.2f} | {bare_file:.2f} | {vs_t:.2f} | {vs_c:.2f} | {vs_m:.2f} |")
    staged = {c: rs for c, rs in results.items() if rs and rs[0].get("stages")}
    if staged:
        names = list(dict.fromkeys(k for rs in staged.values() for r in rs for k in r["stages"]))
        print("\nmedian seconds per stage (wall):\n")
        print("| case | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for c, rs in staged.items():
            cells = [f"{statistics.median(r['stages'].get(n, 0.0) for r in rs):.2f}" for n in names]
            print(f"| {c} | " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--image", type=Path, action="append", help="a photo to time (repeatable)")
    ap.add_argument("--sizes", default="1mp,12mp,24mp,heic12", help="built-in photos to time")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also time alphacut at this git revision (a temporary worktree), alternated with the rest")
    args = ap.parse_args()
    try:
        import rembg  # noqa: F401
        cases = list(CASES)
    except ImportError:
        print("rembg is not installed: its rows are skipped (pip install 'rembg[cpu]')")
        cases = [c for c in CASES if c != "rembg"]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sources: dict[str, Path] = {}
        if args.baseline:
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tmp / "baseline"),
                            args.baseline], check=True)
            baseline_case = f"alphacut fast @ {args.baseline}"
            CASES[baseline_case] = CASES["alphacut fast"]
            sources[baseline_case] = tmp / "baseline" / "src"
            if not (tmp / "baseline" / "src" / "alphacut" / "launch.py").exists():
                PLAIN_PAGES.add(baseline_case)  # a revision before the launcher ran without the tunable
            cases.insert(cases.index("alphacut fast") + 1, baseline_case)
        try:
            run_images(args, cases, sources, tmp)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "baseline")])
    return 0


def run_images(args: argparse.Namespace, cases: list[str], sources: dict[str, Path], tmp: Path) -> None:
    """Every image: all cases, alternated round by round, then its tables."""
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    for image in args.image or default_images(tmp, args.sizes.split(",")):
        with Image.open(image) as im:
            mp = im.size[0] * im.size[1] / 1e6
        print(f"\n### {image.name} ({mp:.1f} MP), model {args.model}, {args.rounds} rounds, alternated")
        results: dict[str, list[dict]] = {c: [] for c in cases}
        for _ in range(args.rounds):
            for case in cases:  # alternate so drift hits every case alike
                r = run_case(CASES[case], args.model, image, tmp / f"case{cases.index(case)}.png",
                             huge_pages=case not in PLAIN_PAGES, src=sources.get(case))
                if r:
                    results[case].append(r)
        print_table(results)


if __name__ == "__main__":
    sys.exit(main())
