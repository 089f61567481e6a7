"""``--ray``: the same verified cutouts on a real Ray cluster, from and to a real S3 store.

One cluster for the module (``ray.cluster_utils.Cluster``: a head and two worker nodes of one
CPU each, all on 127.0.0.1, token authentication on, Ray's health checks shortened so a removed
node is noticed in seconds), one moto S3 server on loopback, U²-Netp and small photos. Only
what the module started is shut down (``ray.shutdown``, ``Cluster.shutdown``).
"""

from __future__ import annotations

import os
import secrets

# Ray reads these when it is imported: a loopback-only cluster (Ray's desktop mode), no usage
# reports, token authentication with a token for this run only.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))

import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

ray = pytest.importorskip("ray", reason="alphacut[ray] is not installed")
psutil = pytest.importorskip("psutil")

from conftest import SHARED_HOME, encode_image, subject_image  # noqa: E402
from support.s3 import get, keys, make_bucket, put, s3_server  # noqa: E402

from alphacut.distributed.executor import run_ray_batch  # noqa: E402
from alphacut.jobs.batch import run_batch  # noqa: E402
from alphacut.jobs.manifest import read_manifest  # noqa: E402
from alphacut.pipeline import Options  # noqa: E402

pytestmark = pytest.mark.slow
OPTIONS = Options(model="u2netp")
N_PHOTOS = 6


@pytest.fixture(scope="module")
def s3():
    with s3_server() as endpoint:
        make_bucket("photos")
        yield endpoint


@pytest.fixture(scope="module")
def cluster(s3: str):
    """Head + two one-CPU nodes on loopback; the S3 variables are in their environment."""
    from ray.cluster_utils import Cluster

    from alphacut.distributed.cluster import quiet_home

    saved_home = os.environ.get("ALPHACUT_HOME")
    os.environ["ALPHACUT_HOME"] = str(SHARED_HOME)  # every node's model store: the shared cache
    with quiet_home() as home:  # no cloud-metadata probes from the head's usage-stats module
        c = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False,
            "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                               "health_check_failure_threshold": 4, "health_check_timeout_ms": 500},
        })
        for _ in range(2):
            c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        import shutil

        shutil.rmtree(home, ignore_errors=True)
        if saved_home is None:
            os.environ.pop("ALPHACUT_HOME", None)
        else:
            os.environ["ALPHACUT_HOME"] = saved_home


def _photos(folder: Path, n: int = N_PHOTOS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"p{i:02d}.jpg").write_bytes(encode_image(subject_image(200, 150, seed=i), "JPEG", quality=90))
    return folder


def _pixels(data_or_path) -> np.ndarray:
    import io

    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with Image.open(src) as img:
        return np.asarray(img.convert("RGBA"), dtype=np.int16)


def _no_partials(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".part")]
    assert leftovers == [], leftovers


def test_outputs_match_the_local_engine(tmp_path: Path, cluster) -> None:
    photos = _photos(tmp_path / "in")
    local = run_batch([str(photos)], tmp_path / "local", OPTIONS, handle_sigint=False,
                      engine_kwargs={"workers": 1, "threads_per_worker": 1})
    summary = run_ray_batch([str(photos)], tmp_path / "ray", OPTIONS)
    assert (summary.done, summary.failed, local.done) == (N_PHOTOS, [], N_PHOTOS)
    names = sorted(p.name for p in (tmp_path / "ray").glob("*.png"))
    assert names == sorted(p.name for p in (tmp_path / "local").glob("*.png")) and len(names) == N_PHOTOS
    for name in names:
        a, b = _pixels(tmp_path / "local" / name), _pixels(tmp_path / "ray" / name)
        assert a.shape == b.shape
        assert int(np.abs(a - b).max()) <= 1, name
    recs = read_manifest(tmp_path / "ray" / "manifest.jsonl")
    local_recs = read_manifest(tmp_path / "local" / "manifest.jsonl")
    assert recs.keys() == local_recs.keys()
    for sid, rec in recs.items():
        assert set(rec) == set(local_recs[sid]), "the same manifest fields as the local engine"
        assert rec["status"] == "done" and rec["provider"] and rec["timings"]["decode"] >= 0
        assert rec["sha256"] and rec["bytes"] == (tmp_path / "ray" / rec["output_rel"]).stat().st_size
    _no_partials(tmp_path / "ray")


def test_s3_in_and_out_with_a_bad_file_and_resume(tmp_path: Path, cluster) -> None:
    for i in range(4):
        put(f"s3://photos/in/p{i}.jpg", encode_image(subject_image(160, 120, seed=10 + i), "JPEG"))
    put("s3://photos/in/broken.jpg", b"\xff\xd8\xff\xe0 this is not really a JPEG")
    summary = run_ray_batch(["s3://photos/in"], "s3://photos/out", OPTIONS, manifest_at=tmp_path / "m.jsonl")
    assert summary.done == 4 and [r["code"] for r in summary.failed] in (["corrupt"], ["truncated"])
    assert "s3://photos/in/broken.jpg" in summary.failed[0]["reason"]
    assert keys("s3://photos/out") == ["manifest.jsonl", "p0.png", "p1.png", "p2.png", "p3.png"]
    rows = [json.loads(line) for line in get("s3://photos/out/manifest.jsonl").decode().splitlines()]
    assert sorted(r["source"] for r in rows) == [f"s3://photos/in/{n}" for n in
                                                  ("broken.jpg", "p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg")]
    for r in rows:
        if r["status"] == "done":
            assert r["output"] == f"s3://photos/out/{r['output_rel']}"
            assert _pixels(get(r["output"])).shape == (120, 160, 4)
    again = run_ray_batch(["s3://photos/in"], "s3://photos/out", OPTIONS, resume=True,
                          manifest_at=tmp_path / "m.jsonl")
    assert again.skipped_done == 4 and again.done == 4 and len(again.failed) == 1  # only the bad one again


def test_the_local_engine_reads_and_writes_s3_through_the_same_expander_and_sink(tmp_path: Path, s3: str) -> None:
    for i in range(2):
        put(f"s3://photos/local-in/p{i:02d}.jpg", encode_image(subject_image(120, 90, seed=20 + i), "JPEG"))
    engine = {"workers": 1, "threads_per_worker": 1}
    summary = run_batch(["s3://photos/local-in"], "s3://photos/local-out", OPTIONS, handle_sigint=False,
                        engine_kwargs=engine, manifest_at=tmp_path / "m.jsonl")
    assert summary.done == 2 and summary.manifest == "s3://photos/local-out/manifest.jsonl"
    assert keys("s3://photos/local-out") == ["manifest.jsonl", "p00.png", "p01.png"]
    rows = [json.loads(line) for line in get("s3://photos/local-out/manifest.jsonl").decode().splitlines()]
    assert sorted(r["source"] for r in rows) == ["s3://photos/local-in/p00.jpg", "s3://photos/local-in/p01.jpg"]
    assert all(_pixels(get(r["output"])).shape == (90, 120, 4) for r in rows)
    (tmp_path / "m.jsonl").unlink()  # resume from the store's copy alone (another machine)
    from alphacut import objstore

    objstore.remove("s3://photos/local-out/p01.png")  # one output lost since
    again = run_batch(["s3://photos/local-in"], "s3://photos/local-out", OPTIONS, resume=True, handle_sigint=False,
                      engine_kwargs=engine, manifest_at=tmp_path / "m.jsonl")
    assert (again.skipped_done, again.done, again.failed) == (1, 2, [])
    lines = get("s3://photos/local-out/manifest.jsonl").decode().splitlines()
    assert len(lines) == 3, "the store's manifest keeps the earlier run's records and gains the new one"


def _actor_pids() -> list[int]:
    """The processes of this module's Infer actors (Ray titles them after the map step): only
    descendants of this test process, whose cluster it is — never another cluster's on the
    machine."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if cmd.startswith("ray::") and "Infer" in cmd:
            found.append(p.pid)
    return found


def _when_rows(manifest: Path, n: int, then, timeout: float = 240) -> threading.Thread:
    """Run ``then(rows so far)`` once ``manifest`` has ``n`` rows (the batch is really under way)."""
    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                rows = len(manifest.read_text().splitlines())
                if rows >= n:
                    then(rows)
                    return
            except OSError:
                pass
            time.sleep(0.1)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    return th


def _complete_and_resumable(tmp_path: Path, photos: Path, out: Path, summary, n: int) -> None:
    assert summary.done == n and summary.failed == [], summary.failed
    recs = read_manifest(out / "manifest.jsonl")
    assert len(recs) == n and all(r["status"] == "done" for r in recs.values())
    import hashlib

    for rec in recs.values():  # every output there, whole, and the one the manifest names
        assert hashlib.sha256((out / rec["output_rel"]).read_bytes()).hexdigest() == rec["sha256"]
        assert _pixels(out / rec["output_rel"]).shape == (150, 200, 4)
    _no_partials(out)
    again = run_ray_batch([str(photos)], out, OPTIONS, resume=True)
    assert again.skipped_done == n and again.done == n and again.failed == []


def test_an_actor_killed_mid_run_loses_nothing(tmp_path: Path, cluster) -> None:
    photos = _photos(tmp_path / "in", 8)
    out = tmp_path / "out"
    killed: list[tuple[int, int]] = []

    def kill(rows: int) -> None:
        pids = _actor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append((pids[0], rows))

    watcher = _when_rows(out / "manifest.jsonl", 2, kill)
    summary = run_ray_batch([str(photos)], out, OPTIONS)
    watcher.join(timeout=1)
    assert killed, "no actor process was found to kill"
    assert killed[0][1] < 8, "the actor was killed after the batch had finished"
    assert not psutil.pid_exists(killed[0][0]) or psutil.Process(killed[0][0]).status() == psutil.STATUS_ZOMBIE
    _complete_and_resumable(tmp_path, photos, out, summary, 8)


def test_a_node_removed_mid_run_loses_nothing(tmp_path: Path, cluster) -> None:
    extra = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    photos = _photos(tmp_path / "in", 10)
    out = tmp_path / "out"
    removed: list[int] = []

    def remove(rows: int) -> None:
        cluster.remove_node(extra, allow_graceful=False)
        removed.append(rows)

    watcher = _when_rows(out / "manifest.jsonl", 2, remove)
    summary = run_ray_batch([str(photos)], out, OPTIONS)
    watcher.join(timeout=1)
    assert removed and removed[0] < 10, "the node was not removed during the run"
    _complete_and_resumable(tmp_path, photos, out, summary, 10)


def test_a_file_whose_actor_keeps_dying_fails_alone_as_worker_crashed(tmp_path: Path, cluster) -> None:
    """Ray Data re-runs a dead actor's row without end; the run's tally (``attempts``) bounds it:
    a row already started ``limit`` times on a step (its process died each time) is failed as
    ``worker-crashed`` with the reason, the next row runs, and the tally forgets both."""
    from alphacut.distributed.attempts import start_tally
    from alphacut.distributed.rows import Infer, decode_row, new_row
    from alphacut.inputs import expand

    photos = _photos(tmp_path / "in", 2)
    rows = [decode_row(new_row(i, item, f"p{i}.png"), model="u2netp", options=OPTIONS)
            for i, item in enumerate(expand([str(photos)]))]
    tally = start_tally()
    for _ in range(4):  # row 0 was started four times, and its actor's process died each time
        ray.get(tally.begin.remote("infer", 0))
    infer = Infer("u2netp", OPTIONS, ["u2netp"], None, 1, False, tally, 4)
    dead, alive = infer(rows[0]), infer(rows[1])
    assert (dead["status"], dead["code"], dead["payload"]) == ("failed", "worker-crashed", b"")
    assert "running the model on it died 4 times" in dead["reason"] and dead["name"] in dead["reason"]
    assert alive["status"] == "" and alive["payload"] and alive["provider"]
    assert ray.get(tally.size.remote()) == 0, "finished rows are not kept"
    ray.kill(tally)


def test_a_joined_cluster_gets_the_stores_endpoint_never_the_credentials(cluster) -> None:
    """The nodes read and write the objects: a cluster alphacut joins gets the driver's store
    endpoint and region (a node without them would address AWS's own S3 under the bucket's
    name), never its credentials (each node has its own). This module's nodes were started with
    the moto server's variables; the driver here names another endpoint, region and secret."""
    import subprocess
    import sys

    script = (
        "import json, os, ray\n"
        "from alphacut.distributed.cluster import connect\n"
        "conn = connect(os.environ['TARGET'])\n"
        "seen = ray.remote(num_cpus=0)(lambda: {k: os.environ.get(k) for k in\n"
        "    ('AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY')})\n"
        "print(json.dumps(ray.get(seen.remote())))\n"
        "conn.shutdown()\n")
    env = {**os.environ, "TARGET": cluster.address, "AWS_ENDPOINT_URL": "http://127.0.0.1:9/",
           "AWS_REGION": "xx-test-1", "AWS_SECRET_ACCESS_KEY": "driver-only",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert (seen["AWS_ENDPOINT_URL"], seen["AWS_REGION"]) == ("http://127.0.0.1:9/", "xx-test-1")
    assert seen["AWS_SECRET_ACCESS_KEY"] not in (None, "driver-only"), "the node keeps its own credentials"


def test_ray_local_starts_its_own_cluster_beside_a_running_one(cluster) -> None:
    """``--ray local`` is a private cluster even when another runs on this machine (this
    module's): Ray's ``init`` without an address would join the running one."""
    import subprocess
    import sys

    script = (
        "import json, ray\n"
        "from alphacut.distributed.cluster import connect\n"
        "conn = connect('local')\n"
        "print(json.dumps([conn.started_local, ray.get_runtime_context().gcs_address]))\n"
        "conn.shutdown()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    started, gcs = json.loads(run.stdout.strip().splitlines()[-1])
    assert started and gcs != cluster.address and gcs.startswith("127.0.0.1:")


def test_cli_ray_gives_the_local_engines_json_rows(tmp_path: Path, cluster) -> None:
    import subprocess
    import sys

    photos = _photos(tmp_path / "in", 3)
    (photos / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "alphacut", "remove", str(photos), "--model", "u2netp", "--json"]
    ray_run = subprocess.run([*cmd, "-o", str(tmp_path / "ray"), "--ray", cluster.address], env=env,
                             capture_output=True, text=True, timeout=600)
    local_run = subprocess.run([*cmd, "-o", str(tmp_path / "local"), "--workers", "1"], env=env,
                               capture_output=True, text=True, timeout=600)
    assert ray_run.returncode == local_run.returncode == 1, ray_run.stderr[-3000:]  # one file failed
    ray_rows = [json.loads(line) for line in ray_run.stdout.splitlines()]  # stdout: JSON lines only
    local_rows = [json.loads(line) for line in local_run.stdout.splitlines()]
    assert len(ray_rows) == len(local_rows) == 4
    by_src = {r["source"]: r for r in local_rows}
    for row in ray_rows:
        twin = by_src[row["source"]]
        assert set(row) == set(twin) and (row["status"], row["code"], row["output_rel"]) == \
            (twin["status"], twin["code"], twin["output_rel"])
    assert "1 failed" in ray_run.stderr and "3 of 4 done" in ray_run.stderr


def test_a_pdf_gives_one_output_per_photo_as_on_the_local_engine(tmp_path: Path, cluster) -> None:
    """One input, many outputs: a catalogue's photos are rows of their own on the cluster (each
    part's reader travels to the decode task), named as the local engine names them."""
    from support.pdfs import catalogue

    folder = tmp_path / "in"
    folder.mkdir()
    catalogue(folder / "catalogue.pdf")
    local = run_batch([str(folder)], tmp_path / "local", OPTIONS, handle_sigint=False,
                      engine_kwargs={"workers": 1, "threads_per_worker": 1})
    summary = run_ray_batch([str(folder)], tmp_path / "ray", OPTIONS)
    assert summary.done == local.done == 3 and summary.failed == []
    names = sorted(p.name for p in (tmp_path / "ray").glob("*.png"))
    assert names == sorted(p.name for p in (tmp_path / "local").glob("*.png")) == \
        ["catalogue.p1-1.png", "catalogue.p3-1.png", "catalogue.p3-2.png"]
    for name in names:
        assert int(np.abs(_pixels(tmp_path / "local" / name) - _pixels(tmp_path / "ray" / name)).max()) <= 1
