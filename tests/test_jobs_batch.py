"""Batches through the real engine and the real u2netp model: mixed good and bad files, a
SIGKILLed and a hung worker, resume, ZIP in and out, unsafe names, the CLI's exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from alphacut.inputs import distinct_outputs, expand, mirror, safe_member_name
from alphacut.cli.progress import Reporter
from alphacut.jobs.batch import run_batch
from alphacut.jobs.manifest import read_manifest
from alphacut.pipeline import Options
from conftest import encode_image, subject_image
from support.faulty_worker import FAULT_ENV, faulty_worker_main

OPTS = Options(model="u2netp")
ENGINE = {"workers": 1, "job_timeout": 8}
SRC = Path(__file__).resolve().parents[1] / "src"


def png(seed: int) -> bytes:
    return encode_image(subject_image(128, 96, seed=seed), "PNG")


def jpg(seed: int) -> bytes:
    return encode_image(subject_image(128, 96, seed=seed), "JPEG")


class StopAfter(Reporter):
    """Sets the batch's stop event (as Ctrl-C does) after ``n`` finished files."""

    def __init__(self, n: int, stop: threading.Event) -> None:
        super().__init__(0)
        self.n, self.stop_event = n, stop

    def finished(self, rec: dict) -> None:
        super().finished(rec)
        if self.count >= self.n:
            self.stop_event.set()


def statuses(manifest: Path) -> dict[str, tuple[str, str | None]]:
    return {Path(r["input"]).name if "!" not in r["input"] else r["input"].split("!", 1)[1]: (r["status"], r["code"])
            for r in read_manifest(manifest).values()}


def test_mixed_batch_with_bad_files_and_dying_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    expected: dict[str, tuple[str, str | None]] = {}
    for i in range(18):
        folder = src / "sub" if i % 3 == 0 else src
        name = f"img{i:02d}.png" if i % 2 else f"img{i:02d}.jpg"
        (folder / name).write_bytes(png(i) if i % 2 else jpg(i))
        expected[name] = ("done", None)
    (src / "mislabelled.png").write_bytes(jpg(50))  # JPEG bytes under a .png name: works
    (src / "also-mislabelled.webp").write_bytes(png(51))
    # fixed bytes: some random tails read as a chunk longer than the file, i.e. "truncated"
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(400))
    (src / "empty.png").write_bytes(b"")
    (src / "truncated.jpg").write_bytes(jpg(52)[:200])
    (src / "unknown.webp").write_bytes(b"this is not an image at all")
    (src / "notes.txt").write_text("skipped: not an image")
    (src / "killed.png").write_bytes(png(53))
    (src / "hung.png").write_bytes(png(54))
    expected.update({
        "mislabelled.png": ("done", None), "also-mislabelled.webp": ("done", None),
        "corrupt.png": ("failed", "corrupt"), "empty.png": ("failed", "empty"),
        "truncated.jpg": ("failed", "truncated"), "unknown.webp": ("failed", "unsupported-format"),
        "killed.png": ("failed", "worker-crashed"), "hung.png": ("failed", "timeout"),
    })
    monkeypatch.setenv(FAULT_ENV, "kill:killed.png;hang:hung.png")
    out = tmp_path / "out"
    summary = run_batch([str(src)], out, OPTS, engine_kwargs={**ENGINE, "worker_main": faulty_worker_main})
    got = statuses(out / "manifest.jsonl")
    assert got == expected
    assert summary.exit_code == 1 and summary.done == 20 and len(summary.failed) == 6
    assert all(r["reason"] and Path(r["input"]).name in r["reason"] for r in summary.failed)
    for rec in read_manifest(out / "manifest.jsonl").values():
        if rec["status"] == "done":
            data = Path(rec["output"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == rec["sha256"] and rec["provider"] and rec["timings"]
    assert (out / "sub" / "img00.png").is_file() and (out / "img01.png").is_file()
    assert (out / "mislabelled.png").is_file() and not (out / "empty.png").exists()


def test_names_mirror_inputs_without_collisions(tmp_path: Path) -> None:
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "p.jpg").write_bytes(jpg(1))
    (tmp_path / "a" / "x" / "p.png").write_bytes(png(1))
    (tmp_path / "a" / "x" / "P.webp").write_bytes(png(2))
    outside = tmp_path / "secret.png"
    outside.write_bytes(png(3))
    (tmp_path / "a" / "link.png").symlink_to(outside)
    items = expand([str(tmp_path / "a")])
    outputs = distinct_outputs(items, mirror(".png"))
    names = {Path(i.name).name: outputs[i.source_id] for i in items}
    assert names == {"link.png": "link.png", "P.webp": "x/P.png", "p.jpg": "x/p-2.png", "p.png": "x/p-3.png"}
    link = [i for i in items if i.name.endswith("link.png")][0]
    assert link.problem and link.problem[0] == "unsafe-path"
    for bad in ("../x.png", "/etc/x.png", "a/../../x.png", "C:\\x.png", "..\\x.png"):
        assert safe_member_name(bad) is None
    assert safe_member_name("a\\b/./c.png") == "a/b/c.png"


def test_interrupt_then_resume_makes_exactly_the_missing_outputs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        (src / f"r{i}.png").write_bytes(png(i))
    out = tmp_path / "out"
    stop = threading.Event()
    first = run_batch([str(src)], out, OPTS, engine_kwargs=ENGINE, reporter=StopAfter(3, stop), stop=stop)
    assert first.interrupted and first.exit_code == 130
    made = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 3 <= len(made) < 8
    seen: list[str] = []

    class Log(Reporter):
        def finished(self, rec: dict) -> None:
            seen.append(Path(rec["input"]).name)

    second = run_batch([str(src)], out, OPTS, engine_kwargs=ENGINE, resume=True, reporter=Log(0))
    assert second.exit_code == 0 and second.done == 8 and second.skipped_done == len(made)
    assert sorted(seen) == sorted(f"r{i}.png" for i in range(8) if f"r{i}.png" not in made)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name in made} == made
    assert sorted(p.name for p in out.glob("*.png")) == [f"r{i}.png" for i in range(8)]
    assert all(r["status"] == "done" for r in read_manifest(out / "manifest.jsonl").values())


def test_zip_in_zip_out_valid_after_early_stop(tmp_path: Path) -> None:
    archive = tmp_path / "shots.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(6):
            zf.writestr(f"cat/z{i}.png", png(i))
        zf.writestr("../evil.png", png(9))
        zf.writestr("/abs.png", png(9))
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("cat/bad.jpg", b"\xff\xd8\xff" + b"\0" * 50)
    out = tmp_path / "result" / "cutouts.zip"
    stop = threading.Event()
    first = run_batch([str(archive)], out, OPTS, engine_kwargs=ENGINE, reporter=StopAfter(5, stop), stop=stop)
    assert first.interrupted
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        done_first = set(zf.namelist())
    assert done_first and all(n.startswith("cat/z") for n in done_first)
    second = run_batch([str(archive)], out, OPTS, engine_kwargs=ENGINE, resume=True)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
    assert sorted(names) == [f"cat/z{i}.png" for i in range(6)] and len(names) == len(set(names))
    got = statuses(out.with_name("cutouts.manifest.jsonl"))
    assert got["../evil.png"] == ("failed", "unsafe-path") and got["/abs.png"] == ("failed", "unsafe-path")
    assert got["link.png"] == ("failed", "unsafe-path") and got["cat/bad.jpg"][0] == "failed"
    assert second.exit_code == 1
    assert not (tmp_path / "evil.png").exists() and sorted(p.name for p in out.parent.iterdir()) == \
        ["cutouts.manifest.jsonl", "cutouts.zip"]


def test_cli_zip_output_exit_code_and_summary(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "ok.png").write_bytes(png(1))
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, "-m", "alphacut.cli", "remove", str(src), "-o", str(tmp_path / "o.zip"),
                           "--model", "u2netp", "--workers", "1"], capture_output=True, env=env, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "1 of 2 done" in err and "bad.png" in err and "failed" in err
    with zipfile.ZipFile(tmp_path / "o.zip") as zf:
        assert zf.namelist() == ["ok.png"]
    lines = [json.loads(x) for x in (tmp_path / "o.manifest.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in lines) == ["done", "failed"]
