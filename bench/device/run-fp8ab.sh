#!/usr/bin/env bash
# Issue #18 / #24: the FP8 small-batch GEMM paths A/B in one device call (run-wave.sh stage
# `fp8ab`, or alone), within BUDGET seconds (default 200), in order:
#   1. test/gpu/fp8.test.ts (its kernel cases under the defaults and, in child processes, the
#      knob settings below) and test/gpu/gemvSmall.test.ts
#   2. the kernel bench (bench/gpu/fp8Gemv.ts) once per setting: small1 (the tensor-core small-M
#      kernel at 1..8 rows, W8A8 on cuBLASLt above, timed at 1..16 too) and gemv1 (the CUDA-core
#      GEMV at one row): by default the GEMV takes one row on GPUs of >= 4 TB/s and the small-M
#      kernel below (fp8_gemm.cu auto_gemv_rows), and this A/B is what that rule rests on; earlier
#      A/Bs' settings (kdepth8, gemvdepth2, gemv8, small16, and a W8A8 tensor-core GEMV, deleted)
#      are in bench/results/device-wave9*/10*/12*
#   3. bench/gpu/fp8.ts --quick (FP8 engine decode b = 1..16) per setting
#   4. one compact table (bench/gpu/fp8GemvReport.ts), printed last and in $OUT/fp8ab.md
#   device run: carry [".gpu", ".gpu-lib"], command "bash bench/device/run-fp8ab.sh"
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
BUDGET=${BUDGET:-200}
FINAL=${OUT:-/tmp/out}
A=/tmp/fp8ab; mkdir -p "$A" "$FINAL"
trap 'tar -C /tmp -czf "$FINAL/fp8ab.tgz" fp8ab 2>/dev/null; cp "$A/fp8ab.md" "$FINAL/" 2>/dev/null' EXIT
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
say() { echo "[fp8ab $(( $(date +%s) - T0 ))s] $*" | tee -a "$A/summary.txt"; }
lim() { local l; l=$(left); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }

# knob settings: label, then the environment
SETTINGS=(
  "small1|FASTGEN_FP8_SMALL_MAX_M=8 FASTGEN_FP8_GEMV_MAX_M=0"
  "gemv1|FASTGEN_FP8_GEMV_MAX_M=1"
)

say "tests"
timeout "$(lim 110)" bash .gpu/enter bun test --timeout 120000 test/gpu/fp8.test.ts > "$A/test_fp8.log" 2>&1
say "fp8.test.ts: $(grep -E "^ *[0-9]+ (pass|fail)" "$A/test_fp8.log" | tr '\n' ' ')"
grep -E "\(fail\)|error:" "$A/test_fp8.log" | head -20 | tee -a "$A/summary.txt"
timeout "$(lim 40)" bash .gpu/enter bun test --timeout 60000 test/gpu/gemvSmall.test.ts > "$A/test_gemv_small.log" 2>&1
say "gemvSmall.test.ts: $(grep -E "^ *[0-9]+ (pass|fail)" "$A/test_gemv_small.log" | tr '\n' ' ')"

[ -f "$A/ceilings.json" ] || timeout "$(lim 60)" python3 bench/gpu/ceilings.py "$A/ceilings.json" > "$A/ceilings.log" 2>&1

for s in "${SETTINGS[@]}"; do
  name=${s%%|*}; envs=${s#*|}
  [ "$(left)" -lt 15 ] && { say "kernel bench $name skipped (budget)"; continue; }
  case "$name" in small1) extra="--ms 1,2,4,8,16 --lt" ;; gemv1) extra="--ms 1" ;; *) extra="--ms 1,2,4,8" ;; esac
  rm -f "$A/timing-$name.txt"
  timeout "$(lim 40)" env $envs FASTGEN_FP8_TIMING="$A/timing-$name.txt" bash .gpu/enter \
    bun bench/gpu/fp8Gemv.ts "$A/ceilings.json" "$A/kernel-$name.json" $extra > "$A/kernel-$name.log" 2>&1 || say "kernel bench $name failed"
done

for s in "${SETTINGS[@]}"; do
  name=${s%%|*}; envs=${s#*|}
  [ "$(left)" -lt 25 ] && { say "decode $name skipped (budget)"; continue; }
  timeout "$(lim 45)" env $envs bash .gpu/enter bun bench/gpu/fp8.ts "$A/ceilings.json" "$A" --quick >> "$A/decode.log" 2>&1 || say "decode $name failed"
done

bash .gpu/enter bun bench/gpu/fp8GemvReport.ts "$A" > "$A/report.log" 2>&1
cat "$A/summary.txt"
cat "$A/fp8ab.md"
