#!/usr/bin/env bash
# One device call (one GPU) for issue #18's FP8 weights on CUDA, in stages (STAGES, default
# "fp8 bench"):
#   fp8      test/gpu/fp8.test.ts (kernels vs fp64, FP8 engines vs the CPU reference, memory)
#   tests    every test/gpu file, each in its own process (the projections of every model now go
#            through linear.cuh and lazily allocated Weights, bf16 ones too)
#   bench    the device ceilings (with the FP8 GEMM ones), bench/gpu/fp8.ts (FP8 vs bf16 on the
#            Llama-2-7B shape), then decode b = 1..16 of the FP8 engine with the GEMV handing over
#            to cuBLASLt above 1, 2 and 8 rows (default 4), with FASTGEN_FP8_LT=0 (no W8A8) and with
#            FASTGEN_GEMV_PIPE=0 (no pipelined rounds in the narrow GEMVs)
#   profile  FASTGEN_PROFILE=1 decode b=1 and prefill of the FP8 engine (device time per op kind)
# Logs and results go to $OUT (at most 8 files come back: logs are packed into fp8.tgz).
#   here: npm run build, then the sm_90a build for .gpu-lib as bench/gpu/README.md says, and
#   ../shared/gpu/pack; device run: carry [".gpu", ".gpu-lib"], command "bash bench/gpu/run_fp8.sh"
set -uo pipefail
FINAL=${OUT:-/tmp/out}
OUT=/tmp/fp8; mkdir -p "$OUT" "$FINAL"
trap 'tar -C /tmp -czf "$FINAL/fp8.tgz" fp8; cp "$OUT"/*.md "$OUT"/*.json "$FINAL"/ 2>/dev/null' EXIT
STAGES=" ${STAGES:-fp8 bench} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv > "$OUT/env.txt" 2>&1
ldconfig -p | grep -i cublasLt >> "$OUT/env.txt"
if has fp8; then
  timeout 300 bash .gpu/enter bun test --timeout 120000 test/gpu/fp8.test.ts > "$OUT/test_fp8.log" 2>&1
  grep -E "fastgen:|fp8 |identical|7b x2|fail|error|^ *[0-9]+ (pass|fail)" "$OUT/test_fp8.log" | head -70
fi
if has tests; then
  run_gpu_tests "$OUT/test_gpu.log"
  grep -E "^===|fail|error|^ *[0-9]+ (pass|fail)" "$OUT/test_gpu.log" | head -60
fi
if has bench; then
  timeout 150 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > "$OUT/ceilings.log" 2>&1 || echo "ceilings failed"
  timeout 300 bash .gpu/enter bun bench/gpu/fp8.ts "$OUT/ceilings.json" "$OUT" > "$OUT/bench.log" 2>&1 || echo "fp8 bench failed"
  for v in FASTGEN_FP8_GEMV_MAX_M=1 FASTGEN_FP8_GEMV_MAX_M=2 FASTGEN_FP8_GEMV_MAX_M=8 FASTGEN_FP8_LT=0 FASTGEN_GEMV_PIPE=0; do
    env $v timeout 120 bash .gpu/enter bun bench/gpu/fp8.ts "$OUT/ceilings.json" "$OUT" --quick 2>&1 | grep "^\[" | sed "s/^/$v: /"
  done > "$OUT/decode_ab.log"
  cat "$OUT/ceilings.json"; echo
  tail -16 "$OUT/bench.log"
  cat "$OUT/decode_ab.log"
fi
if has profile; then
  FASTGEN_PROFILE=1 timeout 120 bash .gpu/enter bun bench/gpu/fp8.ts "$OUT/ceilings.json" "$OUT" --quick > "$OUT/profile.log" 2>&1
  tail -40 "$OUT/profile.log"
fi
