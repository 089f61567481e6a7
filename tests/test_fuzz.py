"""A short, deterministic fuzz pass over sniff and decode (the long runs: fuzz/fuzz_decode.py).

Invariant (fuzz/harness.py): a sane Picture no larger than max_pixels, or an InputError —
never another exception, never a hang, never a crash.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fuzz"))

from harness import check_decode, check_sniff, load_seeds  # noqa: E402
from mutators import STRUCTURED, generated_seeds, mutate, png_chunk  # noqa: E402

from fuzz_decode import run_loop  # noqa: E402

REGRESSIONS = Path(__file__).parent / "data" / "fuzz_regressions"
SEEDS = load_seeds(max_bytes=32_000)
FAST = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_seeds_cover_every_format() -> None:
    from mutators import kind

    assert {kind(s) for s in SEEDS} >= {"png", "jpeg", "isobmff", "webp", "gif", "bmp", "tiff"}


def test_bounded_mutation_pass_finds_nothing(tmp_path: Path) -> None:
    counts, findings = run_loop(seconds=6, seed=0, max_inputs=1500, quiet=True, last_input=tmp_path / "last")
    assert not findings, findings
    assert counts["ok"] > 0 and sum(counts.values()) > 100, counts


@FAST
@given(st.integers(0, len(SEEDS) - 1), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_mutated_corpus_files(index: int, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    check_decode(mutate(SEEDS[index], rng, SEEDS, rounds=rounds))


@FAST
@given(st.sampled_from(sorted(STRUCTURED)), st.integers(0, 2**32 - 1))
def test_every_structured_mutator(fmt: str, seed: int) -> None:
    """Each format's own mutators (lengths, dimensions, nesting) on that format's seeds."""
    from mutators import kind

    rng = random.Random(seed)
    pool = [s for s in SEEDS if kind(s) == fmt] or generated_seeds()
    data = rng.choice(pool)
    for fn in STRUCTURED[fmt]:
        data = fn(data, rng)
    check_decode(data)


@FAST
@given(
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.sampled_from([1, 2, 4, 8, 16, 3, 0]), st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
    st.integers(0, 2), st.binary(max_size=300), st.booleans(),
)
def test_png_with_any_header(width: int, height: int, depth: int, ctype: int, interlace: int, raw: bytes, compress: bool) -> None:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace)
    body = zlib.compress(raw) if compress else raw
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    check_decode(data)


SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a", b"II*\x00", b"MM\x00*",
              b"BM", b"\x00\x00\x00\x18ftypheic", b"\x00\x00\x00\x18ftypavif", b"\x00\x00\x00\x10ftypmif1"]


@FAST
@given(st.sampled_from(SIGNATURES), st.binary(max_size=400))
def test_any_bytes_after_a_signature(signature: bytes, tail: bytes) -> None:
    check_decode(signature + tail)


@FAST
@given(st.binary(max_size=80))
def test_sniff_any_bytes(head: bytes) -> None:
    check_sniff(head)


@pytest.mark.parametrize("path", sorted(p for p in REGRESSIONS.iterdir() if p.suffix != ".md"), ids=lambda p: p.name)
def test_fuzz_regressions_are_refused_quickly(path: Path) -> None:
    """Each once crashed or stalled the decoder: run in a child so a segfault fails one test only."""
    code = (
        "import sys, time; sys.path.insert(0, 'fuzz'); from harness import check_decode; "
        f"t = time.perf_counter(); print(check_decode(open({str(path)!r}, 'rb').read(), timeout=5)); "
        "print(round(time.perf_counter() - t, 2))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcome, seconds = proc.stdout.split()
    assert outcome in ("truncated", "corrupt"), proc.stdout
    assert float(seconds) < 2.0
