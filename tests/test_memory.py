"""Memory that must not stay allocated between images (measured in a fresh process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, numpy as np
from alphacut.models.session import ModelSession
from alphacut.models.store import ModelStore
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 1e6
s = ModelSession(ModelStore().path("isnet"), threads=2)
loaded = rss()
s.run(np.random.rand(1, 3, 1024, 1024).astype(np.float32))
print(json.dumps({"loaded": loaded, "after": rss()}))
"""


def test_inference_activations_are_released_after_a_run(isnet) -> None:  # noqa: ANN001 - fixture pulls the model
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    mb = json.loads(out.stdout.strip().splitlines()[-1])
    # IS-Net's activations at 1024² take ~1.7 GB; an ONNX Runtime memory arena would keep them
    assert mb["after"] - mb["loaded"] < 700, mb
