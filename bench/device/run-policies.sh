#!/usr/bin/env bash
# FastGen's scheduling policies on a GPU: a Llama-2-7B-shaped random bf16 model served by
# `fastgen serve` once per policy (splitfuse, prefill-first, orca: the same kernels, only the
# scheduler differs), the same sweep against each, a static-batching baseline with transformers
# `generate` on the same GPU, then one figure and one table for all of them.
#
# On the device machine, from the repository root (Bun from .gpu/enter, libfastgen built with CUDA
# here and carried in zig-out; see bench/device/README.md for the device-tool calls):
#
#   bash .gpu/enter bash bench/device/run-policies.sh [options]
#
# Options (defaults in brackets):
#   --suite NAME          fastgen-2600-60 | fastgen-1200-128 | ... [fastgen-2600-60]
#   --clients LIST        client counts [the suite's: 1,2,4,8,12,16,20,24,28,32]
#   --requests N          requests per point [4 x clients + 32]
#   --policies "A B"      FastGen policies to run ["splitfuse prefill-first orca"]
#   --stages "S ..."      any of: model fastgen hf compare ["model fastgen hf compare"]
#   --model-dir DIR       where the random model is made / read [/tmp/fastgen-llama2-7b-random]
#   --serve-flags "..."   extra `fastgen serve` flags ["--backend cuda"]
#   --results DIR         result files [bench/results/device]
#   --tiny                a 2-layer model of the same vocabulary (CPU smoke test of this script)
#   --model-args "..."    extra make_llama7b_random.py flags, e.g. "--shape 70b --layers 20" [""]
#
# Writes, in --results: <suite>-<policy>.json/.svg per policy, <suite>-hf-static.json/.svg,
# <suite>-policies.svg/.md/.json (all curves + the table), and, when $OUT is set (device tool),
# <suite>-results.tgz + <suite>-policies.{svg,md} in $OUT so they come back.
# Each stage skips work whose output exists (delete a file to redo it), so a sweep can be split
# over several device calls of at most 10 minutes each.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITE=fastgen-2600-60
CLIENTS=""
REQUESTS=""
POLICIES="splitfuse prefill-first orca"
STAGES="model fastgen hf compare"
MODEL_DIR=/tmp/fastgen-llama2-7b-random
SERVE_FLAGS="--backend cuda"
RESULTS=bench/results/device
TINY=""
MODEL_ARGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --policies) POLICIES=$2; shift 2 ;;
    --stages) STAGES=$2; shift 2 ;;
    --model-dir) MODEL_DIR=$2; shift 2 ;;
    --serve-flags) SERVE_FLAGS=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --tiny) TINY=--tiny; shift ;;
    --model-args) MODEL_ARGS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-policies: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
has_stage() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
BUN=${BUN:-bun}
PYTHON=${PYTHON:-python3}
WORKLOAD=(--suite "$SUITE")
[ -n "$CLIENTS" ] && WORKLOAD+=(--clients "$CLIENTS")
[ -n "$REQUESTS" ] && WORKLOAD+=(--requests "$REQUESTS")
mkdir -p "$RESULTS"
stamp() { echo "[$(date +%H:%M:%S)] $*" >&2; }
# On the device tool, what is under $OUT comes back, even after a timeout: copy on any exit.
copy_out() {
  [ -n "${OUT:-}" ] || return 0
  local files
  files=$(cd "$RESULTS" && ls | grep "^$SUITE-" || true)
  [ -n "$files" ] && tar -czf "$OUT/$SUITE-results.tgz" -C "$RESULTS" $files
  for f in "$RESULTS/$SUITE-policies.svg" "$RESULTS/$SUITE-policies.md"; do [ -f "$f" ] && cp "$f" "$OUT/"; done
  stamp "results copied to \$OUT"
}
trap copy_out EXIT

if has_stage model; then
  stamp "model: $MODEL_DIR"
  "$PYTHON" bench/device/make_llama7b_random.py "$MODEL_DIR" $TINY $MODEL_ARGS
fi

if has_stage fastgen; then
  for policy in $POLICIES; do
    out="$RESULTS/$SUITE-$policy.json"
    if [ -f "$out" ]; then stamp "fastgen $policy: $out exists, skipped"; continue; fi
    stamp "fastgen $policy"
    "$BUN" bench/run.ts --serve --serve-model "$MODEL_DIR" --policy "$policy" --serve-flags "$SERVE_FLAGS" \
      --label "$policy" --tokenizer "$MODEL_DIR" --out-dir "$RESULTS" "${WORKLOAD[@]}"
  done
fi

if has_stage hf; then
  out="$RESULTS/$SUITE-hf-static.json"
  if [ -f "$out" ]; then
    stamp "hf-static: $out exists, skipped"
  else
    stamp "hf-static: transformers generate, static batches"
    "$BUN" bench/run.ts workload "${WORKLOAD[@]}" --tokenizer "$MODEL_DIR" --out "/tmp/$SUITE-workload.json"
    "$PYTHON" bench/device/hf_static_baseline.py --model "$MODEL_DIR" --workload "/tmp/$SUITE-workload.json" --out "$out"
    "$BUN" bench/run.ts report "$out"
  fi
fi

if has_stage compare; then
  files=()
  for label in $POLICIES hf-static; do
    [ -f "$RESULTS/$SUITE-$label.json" ] && files+=("$RESULTS/$SUITE-$label.json")
  done
  if [ ${#files[@]} -gt 0 ]; then
    stamp "compare: ${files[*]}"
    "$BUN" bench/run.ts compare "${files[@]}" --out "$RESULTS/$SUITE-policies"
  fi
fi

