#!/usr/bin/env bash
# Issue #10: a Llama-2-70B-shaped model (random bf16 weights, made on the device), LAYERS of its 80
# layers, tensor parallel TP. Stages (STAGES, any of "tests model bench serve"; default "bench serve"):
#   tests  test/gpu on this machine (bench/gpu/run_tp.sh tests: TP=2, and TP=4 where 4 GPUs are seen)
#   model  write the model as a Hugging Face directory (make_llama7b_random.py) in the background
#          while the other stages run; serve waits for it
#   bench  decode ms/token at batch 1 against the roofline weights / (TP x measured copy bandwidth),
#          decode batch 32/64 and prefill 2048 for each degree in TPS (default "1,TP"; bench/gpu/tp.ts,
#          weights made in-process), with greedy parity of each degree against the first
#   serve  `fastgen serve --tensor-parallel TP` on that directory, the 2600/60 workload for
#          splitfuse and prefill-first (bench/device/run-policies.sh; resumes a sweep cut short)
# The model goes to /dev/shm when it has room (no disk writeback), else /tmp (MODEL_DIR overrides);
# a warm machine keeps it between device calls.
# FP8=1 (issue #18): the model is an FP8 checkpoint (make_llama7b_random.py --fp8, 64.7 GiB at 80
# layers: /dev/shm first, shards that do not fit spill to /tmp), bench runs bench/gpu/fp8.ts
# --shape 70b --fp8-only (decode b=1..16 against the FP8 roofline, batch 64/256, prefill 2048) at
# TP=1, and serve runs `fastgen serve` on one GPU: `FP8=1 bash bench/device/run-70b-tp.sh 80 1`.
# device run: carry [".gpu", ".gpu-lib"], command
#   "[STAGES=...] [TPS=2,4] bash bench/device/run-70b-tp.sh [LAYERS=20] [TP=2] [CLIENTS=1,4,16] [REQUESTS=24]"
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
LAYERS=${1:-20}; TP=${2:-2}; CLIENTS=${3:-1,4,16}; REQUESTS=${4:-24}
FP8=${FP8:-}; SUFFIX=${FP8:+-fp8}; MAKE_FLAGS=${FP8:+--fp8 --spill /tmp/llama70b-${LAYERS}l-fp8-spill}
STAGES=" ${STAGES:-bench serve} "; TPS=${TPS:-1,$TP}
[ -n "${SKIP_TP_BENCH:-}" ] && STAGES=${STAGES/ bench / }
source bench/gpu/gpu_lib.sh
export PYTHONUNBUFFERED=1
has() { case "$STAGES" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
stamp() { echo "[$(date +%H:%M:%S)] $*"; }
if [ -z "${MODEL_DIR:-}" ]; then
  shm=$(df --output=avail -B1G /dev/shm 2>/dev/null | tail -1 | tr -d ' ')
  if [ -n "$FP8" ] || [ "${shm:-0}" -gt $((LAYERS * 2 + 20)) ]; then MODEL_DIR=/dev/shm/llama70b-${LAYERS}l$SUFFIX; else MODEL_DIR=/tmp/llama70b-${LAYERS}l; fi
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
df -h /dev/shm /tmp >> "$OUT/env.txt" 2>&1
stamp "stages:$STAGES model dir $MODEL_DIR"
MAKER=""
if has model; then
  python3 bench/device/make_llama7b_random.py "$MODEL_DIR" --shape 70b --layers "$LAYERS" $MAKE_FLAGS > "$OUT/model.log" 2>&1 &
  MAKER=$!
fi
if has tests; then
  bash bench/gpu/run_tp.sh tests
  stamp "tests done"
fi
if has bench; then
  [ -f "$OUT/ceilings.json" ] || timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
  if [ -n "$FP8" ]; then
    timeout 300 bash .gpu/enter bun bench/gpu/fp8.ts "$OUT/ceilings.json" "$OUT" --shape 70b --layers "$LAYERS" --fp8-only > "$OUT/fp8-70b.log" 2>&1
    stamp "fp8.ts exit $?"; tail -16 "$OUT/fp8-70b.log"
  else
    timeout 300 bash .gpu/enter bun bench/gpu/tp.ts "$OUT/ceilings.json" "$OUT" --shape 70b --layers "$LAYERS" --tp "$TPS" > "$OUT/tp-70b.log" 2>&1
    stamp "tp.ts exit $?"; grep -A8 "^| TP" "$OUT/tp-70b.log"; grep "parity" "$OUT/tp-70b.log"
  fi
fi
if [ -n "$MAKER" ]; then
  wait "$MAKER"; stamp "model maker exit $?"; tail -3 "$OUT/model.log"
fi
if has serve; then
  timeout "${SERVE_TIMEOUT:-400}" bash .gpu/enter bash bench/device/run-policies.sh --suite fastgen-2600-60 --clients "$CLIENTS" --requests "$REQUESTS" \
    --policies "splitfuse prefill-first" --stages "model fastgen compare" --model-dir "$MODEL_DIR" \
    --model-args "--shape 70b --layers $LAYERS $MAKE_FLAGS" --serve-flags "--backend cuda --tensor-parallel $TP" \
    --results /tmp/res-70b-tp$TP$SUFFIX > "$OUT/policies.log" 2>&1
  stamp "run-policies exit $?"
  tar -czf "$OUT/results-70b-tp$TP$SUFFIX.tgz" -C /tmp/res-70b-tp$TP$SUFFIX . 2>/dev/null
  tail -30 "$OUT/policies.log"
fi
