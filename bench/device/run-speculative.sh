#!/usr/bin/env bash
# Issue #22 on a GPU: speculative decoding on a Llama-2-7B-shaped random bf16 model, tokens/s at
# batch 1, 4, 16 and 64 without speculation, with ngram, and with a draft model equal to the target
# (random weights: acceptance means nothing, so the target as its own draft gives the mechanism's
# ceiling, 100% acceptance), then that draft again with penalized requests (--penalized: each
# verification row penalized with the drafts before it; acceptance should stay near 100%).
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
bun bench/speculative.ts --model "$MODEL_DIR" --tokens 64 --batches 1,4,16,64 --draft "$MODEL_DIR"
bun bench/speculative.ts --model "$MODEL_DIR" --tokens 64 --batches 1,4,16,64 --draft "$MODEL_DIR" --penalized
if [ -n "${OUT:-}" ]; then cp bench/results/cuda-speculative-*.json "$OUT"/; fi
