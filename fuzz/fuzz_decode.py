"""Fuzz ``sniff`` and ``decode``: a bounded mutation loop, or atheris when it is installed.

    PYTHONPATH=src python fuzz/fuzz_decode.py --seconds 60 --seed 1     # mutation loop
    PYTHONPATH=src python fuzz/fuzz_decode.py --atheris -- -max_total_time=60
    PYTHONPATH=src python fuzz/fuzz_decode.py --replay fuzz/crashes/*    # re-run findings

Findings (inputs breaking the invariant in ``harness.py``) are written to ``fuzz/crashes/``.
Memory is bounded twice: ``max_pixels`` is low, and ``--rss-limit-mb`` caps the address space.
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# harness (and through it PIL and alphacut) is imported lazily: atheris must instrument it on import

CRASHES = Path(__file__).resolve().parent / "crashes"


def save_finding(data: bytes, message: str) -> Path:
    CRASHES.mkdir(exist_ok=True)
    path = CRASHES / f"crash-{hashlib.sha256(data).hexdigest()[:16]}"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(message + "\n")
    return path


def run_loop(seconds: float, seed: int, max_inputs: int | None = None, quiet: bool = False,
             last_input: Path | None = None) -> tuple[Counter[str], list[str]]:
    """Mutate corpus seeds for ``seconds``; return outcome counts and the findings' messages."""
    from harness import Finding, check_decode, load_seeds
    from mutators import mutate

    rng = random.Random(seed)
    seeds = load_seeds()
    counts: Counter[str] = Counter()
    findings: list[str] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and (max_inputs is None or n < max_inputs):
        data = mutate(rng.choice(seeds), rng, seeds)
        n += 1
        if last_input is not None:  # survives a segfault: the input that killed the process
            last_input.write_bytes(data)
        try:
            counts[check_decode(data)] += 1
        except Finding as exc:
            counts["FINDING"] += 1
            path = save_finding(data, str(exc))
            findings.append(f"{path.name}: {exc}")
            if not quiet:
                print(f"FINDING {path}: {exc}", flush=True)
    return counts, findings


def run_atheris(argv: list[str]) -> None:
    """Coverage-guided: libFuzzer mutates, starting from the corpus seeds written to fuzz/seeds/."""
    import atheris
    import numpy  # noqa: F401 - imported before instrumentation: not ours to cover

    with atheris.instrument_imports(include=["PIL", "alphacut", "harness"]):
        from harness import Finding, check_decode, load_seeds
    seed_dir = Path(__file__).resolve().parent / "seeds"
    seed_dir.mkdir(exist_ok=True)
    for i, data in enumerate(load_seeds()):
        (seed_dir / f"seed-{i:03d}").write_bytes(data)

    def one_input(data: bytes) -> None:
        try:
            check_decode(data)
        except Finding as exc:
            save_finding(data, str(exc))
            raise

    if not any(not a.startswith("-") for a in argv):
        argv = [*argv, str(seed_dir)]
    if not any(a.startswith("-max_len") for a in argv):
        argv = ["-max_len=65536", *argv]
    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-limit-mb", type=int, default=4096, help="RLIMIT_AS for this process (0: none)")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided fuzzing with atheris")
    parser.add_argument("--replay", nargs="*", type=Path, help="re-check saved inputs")
    args, rest = parser.parse_known_args()
    if args.rss_limit_mb:
        limit = args.rss_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if args.replay is not None:
        from harness import Finding, check_decode

        bad = 0
        for path in args.replay:
            if path.suffix == ".txt":
                continue
            try:
                print(f"{path}: {check_decode(path.read_bytes())}")
            except Finding as exc:
                bad += 1
                print(f"{path}: FINDING {exc}")
        return 1 if bad else 0
    if args.atheris:
        run_atheris([a for a in rest if a != "--"])
        return 0
    started = time.monotonic()
    CRASHES.mkdir(exist_ok=True)
    faulthandler.enable()
    counts, findings = run_loop(args.seconds, args.seed, last_input=CRASHES / "last-input")
    total = sum(counts.values())
    print(f"inputs: {total} in {time.monotonic() - started:.0f} s (seed {args.seed})")
    for key, value in counts.most_common():
        print(f"  {key:20} {value}")
    print(f"findings: {len(findings)}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
