#!/usr/bin/env bash
# Issue #22 on a GPU: speculative decoding on a Llama-2-7B-shaped random bf16 model, tokens/s at
# batch 1, 4, 16 and 64 without speculation, with ngram, and with a draft model equal to the target
# (random weights: acceptance means nothing, so the target as its own draft gives the mechanism's
# ceiling, 100% acceptance), then that draft again with penalized requests (--penalized: each
# verification row penalized with the drafts before it; acceptance should stay near 100%); those
# two run with --no-auto-disable (the mechanism itself: a same-size draft never pays, so the
# governor would turn it off). Then the demo model with its distilled draft, governed and not.
# Every run checks the outputs equal the run without speculation.
#
# On the device machine, from the repository root (libfastgen built with CUDA here, carried in
# zig-out; Bun from .gpu/enter):
#
#   bash .gpu/enter bash bench/device/run-speculative.sh [MODEL_DIR]
#
# Writes bench/results/cuda-speculative-*.json and copies them to $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL_DIR="${1:-/tmp/fastgen-llama2-7b-random}"
PYTHON="${PYTHON:-python3}"
[ -f "$MODEL_DIR/config.json" ] || "$PYTHON" bench/device/make_llama7b_random.py "$MODEL_DIR"
export FASTGEN_BACKEND=cuda
bun bench/speculative.ts --model "$MODEL_DIR" --tokens 64 --batches 1,4,16,64
bun bench/speculative.ts --model "$MODEL_DIR" --tokens 64 --batches 1,4,16,64 --draft "$MODEL_DIR" --no-auto-disable
bun bench/speculative.ts --model "$MODEL_DIR" --tokens 64 --batches 1,4,16,64 --draft "$MODEL_DIR" --penalized --no-auto-disable
# the demo pair: a real draft (distilled, models/make_demo_draft.py) of the demo model, real acceptance
bun bench/speculative.ts --model models/fastgen-demo-tiny --tokens 256 --batches 1,4,16,64 --draft models/fastgen-demo-draft
bun bench/speculative.ts --model models/fastgen-demo-tiny --tokens 256 --batches 1,4,16,64 --draft models/fastgen-demo-draft --no-auto-disable
if [ -n "${OUT:-}" ]; then cp bench/results/cuda-speculative-*.json "$OUT"/; fi
