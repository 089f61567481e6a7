"""The CLI as a user runs it: a real process, real files, real exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import encode_image, subject_image

SRC = Path(__file__).resolve().parents[1] / "src"


def alphacut(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "alphacut.cli", *args], input=stdin, capture_output=True,
                          env=env, cwd=cwd, timeout=300)


def test_remove_one_file_beside_the_input(tmp_path: Path) -> None:
    src = tmp_path / "cat.jpg"
    src.write_bytes(encode_image(subject_image(), "JPEG"))
    before = src.read_bytes()
    proc = alphacut("remove", str(src), "--model", "u2netp")
    assert proc.returncode == 0, proc.stderr.decode()
    out = tmp_path / "cat.cutout.png"
    assert Image.open(out).mode == "RGBA"
    assert src.read_bytes() == before, "the input is never touched"


def test_folder_with_a_bad_file_finishes_and_reports(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(encode_image(subject_image(seed=1), "PNG"))
    (folder / "sub" / "b.webp").write_bytes(encode_image(subject_image(seed=2), "WEBP"))
    (folder / "c.jpg").write_bytes(encode_image(subject_image(seed=3), "JPEG")[:300])  # truncated
    (folder / "notes.txt").write_text("not an image")
    proc = alphacut("remove", str(folder), "-o", str(tmp_path / "out"), "--model", "u2netp", "--json")
    assert proc.returncode == 1
    records = {Path(r["input"]).name: r for r in map(json.loads, proc.stdout.decode().splitlines())}
    assert records["a.png"]["status"] == "done" and records["b.webp"]["status"] == "done"
    assert records["c.jpg"]["status"] == "failed" and records["c.jpg"]["code"] in ("truncated", "corrupt")
    assert "c.jpg" in records["c.jpg"]["reason"]
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "sub" / "b.png").exists()
    assert not (tmp_path / "out" / "c.png").exists()


def test_stdin_to_stdout(tmp_path: Path) -> None:
    proc = alphacut("remove", "-", "-o", "-", "--model", "u2netp", "--mask-only",
                    stdin=encode_image(subject_image(), "PNG"))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"\x89PNG")
    out = tmp_path / "m.png"
    out.write_bytes(proc.stdout)
    assert Image.open(out).mode == "L"


def test_format_from_extension_and_background(tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    src.write_bytes(encode_image(subject_image(), "PNG"))
    proc = alphacut("remove", str(src), "-o", str(tmp_path / "x.webp"), "--model", "u2netp", "--bg", "#ffffff")
    assert proc.returncode == 0, proc.stderr.decode()
    img = Image.open(tmp_path / "x.webp")
    assert img.format == "WEBP" and img.mode == "RGB"
    assert np.asarray(img)[1, 1].min() > 200


def test_refuses_to_overwrite_the_input(tmp_path: Path) -> None:
    src = tmp_path / "same.png"
    src.write_bytes(encode_image(subject_image(), "PNG"))
    before = src.read_bytes()
    proc = alphacut("remove", str(src), "-o", str(src), "--model", "u2netp")
    assert proc.returncode == 2 and b"overwrite the input" in proc.stderr
    assert src.read_bytes() == before


def test_missing_and_unsupported_inputs_exit_with_input_error(tmp_path: Path) -> None:
    proc = alphacut("remove", str(tmp_path / "nope.jpg"), "--model", "u2netp")
    assert proc.returncode == 3 and b"nope.jpg" in proc.stderr and b"no such file" in proc.stderr
    bad = tmp_path / "doc.png"
    bad.write_bytes(b"%!PS-Adobe-3.0")  # (a PDF is a registered document now: see test_pdf.py)
    proc = alphacut("remove", str(bad), "--model", "u2netp")
    assert proc.returncode == 3 and b"not a supported image" in proc.stderr


def test_bad_colour_is_a_usage_error(tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    src.write_bytes(encode_image(subject_image(32, 32), "PNG"))
    proc = alphacut("remove", str(src), "--bg", "notacolour", "--model", "u2netp")
    assert proc.returncode == 2 and b"not a colour" in proc.stderr


def test_doctor_json() -> None:
    proc = alphacut("doctor", "--json", "--model", "u2netp")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert "CPUExecutionProvider" in report["provider_chain"]
    assert report["chosen_provider"] == "CPUExecutionProvider"
    assert any(m["name"] == "isnet" for m in report["models"])


def _sized(tmp: Path, name: str, width: int, height: int, seed: int) -> Path:
    """A real image whose size tells which input a cutout came from."""
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix]
    path.write_bytes(encode_image(subject_image(width, height, seed=seed), fmt))
    return path


def test_quoted_glob_without_and_with_output(tmp_path: Path) -> None:
    """A glob the shell did not expand (quoted, or a Windows shell) works with and without -o."""
    _sized(tmp_path, "shots/a.jpg", 96, 64, 1)
    _sized(tmp_path, "shots/b.jpg", 64, 96, 2)
    _sized(tmp_path, "shots/c.png", 80, 80, 3)  # not matched
    proc = alphacut("remove", "shots/*.jpg", "--model", "u2netp", "--workers", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    shots = tmp_path / "shots"
    assert sorted(p.name for p in shots.glob("*.cutout.png")) == ["a.cutout.png", "b.cutout.png"]
    assert Image.open(shots / "a.cutout.png").size == (96, 64) and Image.open(shots / "b.cutout.png").size == (64, 96)
    proc = alphacut("remove", "shots/*.jpg", "-o", "out", "--model", "u2netp", "--workers", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]


def test_same_stem_inputs_beside_never_share_an_output(tmp_path: Path) -> None:
    """a.jpg a.png without -o: two cutouts, each from its own input, the rule from --help."""
    jpg = _sized(tmp_path, "a.jpg", 96, 64, 1)
    png = _sized(tmp_path, "a.png", 64, 96, 2)
    before = (jpg.read_bytes(), png.read_bytes())
    proc = alphacut("remove", str(jpg), str(png), "--model", "u2netp", "--workers", "1", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    outputs = {Path(r["input"]).name: Path(r["output"]) for r in map(json.loads, proc.stdout.decode().splitlines())}
    assert outputs == {"a.jpg": tmp_path / "a.cutout.png", "a.png": tmp_path / "a-2.cutout.png"}
    assert Image.open(outputs["a.jpg"]).size == (96, 64) and Image.open(outputs["a.png"]).size == (64, 96)
    assert all(Image.open(p).mode == "RGBA" for p in outputs.values())
    assert (jpg.read_bytes(), png.read_bytes()) == before
    assert "NAME-2" in alphacut("remove", "--help").stdout.decode()


def test_same_stem_inputs_into_an_output_folder(tmp_path: Path) -> None:
    jpg = _sized(tmp_path, "in/a.jpg", 96, 64, 1)
    png = _sized(tmp_path, "in/A.png", 64, 96, 2)  # differs only in case: one name on macOS and Windows
    proc = alphacut("remove", str(jpg), str(png), "-o", str(tmp_path / "out"), "--model", "u2netp", "--workers", "1")
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["A-2.png", "a.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (96, 64)
    assert Image.open(tmp_path / "out" / "A-2.png").size == (64, 96)


def test_a_link_out_of_the_folder_is_refused_alike_with_and_without_output(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _sized(tmp_path, "in/good.png", 64, 64, 1)
    secret = _sized(tmp_path, "secret.png", 64, 64, 2)
    (folder / "link.png").symlink_to(secret)
    reasons = []
    for extra in ([], ["-o", str(tmp_path / "out")]):
        proc = alphacut("remove", str(folder), *extra, "--model", "u2netp", "--workers", "1", "--json")
        assert proc.returncode == 1, proc.stderr.decode()
        records = {Path(r["input"]).name: r for r in map(json.loads, proc.stdout.decode().splitlines())}
        assert records["good.png"]["status"] == "done"
        assert records["link.png"]["status"] == "failed" and records["link.png"]["code"] == "unsafe-path"
        reasons.append(records["link.png"]["reason"])
    assert reasons[0] == reasons[1] and "outside the folder" in reasons[0]
    assert not (folder / "link.cutout.png").exists() and not (tmp_path / "out" / "link.png").exists()
    assert (folder / "good.cutout.png").exists() and (tmp_path / "out" / "good.png").exists()
