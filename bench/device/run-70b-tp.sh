#!/usr/bin/env bash
# Issue #10's run at the scale the lent machines allow: a Llama-2-70B-shaped model trimmed to
# LAYERS layers (random bf16 weights, made on the device), tensor parallel TP.
#   1. decode ms/token at batch 1 against the roofline weights / (TP x measured copy bandwidth),
#      decode batch 32/64 and prefill 2048, TP=1 vs TP (bench/gpu/tp.ts, weights made in-process)
#   2. `fastgen serve --tensor-parallel TP` on the same shape written as a Hugging Face directory,
#      the 2600/60 workload for splitfuse and prefill-first (bench/device/run-policies.sh)
# device run: carry [".gpu", ".gpu-lib"], command
#   "bash bench/device/run-70b-tp.sh [LAYERS=20] [TP=2] [CLIENTS=1,4,16] [REQUESTS=24]"
#   (SKIP_TP_BENCH=1 skips step 1)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
LAYERS=${1:-20}; TP=${2:-2}; CLIENTS=${3:-1,4,16}; REQUESTS=${4:-24}
[ -f .gpu-lib/libfastgen.so ] && export FASTGEN_LIB=$PWD/.gpu-lib/libfastgen.so
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
[ -n "${SKIP_TP_BENCH:-}" ] || timeout 240 bash .gpu/enter bun bench/gpu/tp.ts "$OUT/ceilings.json" "$OUT" --shape 70b --layers "$LAYERS" --tp "1,$TP" > "$OUT/tp-70b.log" 2>&1
echo "tp.ts exit $?"; grep -A8 "^| TP" "$OUT/tp-70b.log"; grep "parity" "$OUT/tp-70b.log"
timeout 400 bash .gpu/enter bash bench/device/run-policies.sh --suite fastgen-2600-60 --clients "$CLIENTS" --requests "$REQUESTS" \
  --policies "splitfuse prefill-first" --stages "model fastgen compare" --model-dir /tmp/llama70b-${LAYERS}l \
  --model-args "--shape 70b --layers $LAYERS" --serve-flags "--backend cuda --tensor-parallel $TP" \
  --results /tmp/res-70b-tp$TP > "$OUT/policies.log" 2>&1
echo "run-policies exit $?"
tar -czf "$OUT/results-70b-tp$TP.tgz" -C /tmp/res-70b-tp$TP . 2>/dev/null
tail -30 "$OUT/policies.log"
