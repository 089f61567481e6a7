"""Pixel limits: bombs are refused from their headers, fast, before any pixel memory exists.

The decode runs in a child process that measures its own peak RSS (``ru_maxrss``) before and
after, under an address-space cap (``RLIMIT_AS``) so a regression cannot take the machine down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alphacut.errors import ImageTooLargeError
from support.bombs import all_bombs, png_bomb

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, os, resource, sys, time
    from alphacut.errors import AlphacutError
    from alphacut.imageio.decode import decode
    import base64
    decode(base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="))  # warm up
    vsize = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vsize + int(sys.argv[3]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    results = {}
    for path in sys.argv[1].split(","):
        data = open(path, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        try:
            decode(data, name=os.path.basename(path), max_pixels=int(sys.argv[2]))
            outcome = "decoded"
        except AlphacutError as err:
            outcome = err.code + ": " + err.reason
        results[os.path.basename(path)] = {
            "outcome": outcome, "seconds": time.perf_counter() - t, "bytes": len(data),
            "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
        }
    print(json.dumps(results))
""")


def decode_in_child(files: list[Path], max_pixels: int, headroom_mb: int = 400) -> dict[str, dict]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(map(str, files)), str(max_pixels), str(headroom_mb)],
        capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bombs_are_refused_fast_without_memory_growth(tmp_path: Path) -> None:
    files = []
    for name, data in all_bombs().items():
        path = tmp_path / name
        path.write_bytes(data)
        files.append(path)
    results = decode_in_child(files, max_pixels=260_000_000)
    for name, r in results.items():
        assert r["outcome"].startswith("too-large:") and "over the limit" in r["outcome"], (name, r)
        assert r["seconds"] < 1.0, (name, r)
        assert r["rss_growth_mb"] < 20, (name, r)
        assert r["bytes"] < 100_000, (name, r)


def test_a_lower_limit_refuses_a_real_bomb_under_the_default(tmp_path: Path) -> None:
    """144 MP of real (compressed) zeros: under the default limit, refused at --max-pixels 50M."""
    path = tmp_path / "bomb-12000.png"
    path.write_bytes(png_bomb(12_000))
    r = decode_in_child([path], max_pixels=50_000_000)[path.name]
    assert r["outcome"].startswith("too-large:") and "12000x12000" in r["outcome"], r
    assert r["seconds"] < 1.0 and r["rss_growth_mb"] < 20, r


def test_max_pixels_option_reaches_the_decoder(photo_jpeg: Path) -> None:
    from alphacut.api import Remover

    with pytest.raises(ImageTooLargeError, match="76,800 pixels, over the limit of 1,000 pixels"):
        Remover("u2netp").remove(photo_jpeg, max_pixels=1000)  # refused before the model is even loaded


def test_max_pixels_on_the_command_line(photo_jpeg: Path, tmp_path: Path) -> None:
    from alphacut.cli import main

    out = tmp_path / "out.png"
    code = main(["remove", str(photo_jpeg), "-o", str(out), "--max-pixels", "1000", "--json"])
    assert code == 3 and not out.exists()


def test_tiny_files_expanding_under_the_pixel_limit_are_refused(tmp_path: Path) -> None:
    """256 MP from a few KB (AVIF 'ispe'), 144 MP of compressed zeros (PNG): bombs under 260 MP."""
    from support.bombs import avif_ispe_bomb

    files = [tmp_path / "avif-ispe-16000.avif", tmp_path / "png-12000.png"]
    files[0].write_bytes(avif_ispe_bomb(16_000))
    files[1].write_bytes(png_bomb(12_000))
    results = decode_in_child(files, max_pixels=260_000_000)
    for name, r in results.items():
        assert r["outcome"].startswith("too-large:") and "decompression bomb" in r["outcome"], (name, r)
        assert r["seconds"] < 1.0 and r["rss_growth_mb"] < 20, (name, r)


def test_the_200mp_phone_photo_is_not_taken_for_a_bomb() -> None:
    from alphacut.imageio.decode import BOMB_PIXELS_PER_BYTE

    from support.corpus import SHARED_FORMATS

    path = SHARED_FORMATS / "heic" / "200MP.heic"
    if not path.exists():
        pytest.skip("the shared corpus is not here")
    assert 12240 * 16320 < path.stat().st_size * BOMB_PIXELS_PER_BYTE / 10  # a wide margin
