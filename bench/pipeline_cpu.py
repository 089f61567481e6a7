"""The pipeline's own CPU at 12 MP: every step but the model passes, piece by piece.

    PYTHONPATH=src .venv/bin/python bench/pipeline_cpu.py                 # the 12 MP dog, 3 reps
    PYTHONPATH=src .venv/bin/python bench/pipeline_cpu.py --image photo.jpg --reps 5
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/pipeline_cpu.py   # another version

In one process (restarted with the huge-page tunable, as the ``alphacut`` command runs), after
one warm-up image: CPU seconds (user + system, every thread), the kernel's share and the minor
page faults of each piece — decode, the models' input, the second opinion's decision, the
full-resolution matte and colour (fused, as the pipeline runs them for a large photo, and apart,
as it runs them otherwise), compose + encode, verification — the lowest of ``--reps`` runs.
The model passes themselves are timed too, for scale, but are not the pipeline's own work.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOG = REPO.parent / "shared" / "eval" / "formats" / "jpeg_odd" / "libavif" / "dog_exif_extended_xmp_icc.jpg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(DOG))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", default="isnet")
    args = ap.parse_args()
    from alphacut.memory import restart_with_huge_pages

    restart_with_huge_pages()
    import numpy as np

    from alphacut import pipeline
    from alphacut.api import Remover
    from alphacut.imageio.decode import read_input
    from alphacut.imageio.encode import StraightRGBA, encode_pixels
    from alphacut.imageio.verify import verify_encoded
    from alphacut.matte.decide import decide_mattes
    from alphacut.matte.decontaminate import estimate_foreground
    from alphacut.matte.predict import prepare_input, read_output
    from alphacut.matte.upsample import upsample_matte
    from alphacut.pipeline import Options, compose

    try:
        from alphacut.matte.fused import fuses, upsample_and_decontaminate
    except ImportError:  # an older checkout
        fuses = upsample_and_decontaminate = None  # type: ignore[assignment]
    try:
        from alphacut.matte.predict import model_view
    except ImportError:
        model_view = None  # type: ignore[assignment]

    r = Remover(args.model)
    session, spec = r.session, r.spec
    helper, _ = r.stages.helper(args.model)
    opts = Options(model=args.model)
    rows: dict[str, tuple[float, float, int]] = {}

    def t(name: str, fn, reps: int = args.reps):  # type: ignore[no-untyped-def]
        best = None
        for _ in range(reps):
            u0 = resource.getrusage(resource.RUSAGE_SELF)
            out = fn()
            u1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime
            row = (cpu, u1.ru_stime - u0.ru_stime, u1.ru_minflt - u0.ru_minflt)
            best = row if best is None or row[0] < best[0] else best
        rows[name] = best  # type: ignore[assignment]
        return out

    data, _ = read_input(args.image)
    for warm in (True, False):  # one image through everything first (sessions, pools, caches)
        reps = 1 if warm else args.reps
        pic = t("decode", lambda: pipeline.decode_input(data, name="bench", options=opts), reps)
        if model_view is not None:
            seen = t("model input (IS-Net's view, shared with decide)", lambda: model_view(pic.rgb, spec), reps)
            x = t("model input (normalise)", lambda: prepare_input(seen, spec), reps)
        else:
            seen = pic.rgb
            x = t("model input", lambda: prepare_input(pic.rgb, spec), reps)
        out = t("model pass (not the pipeline's own)", lambda: session.run(x), 1)
        coarse = read_output(out[spec.output_index], spec)
        if helper is not None:
            x2 = t("second opinion's input", lambda: prepare_input(pic.rgb, helper[1]), reps)
            out2 = t("second opinion's pass (not the pipeline's own)", lambda: helper[0].run(x2), reps)
            other = read_output(out2[helper[1].output_index], helper[1])
            edges = seen if seen.shape[:2] == coarse.shape else pic.rgb
            coarse = t("decide (two opinions)", lambda: decide_mattes(coarse, other, edges), reps)
        if fuses is not None and fuses(pic.rgb.shape):
            matte, fg = t("upsample + decontaminate, fused", lambda: upsample_and_decontaminate(coarse, pic.rgb), reps)
        matte_apart = t("  (apart) upsample", lambda: upsample_matte(coarse, pic.rgb), reps)
        fg_apart = t("  (apart) decontaminate", lambda: estimate_foreground(pic.rgb, matte_apart), reps)
        if fuses is None or not fuses(pic.rgb.shape):
            matte, fg = matte_apart, fg_apart
        cut = pipeline.Cutout(pic, matte, fg, opts)

        def encode():  # what pipeline.render does before verifying
            pixels, settings = compose(cut)
            if isinstance(pixels, StraightRGBA):
                pixels = pixels.materialize()
            return pixels, settings, encode_pixels(pixels, settings)

        pixels, settings, blob = t("compose + encode (PNG)", encode, reps)
        t("verify (decode again, compare)", lambda: verify_encoded(blob, pixels, settings), reps)

    print(f"{Path(args.image).name} {pic.rgb.shape[1]}x{pic.rgb.shape[0]}, {args.model}; lowest of {args.reps}; "
          f"CPU s (user + system, all threads)\n")
    print("| piece | CPU s | of which kernel | minor faults |")
    print("|---|---|---|---|")
    own = 0.0
    for name, (cpu, sys_s, faults) in rows.items():
        print(f"| {name} | {cpu:.3f} | {sys_s:.3f} | {faults} |")
        counted = not name.startswith("  (apart)") and "not the pipeline" not in name
        if name == "upsample + decontaminate, fused" or (name.startswith("  (apart)") and "upsample + decontaminate, fused" not in rows):
            counted = True
        if counted and not name.startswith("decide"):
            own += cpu
    decide = rows.get("decide (two opinions)", (0.0, 0.0, 0))[0]
    print(f"\nthe pipeline's own CPU (decode, model input, upsampling, decontamination, encoding, verification): "
          f"{own:.2f} s; with the second opinion's decision: {own + decide:.2f} s")


if __name__ == "__main__":
    main()
