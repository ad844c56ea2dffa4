#!/usr/bin/env bash
# One device call on nvidia-h200-x2 for tensor parallelism and MoE: test/gpu (every file in its own
# process; tensorParallel.test.ts needs the two GPUs), the device ceilings, then bench/gpu/tp.ts.
#   device run: carry [".gpu", ".gpu-lib"] (see run_device.sh), command "bash bench/gpu/run_tp.sh [tests|bench|all] [tp.ts flags]"
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
WHAT=${1:-all}; shift || true
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv > "$OUT/env.txt" 2>&1
if [ "$WHAT" != bench ]; then
  run_gpu_tests "$OUT/test_gpu.log"
  grep -E "fail|error|rel err|worst|identical|diverges|TP=2|^ *[0-9]+ (pass|fail)" "$OUT/test_gpu.log" | head -120
fi
if [ "$WHAT" != tests ]; then
  timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
  timeout 420 bash .gpu/enter bun bench/gpu/tp.ts "$OUT/ceilings.json" "$OUT" "$@" > "$OUT/tp.log" 2>&1
  echo "tp.ts exit $?"
  tail -50 "$OUT/tp.log"
fi
