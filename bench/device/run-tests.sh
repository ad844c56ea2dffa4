#!/usr/bin/env bash
# Named test/gpu files on the device, each in its own process (a device fault in one cannot take the
# others down), then optionally the device ceilings and bench/gpu/families.ts (FAMILIES=1).
#   device run: carry [".gpu", ".gpu-lib"], command "bash bench/device/run-tests.sh fp8 greedy overlap"
# Logs go to $OUT: env.txt, test_gpu.log, and with FAMILIES=1 ceilings.json, families.log and the
# families bench's JSON/markdown.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
date -u >> "$OUT/env.txt"
for name in "$@"; do
  echo "=== test/gpu/$name.test.ts"
  timeout "${TEST_TIMEOUT:-150}" bash .gpu/enter bun test --timeout 120000 "test/gpu/$name.test.ts" 2>&1 | grep -v "^(pass)\|^(skip)"
done > "$OUT/test_gpu.log" 2>&1
grep -E "^===|fail|error|Error|^ *[0-9]+ (pass|fail)" "$OUT/test_gpu.log" | head -80
if [ "${FAMILIES:-0}" = 1 ]; then
  timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
  timeout 300 bash .gpu/enter bun bench/gpu/families.ts "$OUT/ceilings.json" "$OUT" > "$OUT/families.log" 2>&1 || echo "families bench failed"
  tail -14 "$OUT/families.log"
fi
