#!/usr/bin/env bash
# One device call for issue #21 on CUDA (and #18's FP8 checks): transformers' own bf16 drift on the
# second-wave fixtures (the yardstick test/gpu/fixtures.test.ts reads), test/gpu (each file in its
# own process), the device ceilings, then bench/gpu/families.ts (Qwen3-8B and Gemma-2-9B shapes).
#   here: npm run build && strip --strip-unneeded zig-out/lib/libfastgen.so && ../shared/gpu/pack
#   device run: carry [".gpu", "zig-out"], command "bash bench/gpu/run_families.sh"
# Logs and results go to $OUT (at most 8 files come back).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
# (committed from the H100 run of 2026-12-07; DRIFT=1 measures it again)
if [ "${DRIFT:-0}" = 1 ] || [ ! -f bench/results/hf-bf16-drift-families.json ]; then
  timeout 180 python3 bench/gpu/hf_bf16_drift.py bench/results/hf-bf16-drift-families.json \
    qwen3 qwen3-moe qwen2-moe gemma2 gemma3 phi3-longrope phi3-short llama-yarn > "$OUT/drift.log" 2>&1 || echo "drift failed"
  cp bench/results/hf-bf16-drift-families.json "$OUT/" 2>/dev/null
  tail -12 "$OUT/drift.log"
fi
run_gpu_tests "$OUT/test_gpu.log"
grep -E "fail|error|rel err|worst|identical|diverges|^ *[0-9]+ (pass|fail)|^===" "$OUT/test_gpu.log" | head -120
timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
timeout 300 bash .gpu/enter bun bench/gpu/families.ts "$OUT/ceilings.json" "$OUT" > "$OUT/families.log" 2>&1 || echo "families bench failed"
tail -12 "$OUT/families.log"
