"""The one input expander on real files: what is taken, what is refused, how outputs are named."""

from __future__ import annotations

import zipfile
from pathlib import Path

from alphacut.inputs import beside, distinct_outputs, expand, glob_root, mirror
from conftest import encode_image, subject_image


def png(seed: int = 0) -> bytes:
    return encode_image(subject_image(32, 24, seed=seed), "PNG")


def test_a_file_named_twice_is_one_input(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png())
    items = expand([str(tmp_path / "a.png"), str(tmp_path / "*.png"), str(tmp_path)])
    assert [i.name for i in items] == [str(tmp_path / "a.png")]


def test_glob_names_are_relative_to_its_fixed_folder(tmp_path: Path) -> None:
    assert glob_root("shots/**/*.jpg") == Path("shots") and glob_root("sh?ts/a.jpg") == Path(".")
    (tmp_path / "shots" / "x").mkdir(parents=True)
    (tmp_path / "shots" / "x" / "a.png").write_bytes(png())
    (tmp_path / "shots" / "b.png").write_bytes(png(1))
    items = expand([str(tmp_path / "shots" / "**" / "*.png")])
    assert sorted(i.rel for i in items) == ["b.png", "x/a.png"] and all(i.found for i in items)


def test_a_glob_refuses_links_out_of_its_folder_as_a_folder_does(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "secret.png").write_bytes(png())
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "secret.png")
    (tmp_path / "in" / "inside.png").symlink_to("ok.png")
    (tmp_path / "in" / "ok.png").write_bytes(png(1))
    for arg in (str(tmp_path / "in"), str(tmp_path / "in" / "*.png")):
        problems = {Path(i.name).name: i.problem and i.problem[0] for i in expand([arg])}
        assert problems == {"inside.png": None, "link.png": "unsafe-path", "ok.png": None}
    named = expand([str(tmp_path / "in" / "link.png")])  # named by the user: followed
    assert named[0].problem is None


def test_a_later_input_is_numbered_and_no_input_is_written_over(tmp_path: Path) -> None:
    for name in ("a.jpg", "a.png", "a.cutout.png", "b.png"):
        (tmp_path / name).write_bytes(png())
    items = expand([str(tmp_path / n) for n in ("a.jpg", "a.png", "a.cutout.png", "b.png")])
    names = {Path(i.name).name: Path(n).name for i, n in
             ((i, distinct_outputs(items, beside(".png"), on_disk=Path("."))[i.source_id]) for i in items)}
    # a.cutout.png is an input, so neither a.jpg nor a.png may have it
    assert names == {"a.jpg": "a-2.cutout.png", "a.png": "a-3.cutout.png",
                     "a.cutout.png": "a.cutout.cutout.png", "b.png": "b.cutout.png"}


def test_an_input_that_wants_a_plain_name_keeps_it(tmp_path: Path) -> None:
    """a-2.jpg is not renamed because a.png needed a number: numbers go to the later duplicates only."""
    for name in ("a.jpg", "a.png", "a-2.jpg"):
        (tmp_path / name).write_bytes(png())
    items = expand([str(tmp_path / n) for n in ("a.jpg", "a.png", "a-2.jpg")])
    out = distinct_outputs(items, mirror(".png"))
    assert [out[i.source_id] for i in items] == ["a.png", "a-3.png", "a-2.png"]
    kept = distinct_outputs(items, mirror(".png"), keep={items[1].source_id: "a.png"})
    assert [kept[i.source_id] for i in items] == ["a-3.png", "a.png", "a-2.png"]


def test_zip_members_are_items_with_their_problems(tmp_path: Path) -> None:
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/a.png", png())
        zf.writestr("../evil.png", png())
        zf.writestr("notes.txt", "not an image")
    items = expand([str(archive)])
    assert {i.member: i.problem and i.problem[0] for i in items} == {"x/a.png": None, "../evil.png": "unsafe-path"}
    assert all(i.found and i.archive == archive for i in items)
