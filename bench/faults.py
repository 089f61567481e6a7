"""Workers SIGKILLed at random points across real batches: faults injected, failures, outputs lost.

    PYTHONPATH=src:tests python bench/faults.py                      # 100 images, seeds 1..3
    PYTHONPATH=src:tests python bench/faults.py -n 200 --seeds 1 2 3 4 5 --kills 10

For each seed: ``alphacut remove IN -o OUT`` (u2netp, one worker) while worker processes are
SIGKILLed from outside after a random number of outputs plus a random delay; every final-named
output is decoded the moment it appears. Then ``--resume``. Prints kills, files done/failed in the
killed run, outputs after resume, outputs lost (must be 0), partial files seen under a final name
and temporary files left (must be 0), and whether the inputs are unchanged. Exit status 1 on any
loss.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from support.faults import (  # noqa: E402
    Killer,
    OutputWatcher,
    check_png,
    cli,
    cli_env,
    hash_tree,
    leftovers,
    make_inputs,
    read_records,
)

SIZE = (128, 96)


def one(n: int, seed: int, kills: int, root: Path) -> bool:
    src, out = root / f"in{seed}", root / f"out{seed}"
    make_inputs(src, n, SIZE)
    before = hash_tree(src)
    out.mkdir()
    t = time.monotonic()
    with OutputWatcher(out, SIZE) as watch:
        proc = subprocess.Popen(cli(src, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env())
        killer = Killer(proc, out, seed=seed, max_kills=kills).start()
        _, err = proc.communicate()
        killer.join()
    first = time.monotonic() - t
    records = read_records(out / "manifest.jsonl")
    failed = [r for r in records.values() if r["status"] != "done"]
    codes = sorted({r["code"] for r in failed})
    temp_left = leftovers(out)
    t = time.monotonic()
    resume = subprocess.run(cli(src, out, "--resume"), capture_output=True, text=True, env=cli_env())
    second = time.monotonic() - t
    names = [f"img{i:03d}.png" for i in range(n)]
    lost = [x for x in names if check_png(out / x, SIZE) is not None]
    ok = (not lost and not watch.bad and not temp_left and not leftovers(out) and resume.returncode == 0
          and hash_tree(src) == before and "Traceback" not in err + resume.stderr)
    print(f"seed {seed}: {len(killer.kills)} workers killed; killed run {n - len(failed)} done, {len(failed)} failed "
          f"{codes} (exit {proc.returncode}, {first:.0f} s); resume exit {resume.returncode} ({second:.0f} s); "
          f"outputs {n - len(lost)}/{n}, lost {len(lost)}; partial under a final name {len(watch.bad)} "
          f"(watched {len(watch.checked)} files), temp files seen {len(watch.temp_names)}, left "
          f"{len(temp_left)}; inputs unchanged {hash_tree(src) == before}" + ("" if ok else "  <-- PROBLEM"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="images per batch (default 100)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kills", type=int, default=6, help="most kills per batch (default 6)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="alphacut-faults-") as tmp:
        results = [one(args.n, seed, args.kills, Path(tmp)) for seed in args.seeds]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
