#!/usr/bin/env bash
# One device call: GPU tests (each file in its own process, so a device fault in one cannot take
# the others down), the device ceilings, then the Llama-7B-shaped bench with and without the
# GEMV kernel. Logs and results go to $OUT (at most 8 files come back).
#   device run: carry [".gpu", ".gpu-lib"] (.gpu-lib/libfastgen.so: an sm_90a-only stripped build,
#   zig build --prefix /tmp/fg90 -Dcuda-arch=arch=compute_90a,code=sm_90a; the full build does not fit
#   the 64 MiB a call carries next to .gpu), command "bash bench/gpu/run_device.sh"
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# the library this call carries (see the file comment); zig-out is shared with other builds
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,memory.total --format=csv > "$OUT/env.txt" 2>&1
ldconfig -p | grep -i cublasLt >> "$OUT/env.txt"
run_gpu_tests "$OUT/test_gpu.log"
grep -E "fail|error|rel err|worst|identical|diverges|^ *[0-9]+ (pass|fail)" "$OUT/test_gpu.log" | head -80
timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
rm -f /tmp/attn_ms.txt
FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 240 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceilings.json" "$OUT" > "$OUT/bench.log" 2>&1
for v in FASTGEN_GEMV=0 FASTGEN_CUDA_GRAPHS=0 FASTGEN_PROFILE=1; do
  env $v timeout 120 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceilings.json" "$OUT" --quick >> "$OUT/bench.log" 2>&1
done
cat "$OUT/ceilings.json"; echo
tail -40 "$OUT/bench.log"
