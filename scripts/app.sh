#!/usr/bin/env bash
# Set everything up, then run alphacut's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
sample=tests/data/corpus/avif/libavif/kodim23_yuv420_8bpc.avif
mkdir -p out
.venv/bin/alphacut remove "$sample" -o out/sample-cutout.png "$@"
echo "cutout written to $(pwd)/out/sample-cutout.png"
