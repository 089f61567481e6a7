"""The rows Ray's tasks run (``distributed.rows``), called in-process: each catches its own
errors as the row's reason, and a clip is refused with the reason until the executor can cut
its frames in order."""

from __future__ import annotations

import pickle
from pathlib import Path


from conftest import encode_image, subject_image

from alphacut.distributed.rows import decode_row, new_row
from alphacut.imageio import formats
from alphacut.inputs import expand
from alphacut.options import Options

OPTIONS = Options(model="u2netp")


def _row(path: Path) -> dict:
    (item,) = expand([str(path)])
    return new_row(0, item, path.stem + ".png")


def test_a_still_decodes_into_the_payload(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(encode_image(subject_image(64, 48), "JPEG"))
    row = decode_row(_row(path), model="u2netp", options=OPTIONS)
    assert row["status"] == "" and pickle.loads(row["payload"]).picture.rgb.shape == (48, 64, 3)


def test_a_bad_file_is_the_rows_reason_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    row = decode_row(_row(path), model="u2netp", options=OPTIONS)
    assert row["status"] == "failed" and row["code"] in ("corrupt", "truncated")
    assert str(path) in row["reason"] and row["payload"] == b""


def test_a_clip_is_refused_with_the_reason(tmp_path: Path) -> None:
    clip = formats.Format(name="testclip", kind="video", accept=lambda head: head.startswith(b"TESTCLIP"),
                          extensions=(".testclip",), mime="video/x-test")
    formats.register(clip)
    try:
        path = tmp_path / "c.testclip"
        path.write_bytes(b"TESTCLIP" + bytes(100))
        row = decode_row(_row(path), model="u2netp", options=OPTIONS)
    finally:
        formats.unregister("testclip")
    assert row["status"] == "failed" and row["code"] == "unsupported-format"
    assert "--ray" in row["reason"] and str(path) in row["reason"]
