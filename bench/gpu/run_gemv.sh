#!/usr/bin/env bash
# One device call (one GPU) for the small-M GEMV (issue #24 item 2), in stages (STAGES, default
# "tests kernels decode"):
#   tests    test/gpu gemvSmall, decodeBatch, engine, greedy, each in its own process
#   kernels  bench/gpu/gemvSmall.ts: each Llama-7B decode GEMM alone at 1-16 tokens, ours vs cuBLASLt
#   decode   bench/gpu/decodeBatch.ts once per setting of VARIANTS (default: the new kernel, then
#            FASTGEN_GEMV_MAX_M=1 = cuBLASLt for 2-16 tokens as before; add e.g. FASTGEN_GEMV_ROWS=16
#            FASTGEN_GEMV_ROWS=32 to A/B the rows per warp; VAR=a,VAR2=b sets two), then one table
# ceilings.py runs first (the copy bandwidth both benches divide by). Everything lands in
# /tmp/gemv, packed into $OUT/gemv.tgz; the tables are printed last.
#   device run: carry [".gpu", ".gpu-lib"] (.gpu-lib: the sm_90a build, see run_device.sh),
#   command "bash bench/gpu/run_gemv.sh"
set -uo pipefail
FINAL=${OUT:-/tmp/out}
OUT=/tmp/gemv; mkdir -p "$OUT" "$FINAL"
trap 'tar -C /tmp -czf "$FINAL/gemv.tgz" gemv' EXIT
STAGES=" ${STAGES:-tests kernels decode} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$OUT/env.txt" 2>&1
if has tests; then
  for f in gemvSmall decodeBatch engine greedy; do
    echo "=== test/gpu/$f.test.ts"
    timeout 240 bash .gpu/enter bun test --timeout 120000 "test/gpu/$f.test.ts" 2>&1 | grep -v "^(pass)\|^(skip)"
  done > "$OUT/tests.log" 2>&1
  grep -E "^===|fail|error|Error|^ *[0-9]+ (pass|fail)" "$OUT/tests.log" | head -40
  echo "worst: $(grep -hoE "rel (err|diff) [0-9.e+-]+" "$OUT/tests.log" | sort -g -k3 | tail -1)"
fi
timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
if has kernels; then
  timeout 240 bash .gpu/enter bun bench/gpu/gemvSmall.ts "$OUT/ceilings.json" "$OUT" > "$OUT/kernels.log" 2>&1 || echo "gemvSmall.ts failed"
fi
if has decode; then
  for v in ${VARIANTS:-default FASTGEN_GEMV_MAX_M=1}; do
    ( [ "$v" = default ] || export ${v//,/ }; timeout 150 bash .gpu/enter bun bench/gpu/decodeBatch.ts "$OUT/ceilings.json" "$OUT" ) >> "$OUT/decode.log" 2>&1 || echo "decodeBatch.ts $v failed"
  done
  bash .gpu/enter bun bench/gpu/decodeBatch.ts --report $(ls -t "$OUT"/decode-batch-*.json | tac) > "$OUT/decode.md" 2>&1
fi
[ -f "$OUT/cuda-gemv-small.md" ] && tail -n +5 "$OUT/cuda-gemv-small.md"
[ -f "$OUT/decode.md" ] && cat "$OUT/decode.md"
