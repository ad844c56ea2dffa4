#!/usr/bin/env bash
# Issue #16's 2-replica proof on ONE GPU: two `fastgen replica` processes share the device (each with
# its own weights and an equal, explicit KV pool), and `fastgen serve --replica A --replica B` balances
# them, cache-aware against least-outstanding routing, on chat-multiturn with --sessions (each
# client one user sending its conversation's turns in order). The replicas restart between
# policies so neither starts with the other's cache.
#
#   bash .gpu/enter bash bench/device/run-routing.sh [--clients 4,16] [--requests 64] [--kv-blocks 1500]
#
# Results: bench/results/device-routing/chat-multiturn-<policy>.json + a compare table; packed to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=4,16
REQUESTS=64
KV_BLOCKS=1500
MODEL_DIR=/tmp/fastgen-llama2-7b-random
RESULTS=bench/results/device-routing
BACKEND=cuda
EXTRA=""
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) CLIENTS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --kv-blocks) KV_BLOCKS=$2; shift 2 ;;
    --model-dir) MODEL_DIR=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --workload-flags) EXTRA=$2; shift 2 ;;
    *) echo "run-routing: unknown option $1" >&2; exit 2 ;;
  esac
done
BUN=${BUN:-bun}
mkdir -p "$RESULTS"
stamp() { echo "[$(date +%H:%M:%S)] $*" >&2; }
PIDS=()
stop_replicas() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  PIDS=()
}
finish() {
  stop_replicas
  [ -n "${OUT:-}" ] && tar -czf "$OUT/routing-results.tgz" -C "$RESULTS" . && stamp "results copied to \$OUT"
  return 0
}
trap finish EXIT
trap "exit 143" TERM INT
[ -f "$MODEL_DIR/config.json" ] || { stamp "model: $MODEL_DIR"; python3 bench/device/make_llama7b_random.py "$MODEL_DIR"; }
(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU: $BACKEND") > "$RESULTS/gpu.txt"
wait_port() {  # a replica is up once its log says it serves
  for _ in $(seq 1 240); do grep -q "serving\|listening" "$1" 2>/dev/null && return 0; sleep 0.5; done
  stamp "replica did not start: $1"; cat "$1" >&2; return 1
}
for policy in cache-aware least-outstanding; do
  out="$RESULTS/chat-multiturn-$policy.json"
  if [ -f "$out" ]; then stamp "$policy: exists, skipped"; continue; fi
  stamp "$policy: starting 2 replicas"
  for port in 50061 50062; do
    "$BUN" src/cli.ts replica --model "$MODEL_DIR" --backend "$BACKEND" --port "$port" --kv-blocks "$KV_BLOCKS" \
      > "$RESULTS/replica-$port.log" 2>&1 &
    PIDS+=($!)
    wait_port "$RESULTS/replica-$port.log"   # one at a time: each sizes itself with the other loaded
  done
  "$BUN" bench/run.ts --serve --serve-model "$MODEL_DIR" \
    --serve-flags "--replica 127.0.0.1:50061 --replica 127.0.0.1:50062 --lb-policy $policy" \
    --label "$policy" --tokenizer "$MODEL_DIR" --out-dir "$RESULTS" --suite chat-multiturn --sessions \
    --clients "$CLIENTS" --requests "$REQUESTS" $EXTRA
  stop_replicas
done
if [ -f "$RESULTS/chat-multiturn-cache-aware.json" ] && [ -f "$RESULTS/chat-multiturn-least-outstanding.json" ]; then
  "$BUN" bench/run.ts compare "$RESULTS/chat-multiturn-cache-aware.json" "$RESULTS/chat-multiturn-least-outstanding.json" --out "$RESULTS/chat-multiturn-routing"
fi
