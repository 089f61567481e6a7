"""Every corpus file becomes a verified cutout or a specific, documented refusal.

Never a traceback (a non-AlphacutError), never a hang (each file runs under a time bound).
Small files run the whole pipeline with the real u2netp model; larger ones are decoded only in
the default run, and files over 20 MP run only with ALPHACUT_SLOW=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alphacut import errors
from support.corpus import (
    FULL_PIPELINE_MAX_PIXELS,
    LOCAL_CORPUS,
    SHARED_FORMATS,
    SLOW_PIXELS,
    classify,
    corpus_files,
    declared_pixels,
)

SLOW = os.environ.get("ALPHACUT_SLOW") == "1"
DOCUMENTED_CODES = {cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.InputError)}
ERRORS_DOC = Path(__file__).resolve().parents[1] / "docs" / "ERRORS.md"

#: refusals we expect, by file: each is a real defect in the file, not in alphacut
EXPECTED_REFUSALS = {
    "heic/error_cases/corrupted.heic": "corrupt",
    "heic/error_cases/empty.heic": "empty",
    "jpeg_odd/truncated_jpeg.jpg": "truncated",
    "jpeg_odd/ultrahdr.jpg": "truncated",  # Pillow's own test file: the primary image's scan stops early
}


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


#: the local corpus is a copy of part of the shared one: those files run once, from tests/data
LOCAL_DIGESTS = {_digest(p) for p in corpus_files(LOCAL_CORPUS)} if LOCAL_CORPUS.is_dir() else set()


def _params(root: Path, skip_local_copies: bool = False) -> list:
    if not root.is_dir():
        return [pytest.param(None, id="absent", marks=pytest.mark.skip(reason=f"{root} is not here"))]
    params = []
    for path in corpus_files(root):
        rel = path.relative_to(root).as_posix()
        if skip_local_copies and _digest(path) in LOCAL_DIGESTS:
            continue
        pixels = declared_pixels(path)
        marks = [pytest.mark.slow, pytest.mark.skipif(not SLOW, reason="over 20 MP: ALPHACUT_SLOW=1")] if pixels > SLOW_PIXELS else []
        params.append(pytest.param((root, rel, pixels), id=rel, marks=marks))
    return params


def _judge(case: tuple[Path, str, int], remover) -> None:
    root, rel, pixels = case
    full = SLOW or pixels <= FULL_PIPELINE_MAX_PIXELS
    outcome = classify(root / rel, remover, full=full, timeout=600 if pixels > SLOW_PIXELS else 60, name=rel)
    assert outcome.ok, f"{rel}: {outcome.code}: {outcome.detail}"
    if outcome.status == "refused":
        assert outcome.code in DOCUMENTED_CODES, outcome
        assert rel in EXPECTED_REFUSALS, f"unexpected refusal of {rel}: {outcome.code}: {outcome.detail}"
        assert outcome.code == EXPECTED_REFUSALS[rel]
        assert "BytesIO" not in outcome.detail and "Traceback" not in outcome.detail, outcome.detail
    else:
        assert rel not in EXPECTED_REFUSALS, f"{rel} was expected to be refused, got {outcome}"


@pytest.mark.parametrize("case", _params(LOCAL_CORPUS))
def test_local_corpus_file(case, u2netp) -> None:
    _judge(case, u2netp)


@pytest.mark.parametrize("case", _params(SHARED_FORMATS, skip_local_copies=True))
def test_shared_format_corpus_file(case, u2netp) -> None:
    _judge(case, u2netp)


def test_200mp_heic_is_refused_below_the_limit_before_decoding() -> None:
    """The 200 MP phone photo under a lower limit: refused from its header, fast."""
    path = SHARED_FORMATS / "heic" / "200MP.heic"
    if not path.exists():
        pytest.skip("the shared corpus is not here")
    outcome = classify(path, None, full=False, max_pixels=100_000_000, timeout=10)
    assert outcome.status == "refused" and outcome.code == "too-large", outcome
    assert outcome.seconds < 5, outcome
    assert "12240x16320" in outcome.detail


def test_every_input_error_code_is_documented() -> None:
    text = ERRORS_DOC.read_text()
    missing = [code for code in DOCUMENTED_CODES if f"`{code}`" not in text]
    assert not missing, f"docs/ERRORS.md does not document {missing}"


def test_cli_reports_every_refusal_as_a_code_never_a_traceback(tmp_path: Path) -> None:
    """The refusals as a user meets them: one JSON record each, exit 1 for the batch, no traceback."""
    import json
    import subprocess
    import sys

    from support.bombs import png_bomb

    cases = {
        "corrupted.heic": (LOCAL_CORPUS / "heic/error_cases/corrupted.heic").read_bytes(),
        "truncated.jpg": (LOCAL_CORPUS / "jpeg_odd/truncated_jpeg.jpg").read_bytes(),
        "empty.png": b"",
        "notes.jpg": b"just some text, not an image",
        "bomb.png": png_bomb(20_000),
    }
    expected = {"corrupted.heic": "corrupt", "truncated.jpg": "truncated", "empty.png": "empty",
                "notes.jpg": "unsupported-format", "bomb.png": "too-large"}
    paths = []
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "alphacut.cli", "remove", *paths, "-o", str(tmp_path / "out"), "--json"],
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin",
                                                                             "ALPHACUT_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    records = {Path(r["input"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert {name: r["code"] for name, r in records.items()} == expected
    out = tmp_path / "out"
    written = [p.name for p in out.iterdir() if p.name != "manifest.jsonl"] if out.exists() else []
    assert written == [], "no output for a refused file"
