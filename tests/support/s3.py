"""A real S3-compatible store on loopback (moto's server) for the object-store tests.

``s3_server()`` starts moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port) and points
the standard ``AWS_*`` environment variables at it — ``AWS_ENDPOINT_URL`` included, the way
boto3, s3fs and the AWS CLI read them — so alphacut reaches it exactly as it would reach a
real store. Fake credentials keep botocore from looking for an instance role (no request
ever leaves loopback).
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from typing import Iterator

import pytest

moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server", reason="moto[server] is not installed")

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a fresh moto S3 server on loopback, with ``AWS_*`` set for it (and
    restored afterwards)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets per process, not per server: start from an empty store
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    saved = {k: os.environ.get(k) for k in [*ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(ENV, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def make_bucket(name: str) -> None:
    """Create a bucket through the same library alphacut reads with (s3fs)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(name)


def put(uri: str, data: bytes) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, skip_instance_cache=True)
    fs.pipe_file(path, data)


def get(uri: str) -> bytes:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, skip_instance_cache=True)
    return fs.cat_file(path)


def keys(uri: str) -> list[str]:
    """Every object under a prefix, relative to it, sorted."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, skip_instance_cache=True)
    path = path.rstrip("/")
    try:
        return sorted(k[len(path):].lstrip("/") for k in fs.find(path))
    except FileNotFoundError:
        return []
