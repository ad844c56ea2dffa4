#!/usr/bin/env bash
# Issue #24 item 4 on a GPU: overlapped steps (fg_step_launch / fg_step_finish). On a
# Llama-2-7B-shaped random bf16 model (32K vocab): test/gpu/overlap.test.ts first (launch + late
# masks + finish equal fg_step bit for bit, graphs replayed, penalty slots), then the grammar's
# overhead at batch 1, 16, 64 with overlapped steps off (masks, then one fg_step) and on, one
# engine each, then both again in one process as a cross-check. Not run yet (written on a
# machine without a GPU).
#
# On the device machine, from the repository root (libfastgen built with CUDA here, carried in
# zig-out; Bun from .gpu/enter):
#
#   bash .gpu/enter bash bench/device/run-overlap.sh [MODEL_DIR]
#
# Writes bench/results/grammar-cuda-<model>{,-overlap-off,-overlap-on}.json, copied to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL_DIR="${1:-/tmp/fastgen-llama2-7b-random}"
PYTHON="${PYTHON:-python3}"
STEPS="${STEPS:-64}"
[ -f "$MODEL_DIR/config.json" ] || "$PYTHON" bench/device/make_llama7b_random.py "$MODEL_DIR"
bun test test/gpu/overlap.test.ts
for overlap in off on both; do
  bun bench/grammarOverhead.ts --model "$MODEL_DIR" --backend cuda --steps "$STEPS" --rounds 3 --overlap "$overlap"
done
if [ -n "${OUT:-}" ]; then cp bench/results/grammar-cuda-*.json "$OUT"/; fi
