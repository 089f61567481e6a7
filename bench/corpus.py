"""Corpus table for the note: every format-corpus file, processed or refused (by reason).

    PYTHONPATH=src:tests python bench/corpus.py                 # full pipeline on every file
    PYTHONPATH=src:tests python bench/corpus.py --decode-only   # decode check only (seconds)

Exit status 1 when any file FAILs (a non-AlphacutError exception or a hang).
"""

from __future__ import annotations

import argparse
import resource
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from support.corpus import LOCAL_CORPUS, SHARED_FORMATS, classify, corpus_files  # noqa: E402

from alphacut.imageio.decode import DEFAULT_MAX_PIXELS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[SHARED_FORMATS, LOCAL_CORPUS])
    parser.add_argument("--decode-only", action="store_true", help="decode and check, no model")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--skip-over", type=int, default=0, metavar="PIXELS",
                        help="decode-only for files declaring more pixels than this (0: no limit)")
    parser.add_argument("--timeout", type=float, default=600.0, help="per-file time bound, seconds")
    args = parser.parse_args(argv)

    remover = None
    if not args.decode_only:
        from alphacut.api import Remover
        from alphacut.models.store import ModelStore, default_home

        remover = Remover("u2netp", store=ModelStore(default_home(), offline=True))
        remover.session

    from support.corpus import declared_pixels

    tally: Counter[str] = Counter()
    for root in args.roots:
        if not root.is_dir():
            print(f"# {root}: absent, skipped")
            continue
        print(f"# {root}")
        for path in corpus_files(root):
            rel = path.relative_to(root).as_posix()
            full = not args.skip_over or declared_pixels(path) <= args.skip_over
            out = classify(path, remover, full=full, max_pixels=args.max_pixels, timeout=args.timeout, name=rel)
            key = out.status if out.status != "refused" else f"refused:{out.code}"
            if out.status == "FAIL":
                key = f"FAIL:{out.code}"
            tally[f"{root.name}\t{key}"] += 1
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # process peak so far, MB
            print(f"{out.status:9} {out.code:18} {out.seconds:7.2f}s {peak:6d}MB  {rel}  {out.detail}", flush=True)
    print("\n# summary (root, outcome, files)")
    for key, count in sorted(tally.items()):
        print(f"{key}\t{count}")
    return 1 if any(k.split("\t")[1].startswith("FAIL") for k in tally) else 0


if __name__ == "__main__":
    sys.exit(main())
