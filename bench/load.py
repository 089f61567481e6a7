"""Concurrent-upload load on a real ``alphacut serve`` process: what it held, memory, 429s, latency.

    PYTHONPATH=src:tests python bench/load.py                       # 200 uploads at once, queue 64
    PYTHONPATH=src:tests python bench/load.py -n 400 --max-queue 256 --workers 2

Every upload is a distinct small real PNG, all released together. Prints the answers by status
(201 accepted / 429 queue full, with Retry-After), upload latency percentiles, whether every
accepted job finished, the server tree's resident memory (server + workers) at rest and at its
peak, and whether the server still answers promptly afterwards. Exit status 1 when any request
got no definite answer, an accepted job did not finish, or the server stopped answering.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from support.load import (  # noqa: E402
    RssSampler,
    percentile,
    serve_process,
    tree_rss_mb,
    upload_burst,
    wait_all,
)
from support.server import sample_png  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="concurrent uploads (default 200)")
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--size", default="160x120", help="image size WxH (default 160x120)")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    images = [sample_png(i, (w, h)) for i in range(args.n)]
    with tempfile.TemporaryDirectory(prefix="alphacut-load-") as tmp, \
            serve_process(Path(tmp) / "work", model=args.model, workers=args.workers,
                          max_queue=args.max_queue) as server:
        with server.client(timeout=30) as c:  # wait for the worker to be up: a fair "at rest"
            jid = c.post("/api/jobs", files={"file": ("warm.png", images[0], "image/png")}).json()["id"]
            wait_all(server, [jid], 60)
        rest = tree_rss_mb(server.proc.pid)
        with RssSampler(server.proc.pid) as sampler:
            burst = upload_burst(server, images)
            t = time.monotonic()
            final = wait_all(server, burst.accepted, 300)
            drain = time.monotonic() - t
        with server.client(timeout=30) as c:
            t = time.monotonic()
            alive = c.get("/api/capabilities").status_code == 200
            ping = time.monotonic() - t
        stages = {s: sum(1 for j in final.values() if j["stage"] == s) for s in ("done", "failed", "cancelled")}
    answered = sum(burst.statuses.values())
    print(f"uploads sent at once   {args.n} ({w}x{h} PNG, {args.model}, {args.workers} worker(s), queue {args.max_queue})")
    print(f"answers                {dict(sorted(burst.statuses.items()))}; no answer: {len(burst.errors)}")
    print(f"429 Retry-After        {sorted(set(burst.retry_after))}")
    print(f"upload latency         p50 {percentile(burst.latencies, .5) * 1000:.0f} ms, "
          f"p95 {percentile(burst.latencies, .95) * 1000:.0f} ms, max {max(burst.latencies, default=0) * 1000:.0f} ms")
    print(f"accepted jobs          {len(burst.accepted)}: {stages} (drained in {drain:.1f} s)")
    print(f"server tree RSS        at rest {rest:.0f} MB, peak {sampler.peak:.0f} MB ({sampler.samples} samples)")
    print(f"answers afterwards     {'yes' if alive else 'NO'} ({ping * 1000:.0f} ms)")
    ok = (answered == args.n and not burst.errors and not burst.bad_bodies and alive
          and stages["done"] == len(burst.accepted))
    for line in burst.errors + burst.bad_bodies:
        print("  problem:", line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
