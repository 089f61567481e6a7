"""Faults in real batches (the CLI, the real engine, u2netp): workers SIGKILLed from outside at
seeded random points across a 100-image batch, a full disk, a read-only output folder.

What must hold: the batch ends; every file is done (a verified output) or failed with a clear
reason; no final output name ever holds a partial file (watched while the batch runs) and no
temporary file is left; ``--resume`` makes every missing output; inputs are never touched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.faults import (  # noqa: E402
    Killer,
    OutputWatcher,
    check_png,
    cli,
    cli_env,
    hash_tree,
    leftovers,
    make_inputs,
    mount_namespace_prefix,
    read_records,
    verify_done,
)

pytestmark = pytest.mark.slow

SIZE = (128, 96)
N = 100
SEED = int(os.environ.get("ALPHACUT_FAULT_SEED", "7"))


def test_workers_killed_at_random_points_lose_nothing(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src, N, SIZE)
    before = hash_tree(src)
    out.mkdir()
    with OutputWatcher(out, SIZE) as watch:
        proc = subprocess.Popen(cli(src, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
        killer = Killer(proc, out, seed=SEED).start()
        _, err = proc.communicate(timeout=240)
        killer.join()
    records = read_records(out / "manifest.jsonl")
    failed = {n: r for n, r in records.items() if r["status"] != "done"}
    stages = sorted(m.group(1) for r in failed.values() if (m := re.search(r"while (\w+)", r["reason"] or "")))
    print(f"\nkills: {len(killer.kills)} {killer.kills}\nfirst run: {N - len(failed)} done, {len(failed)} failed "
          f"(killed while {stages})")
    assert len(killer.kills) >= 3, killer.kills  # the faults really happened
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode in (0, 1), err[-3000:]
    assert len(records) == N  # the batch ended with a record for every file
    for name, r in failed.items():  # each failure is plain: which file, what happened
        assert r["status"] == "failed" and r["code"] == "worker-crashed", r
        assert name in r["reason"] and "killed" in r["reason"], r["reason"]
    assert not verify_done(records, SIZE)
    assert not watch.bad, watch.bad  # no final name ever held a partial file
    assert not leftovers(out)  # and no temporary file was left behind

    done_before = {n: r["sha256"] for n, r in records.items() if r["status"] == "done"}
    resume = subprocess.run(cli(src, out, "--resume"), capture_output=True, text=True, env=cli_env(), timeout=240)
    assert resume.returncode == 0, resume.stderr[-3000:]
    records = read_records(out / "manifest.jsonl")
    assert len(records) == N and all(r["status"] == "done" for r in records.values())
    assert not verify_done(records, SIZE)
    outputs = sorted(p.name for p in out.glob("*.png"))
    assert outputs == [f"img{i:03d}.png" for i in range(N)]
    lost = [n for n in outputs if check_png(out / n, SIZE) is not None]
    assert lost == []  # outputs lost: 0
    assert {n: records[n]["sha256"] for n in done_before} == done_before  # done files were not redone
    assert not leftovers(out)
    assert hash_tree(src) == before  # inputs never overwritten or deleted


def _in_namespace(scenario: str, tmp_path: Path) -> dict:
    prefix = mount_namespace_prefix()
    if prefix is None:
        pytest.skip("cannot mount here: no root and no unprivileged user+mount namespaces (unshare -rm)")
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src, 12, SIZE)
    proc = subprocess.run([*prefix, sys.executable, str(Path(__file__).parent / "support" / "faults.py"), scenario,
                           str(src), str(out)], capture_output=True, text=True, env=cli_env(), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_full_disk_clear_errors_nothing_half_written_then_resume(tmp_path: Path) -> None:
    r = _in_namespace("disk-full", tmp_path)
    first = r["first"]
    statuses = [s for s, _, _ in first["records"].values()]
    print(f"\nfree {r['free_kb']} KB; first run: {statuses.count('done')} done, {statuses.count('failed')} failed")
    assert first["rc"] == 1 and "Traceback" not in first["stderr"], first["stderr"]
    assert "done" in statuses and "failed" in statuses  # it ran out of space part-way
    for status, code, reason in first["records"].values():
        if status == "failed":
            assert code == "disk-full" and "disk is full" in reason, (code, reason)
    assert "disk is full" in first["stderr"]
    assert not first["bad_done"] and not first["leftovers"]
    assert all(n.endswith(".png") and n in [f"img{i:03d}.png" for i in range(12)] or n in ("manifest.jsonl", "ballast.bin")
               for n in first["files"]), first["files"]
    # not a byte free: every file fails plainly, the manifest is never left with half a line
    full = r["full"]
    assert full["rc"] == 1 and "Traceback" not in full["stderr"], full["stderr"]
    assert "disk is full" in full["stderr"] and not full["leftovers"]
    # space again: --resume completes the batch
    resume = r["resume"]
    assert resume["rc"] == 0, resume["stderr"]
    assert set(resume["records"].values()) == {"done"} and len(resume["records"]) == 12
    assert not resume["bad_done"] and not resume["leftovers"]
    assert r["outputs"] == [f"img{i:03d}.png" for i in range(12)]
    assert not r["watch_bad"] and r["inputs_unchanged"]


def test_read_only_output_folder_one_clear_error(tmp_path: Path) -> None:
    r = _in_namespace("read-only", tmp_path)
    for run in ("fresh", "resume", "sub"):
        res = r[run]
        assert res["rc"] == 6, (run, res)
        assert "Traceback" not in res["stderr"] and "Read-only file system" in res["stderr"], (run, res["stderr"])
    assert r["files"] == ["manifest.jsonl"] and r["inputs_unchanged"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes (the read-only mount test covers root)")
def test_read_only_folder_by_mode(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src, 3, SIZE)
    before = hash_tree(src)
    out.mkdir()
    out.chmod(0o555)
    try:
        p = subprocess.run(cli(src, out), capture_output=True, text=True, env=cli_env(), timeout=120)
    finally:
        out.chmod(0o755)
    assert p.returncode == 6 and "Permission denied" in p.stderr and "Traceback" not in p.stderr
    assert list(out.iterdir()) == [] and hash_tree(src) == before
