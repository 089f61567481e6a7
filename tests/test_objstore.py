"""Object-store URIs as inputs (``inputs.expand``) and outputs (``objstore.put_verified``),
against a real S3-compatible server on loopback (moto), reached through ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import encode_image, subject_image
from support.s3 import get, keys, make_bucket, put, s3_server

from alphacut import objstore
from alphacut.errors import OutputError
from alphacut.inputs import distinct_outputs, expand, mirror, opener


@pytest.fixture(scope="module")
def s3():
    with s3_server() as endpoint:
        make_bucket("photos")
        yield endpoint


def test_uris_are_told_from_paths() -> None:
    assert objstore.is_uri("s3://bucket/x.jpg") and objstore.is_uri("gs://b/")
    assert not objstore.is_uri("file:///tmp/x.jpg") and not objstore.is_uri("shots/a.jpg")
    assert not objstore.is_uri("C:\\x.jpg") and not objstore.is_uri("")


def test_a_prefix_expands_to_its_image_objects_with_uris_as_ids(s3: str) -> None:
    jpeg = encode_image(subject_image(64, 48), "JPEG")
    put("s3://photos/in/b.jpg", jpeg)
    put("s3://photos/in/sub/a.png", encode_image(subject_image(64, 48, seed=1), "PNG"))
    put("s3://photos/in/noext", jpeg)  # an image by its bytes
    put("s3://photos/in/notes.txt", b"not an image")
    put("s3://photos/in/.hidden/c.jpg", jpeg)
    items = expand(["s3://photos/in"])
    assert [i.rel for i in items] == ["b.jpg", "noext", "sub/a.png"]
    assert [i.source_id for i in items] == ["s3://photos/in/b.jpg", "s3://photos/in/noext", "s3://photos/in/sub/a.png"]
    assert all(i.uri == i.source_id and i.found for i in items)
    read = opener(items[0])
    assert callable(read) and read() == jpeg
    names = distinct_outputs(items, mirror(".png"))
    assert names["s3://photos/in/b.jpg"] == "b.png" and names["s3://photos/in/sub/a.png"] == "sub/a.png"


def test_one_object_and_a_missing_one(s3: str) -> None:
    put("s3://photos/one/x.jpg", encode_image(subject_image(32, 32), "JPEG"))
    (item,) = expand(["s3://photos/one/x.jpg"])
    assert item.rel == "x.jpg" and not item.found and item.problem is None
    (missing,) = expand(["s3://photos/nothing-here/"])
    assert missing.problem is not None and missing.problem[0] == "not-found"
    assert "s3://photos/nothing-here" in str(missing.error())


def test_put_verified_writes_whole_objects_and_checks_them(s3: str) -> None:
    data = b"\x89PNG" + bytes(range(256)) * 40
    sha = objstore.put_verified("s3://photos/out/a/b.png", data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert get("s3://photos/out/a/b.png") == data
    assert objstore.sha256_of("s3://photos/out/a/b.png") == sha
    assert objstore.sha256_of("s3://photos/out/none.png") is None
    assert keys("s3://photos/out") == ["a/b.png"]
    with pytest.raises(OutputError, match="s3://no-such-bucket"):
        objstore.put_verified("s3://no-such-bucket/x.png", data)


def test_without_fsspec_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_fsspec(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "fsspec":
            raise ImportError("No module named 'fsspec'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    monkeypatch.setattr(objstore, "_filesystems", {})
    with pytest.raises(Exception, match=r"alphacut\[ray\]"):
        objstore.filesystem("s3://bucket/x")
