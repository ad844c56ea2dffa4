#!/usr/bin/env bash
# One device call (one GPU) for kernel changes, in stages (STAGES, default "tests ab llama7b attention"):
#   tests      test/gpu, each file in its own process
#   ab         decode b=1 of the Llama-2-7B shape (llama7b.ts --quick) under each setting in AB
#              (default "FASTGEN_PDL=1 FASTGEN_PDL=0": programmatic dependent launch on/off), 3 rounds
#   abtests    test/gpu/engine and greedy under each AB setting
#   llama7b    the full llama7b bench (decode, prefill, tokens-per-pass curve)
#   attention  attention prefill with 128-row tiles (default), 64-row tiles (FASTGEN_ATTN_BM=64) and
#              32-key tiles (FASTGEN_ATTN_BN=32) against torch SDPA flash, then the full table
#   splits     decode attention at 1-32 sequences, key splits chosen (auto) and forced (SPLITS)
#   profile    decode b=1 kernel times: ncu (each kernel alone, summed by bench/gpu/ncu_sum.py) and
#              FASTGEN_PROFILE=1 (events between ops, no graphs)
# Everything lands in /tmp/kernels, packed into $OUT/kernels.tgz at the end (8 files come back).
#   device run: carry [".gpu", ".gpu-lib"] (.gpu-lib/libfastgen.so[.xz]: an sm_90a build, see
#   run_device.sh), command "STAGES='...' bash bench/gpu/run_kernels.sh"
set -uo pipefail
FINAL=${OUT:-/tmp/out}
OUT=/tmp/kernels; mkdir -p "$OUT" "$FINAL"
trap 'tar -C /tmp -czf "$FINAL/kernels.tgz" kernels' EXIT
STAGES=" ${STAGES:-tests ab llama7b attention} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
# torch SDPA flash on the attention shapes, once a call (the splits and attention stages share it)
sdpa() {
  [ -f "$OUT/sdpa.json" ] || timeout 120 python3 bench/gpu/sdpa_attention.py "$OUT/sdpa.json" > "$OUT/sdpa.log" 2>&1 || echo "sdpa failed"
}
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$OUT/env.txt" 2>&1
if has tests; then
  run_gpu_tests "$OUT/test_gpu.log"
  grep -E "^===|fail|error|^ *[0-9]+ (pass|fail)" "$OUT/test_gpu.log" | head -60
fi
timeout 120 python3 bench/gpu/ceilings.py "$OUT/ceilings.json" > /dev/null 2>&1 || echo "ceilings failed"
if has ab; then  # decode b=1 under each setting of AB (space-separated VAR=value[,VAR=value]), 3 rounds
  for i in 1 2 3; do
    for v in ${AB:-FASTGEN_PDL=1 FASTGEN_PDL=0}; do
      env ${v//,/ } timeout 60 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceilings.json" "$OUT" --quick 2>&1 | grep "decode b=1 ctx" | sed "s/^/$v: /"
    done
  done > "$OUT/decode_ab.log"
  sort -s -t: -k1,1 "$OUT/decode_ab.log"
fi
if has abtests; then  # the engine and greedy GPU tests under each AB setting
  for v in ${AB:-FASTGEN_PDL=0}; do
    for f in test/gpu/engine.test.ts test/gpu/greedy.test.ts; do
      echo "$v $f: $(env ${v//,/ } timeout 120 bash .gpu/enter bun test --timeout 60000 $f 2>&1 | grep -E '^ *[0-9]+ (pass|fail)' | tr '\n' ' ')"
    done
  done | tee "$OUT/ab_tests.log"
fi
if has llama7b; then
  rm -f /tmp/attn_ms.txt
  FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 200 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceilings.json" "$OUT" > "$OUT/llama7b.log" 2>&1
  echo "llama7b exit $?"; grep "decode\|prefill" "$OUT/llama7b.log" | head -12
fi
if has profile; then
  NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  if [ -x "$NCU" ]; then  # one decode step's kernels, each timed alone (no overlap, no launch gaps)
    timeout 240 bash .gpu/enter "$NCU" ${NCU_FLAGS:-} --metrics gpu__time_duration.sum -k 'regex:gemv|norm_kernel|rope|attn|sample|argmax|embed' \
      --launch-skip ${NCU_SKIP:-3000} --launch-count ${NCU_COUNT:-300} --csv \
      bun bench/gpu/llama7b.ts "$OUT/ceilings.json" "$OUT" --quick > "$OUT/ncu.csv" 2> "$OUT/ncu.err"
    echo "ncu exit $?"; tail -3 "$OUT/ncu.err"
    python3 bench/gpu/ncu_sum.py "$OUT/ncu.csv" | tee "$OUT/ncu_sum.txt"
  fi
  FASTGEN_PROFILE=1 timeout 60 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceilings.json" "$OUT" --quick > "$OUT/profile.log" 2>&1
  tail -12 "$OUT/profile.log"
fi
if has splits; then  # decode attention at 1-32 sequences with the key-split count forced (SPLITS list)
  sdpa
  for n in auto ${SPLITS:-1 2 4 8 16 32 64}; do
    mkdir -p /tmp/s$n; rm -f /tmp/attn_ms.txt
    ( [ $n != auto ] && export FASTGEN_ATTN_SPLITS=$n; FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 100 bash .gpu/enter bun bench/gpu/attention.ts \
      "$OUT/ceilings.json" "$OUT/sdpa.json" /tmp/s$n --decode-only --few-seqs > "$OUT/splits_$n.log" 2>&1 )
    echo "splits $n:"; grep -E "^\| [0-9]+ \| [0-9]+" "$OUT/splits_$n.log" | cut -d'|' -f2,3,5,7 | tr '\n' ';'; echo
  done
fi
if has attention; then
  sdpa
  for v in BM=64 BN=32; do
    mkdir -p /tmp/$v; rm -f /tmp/attn_ms.txt
    env FASTGEN_ATTN_$v FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 120 bash .gpu/enter bun bench/gpu/attention.ts \
      "$OUT/ceilings.json" "$OUT/sdpa.json" /tmp/$v --prefill-only > "$OUT/attention_$v.log" 2>&1
    echo "$v:"; grep -A7 -i "## prefill" "$OUT/attention_$v.log" | tail -5
  done
  rm -f /tmp/attn_ms.txt
  FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 200 bash .gpu/enter bun bench/gpu/attention.ts "$OUT/ceilings.json" "$OUT/sdpa.json" "$OUT" > "$OUT/attention.log" 2>&1
  echo "attention.ts exit $?"; grep -B2 -A30 "## Prefill" "$OUT/attention.log" | head -40
fi
