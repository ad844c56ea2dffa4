#!/usr/bin/env bash
# One device call for DeepSeek-V2's latent attention on CUDA (issue #21 item 6), in stages
# (arguments; default: drift tests bench):
#   drift  transformers' own bf16 drift on the deepseek-v2-lite and deepseek-v2 fixtures (the
#          yardstick test/gpu/fixtures.test.ts reads), when bench/results/hf-bf16-drift-deepseek.json
#          is missing or DRIFT=1; the file comes back in $OUT (commit it)
#   tests  test/gpu/mla.test.ts, families.test.ts, fixtures.test.ts, each in its own process
#   bench  bench/gpu/mla.ts: the latent attention kernels alone at V2-Lite's widths (fp32 and
#          tensor-core, FASTGEN_MLA_KERNEL=fma / mma, one table with the ratio)
#   all    the rest of test/gpu (regressions elsewhere)
#   here: npm run build && build the stripped sm_90a .gpu-lib (bench/gpu/README.md)
#   device run: carry [".gpu", ".gpu-lib"], command "bash bench/gpu/run_mla.sh"
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
DRIFT_FILE=bench/results/hf-bf16-drift-deepseek.json
for stage in "${@:-drift tests bench}"; do
  for s in $stage; do
    case "$s" in
      drift)
        if [ "${DRIFT:-0}" = 1 ] || [ ! -f "$DRIFT_FILE" ]; then
          timeout 180 python3 bench/gpu/hf_bf16_drift.py "$DRIFT_FILE" deepseek-v2-lite deepseek-v2 > "$OUT/drift.log" 2>&1 \
            || echo "drift failed (see drift.log)"
          cp "$DRIFT_FILE" "$OUT/" 2>/dev/null
          tail -4 "$OUT/drift.log"
        fi ;;
      tests)
        for f in mla families fixtures; do
          echo "=== test/gpu/$f.test.ts"
          timeout 240 bash .gpu/enter bun test --timeout 120000 "test/gpu/$f.test.ts" 2>&1 | grep -v "^(pass)\|^(skip)"
        done > "$OUT/test_mla.log" 2>&1
        grep -E "fail|error|rel err|worst|diverges|^ *[0-9]+ (pass|fail)|^===" "$OUT/test_mla.log" | head -150 ;;
      bench)
        timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
        rm -f /tmp/mla_ms.txt
        FASTGEN_ATTN_TIMING=/tmp/mla_ms.txt timeout 400 bash .gpu/enter bun bench/gpu/mla.ts "$OUT/ceilings.json" "$OUT" \
          > "$OUT/mla_bench.log" 2>&1 || echo "mla bench failed"
        tail -16 "$OUT/mla_bench.log" ;;
      all)
        run_gpu_tests "$OUT/test_gpu.log"
        grep -E "fail|error|^ *[0-9]+ (pass|fail)|^===" "$OUT/test_gpu.log" | head -120 ;;
      *) echo "unknown stage $s" ;;
    esac
  done
done
