#!/usr/bin/env bash
# Issue #19 on a GPU: the grammar Worker (src/grammar/worker/) against the engine before it
# (XGrammar on the engine's thread), in one process, interleaved round by round: decode tokens/s
# at batch 1, 16, 64 with and without a JSON schema, overlapped steps off (the CUDA default) and
# on, on a Llama-2-7B-shaped random bf16 model (32K vocab). Then the grammar tests on the device
# machine's many cores. Not run yet (written on a machine without a GPU).
#
# Here, first: build libfastgen with CUDA, `../shared/gpu/pack`, and put the baseline's src/ in
# .baseline-grammar (untracked, so it travels with the working tree):
#
#   mkdir -p .baseline-grammar && git archive 600dd00 src | tar -x -C .baseline-grammar
#
# On the device machine, from the repository root (carry .gpu and zig-out):
#
#   bash .gpu/enter bash bench/device/run-grammar-worker.sh [MODEL_DIR]
#
# Writes bench/results/grammar-cuda-<model>-vs-baseline.json, copied to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL_DIR="${1:-/tmp/fastgen-llama2-7b-random}"
PYTHON="${PYTHON:-python3}"
STEPS="${STEPS:-64}"
BASELINE="${BASELINE:-.baseline-grammar}"
[ -d "$BASELINE/src" ] || { echo "no baseline checkout in $BASELINE (see the top of this script)"; exit 1; }
[ -f "$MODEL_DIR/config.json" ] || "$PYTHON" bench/device/make_llama7b_random.py "$MODEL_DIR"
# Both engines load this libfastgen: the baseline differs in TypeScript only.
export FASTGEN_LIB="$PWD/zig-out/lib/libfastgen.so"
bun bench/grammarOverhead.ts --model "$MODEL_DIR" --backend cuda --steps "$STEPS" --rounds 5 --overlap both --baseline "$BASELINE"
bun test test/grammar/grammarWorker.test.ts test/grammar/overlap.test.ts test/grammar/engineGrammar.test.ts
if [ -n "${OUT:-}" ]; then cp bench/results/grammar-cuda-*-vs-baseline.json "$OUT"/; fi
