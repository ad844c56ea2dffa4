#!/usr/bin/env bash
# Issue #16's device proof: prefix caching on vs off on a Llama-2-7B-shaped random bf16 model,
# served by `fastgen serve` (splitfuse, default engine options), the same seeded workload against
# each: chat-multiturn (a 1500-token system prompt, 4-8 turns re-sending their history),
# shared-prefix (one 2000-token prefix, short suffixes) and fastgen-2600-60 (no reuse: the cost of
# having the cache on). Then one table per suite (bench/run.ts compare).
#
#   bash .gpu/enter bash bench/device/run-prefix.sh [--suites "..."] [--clients 4,16] [--requests 48]
#   CPU smoke run: bash bench/device/run-prefix.sh --backend cpu --model-dir models/fastgen-demo-tiny \
#     --suites chat-multiturn --clients 2 --requests 8 --results /tmp/prefix-smoke \
#     --workload-flags "--prefix-tokens 300 --mean-prompt 30 --mean-gen 8 --max-prompt 800"
#
# Each run skips what its result file already holds, so the runs spread over device calls; on any
# exit the results are packed into $OUT/prefix-results.tgz (device tool).
set -euo pipefail
cd "$(dirname "$0")/../.."
SUITES="chat-multiturn shared-prefix fastgen-2600-60"
CLIENTS=4,16
REQUESTS=48
MODEL_DIR=/tmp/fastgen-llama2-7b-random
RESULTS=bench/results/device-prefix
BACKEND=cuda
EXTRA=""
while [ $# -gt 0 ]; do
  case "$1" in
    --suites) SUITES=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --model-dir) MODEL_DIR=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --workload-flags) EXTRA=$2; shift 2 ;;   # e.g. smaller prompts for a CPU smoke run
    *) echo "run-prefix: unknown option $1" >&2; exit 2 ;;
  esac
done
BUN=${BUN:-bun}
mkdir -p "$RESULTS"
stamp() { echo "[$(date +%H:%M:%S)] $*" >&2; }
copy_out() {
  [ -n "${OUT:-}" ] || return 0
  tar -czf "$OUT/prefix-results.tgz" -C "$RESULTS" . && stamp "results copied to \$OUT"
}
trap copy_out EXIT
[ -f "$MODEL_DIR/config.json" ] || { stamp "model: $MODEL_DIR"; python3 bench/device/make_llama7b_random.py "$MODEL_DIR"; }
(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU: $BACKEND") > "$RESULTS/gpu.txt"
for suite in $SUITES; do
  for cache in on off; do
    out="$RESULTS/$suite-cache-$cache.json"
    if [ -f "$out" ]; then stamp "$suite cache $cache: exists, skipped"; continue; fi
    flags="--backend $BACKEND"
    [ "$cache" = off ] && flags="$flags --no-enable-prefix-caching"
    stamp "$suite cache $cache"
    "$BUN" bench/run.ts --serve --serve-model "$MODEL_DIR" --serve-flags "$flags" --label "cache-$cache" \
      --tokenizer "$MODEL_DIR" --out-dir "$RESULTS" --suite "$suite" --clients "$CLIENTS" --requests "$REQUESTS" $EXTRA
  done
  if [ -f "$RESULTS/$suite-cache-on.json" ] && [ -f "$RESULTS/$suite-cache-off.json" ]; then
    "$BUN" bench/run.ts compare "$RESULTS/$suite-cache-on.json" "$RESULTS/$suite-cache-off.json" --out "$RESULTS/$suite-cache"
  fi
done
