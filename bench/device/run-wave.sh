#!/usr/bin/env bash
# One device call that runs stages in order until a deadline, so a scarce GPU window carries as much
# as it can: `tests:a,b,c` (test/gpu files, each in its own process), `gemv` (bench/gpu/run_gemv.sh's
# kernels + decode stages, new kernel vs FASTGEN_GEMV_MAX_M=1), `fp8` (bench/gpu/fp8.ts, FP8 vs bf16),
# `families` (ceilings + bench/gpu/families.ts), `routing` (bench/device/run-routing.sh),
# `overlap` (the grammar overhead with overlapped steps off/on, bench/device/run-overlap.sh's bench),
# `grammar` (the grammar overhead with overlap on and K = 1, 2, 4 grammar Workers, one process per
# K so one 7B engine is loaded at a time; GRAMMAR_WORKERS="1 2 4" to change the list, GRAMMAR_BATCHES=16,64 the batches, GRAMMAR_ROUNDS=7 the rounds, GRAMMAR_SCHEMA=records the app-like schema, "1,2,4" for
# one process with the three engines interleaved round by round), `mla` (transformers' bf16 drift on
# the deepseek fixtures, which test/gpu/fixtures.test.ts reads: run it before the tests), `mlabench`
# (bench/gpu/mla.ts, the latent attention kernels alone: fp32 vs tensor-core, MLA_KERNELS default fma,mma; mma16,mma64 force the row count), `specinv` (a self-draft at batch 1-3 with the
# default kernels and with the batch-invariant FASTGEN_ATTN=simple FASTGEN_GEMV_SMALL_AT_1=1),
# `fp8ab` (the FP8 small-batch GEMM paths A/B, bench/device/run-fp8ab.sh, ~240 s), `fp8kv` (bench/gpu/fp8Kv.ts:
# FP8 vs bf16 KV cache on the 7B shape, blocks, decode attention GB/s, decode at 1/32 x 4k and
# 64 x 2k, prefill 2048; ~3 min), `fp8kvab` (FASTGEN_ATTN_FP8_DIRECT 0 vs 1: decode attention
# alone, bf16 and FP8 KV at 8/32 x 4k and 64 x 2k, under each knob value, then the FP8-KV engine's
# decode at 32 x 4096 under each while time allows; ~90 s), `fp8acc` (FP8 W8A8
# against bf16 on every fixture family and the 7B shape, bench/gpu/fp8Accuracy.ts), `fp8serve` (the
# 2600/60 sweep against `fastgen serve` on the 7B shape, bf16 then --quantization fp8, at
# FP8_CLIENTS (default 1,4,16,32) with FP8_REQUESTS (default 24) a point, and one comparison), `e2e`
# (issue #24's served before/after in one call: `fastgen serve` on the 7B shape with the new kernels'
# knobs off (E2E_BEFORE, default "FASTGEN_ATTN_HOPPER=0 FASTGEN_NORM_FOLD=0") then on, fastgen-2600-60 at
# 1,8,32 clients and chat-128-200 at 1,16,64, token latency p50/p95 and throughput per point, the
# server's per-pass host time (FASTGEN_LOOP_TIMING=1), one comparison per suite), `fa3` (issue 24 item 1:
# test/gpu/attentionHopper.test.ts, then prefill attention 2k-16k MHA and GQA 32/8 plus 512-token
# chunks at 2k/8k, torch SDPA flash and our mma.sync / Hopper / Hopper-serial kernels in one run,
# TFLOP/s and the ratio to SDPA; tables in $OUT/wave.tgz:wave/fa3/cuda-attention.{md,json}; put it
# first: if its test is not clean, later stages run with FASTGEN_ATTN_HOPPER=0), `pdl` (decode at batch 1,
# 2, 4, 8 under {FASTGEN_PDL 0, 1} x {FASTGEN_NORM_FOLD 0, 8}, and FASTGEN_PREFETCH_O 16 / 32,
# bench/gpu/run_pdl.sh, ~3 min), `piecewise` (issue 24 item 3: mixed passes, 32 decodes + a 32-992-token
# chunk and single chunks of 64-1024 tokens, on the 7B shape under FASTGEN_PIECEWISE_GRAPHS 0 and 1,
# PIECEWISE_ROUNDS rounds (default 2) alternating, bench/gpu/piecewise.ts; run `tests:piecewise`
# before it; ~2-3 min), `spec` (issue 22: bench/device/run-speculative.sh, batch 1/4/16/64 without
# speculation, ngram, a self-draft and a penalized self-draft; ~3-4 min), `grammarserve` (structured
# outputs served: chat-128-200 on `fastgen serve` with and without a JSON schema in response_format),
# `stepcost` (each op kind's cost on the decode chain: bench/gpu/stepCost.ts under FASTGEN_SKIP settings),
# `commits` (decodeBatch.ts of older commits packed by bench/device/pack-commit.sh, beside this checkout's),
# `scheduler` (bench/scheduler.ts on the GPU host's CPU: issue 24 item 4's host time a step), `ncu`
# (ncu sections of one layer's decode GEMVs at b=1, FP8 and bf16: where they lose bandwidth).
# A stage starts only if DEADLINE seconds (default 570) have not passed since the call began.
#   device run: carry [".gpu", ".gpu-lib"], command "bash bench/device/run-wave.sh tests:fp8,engine gemv fp8"
# Everything lands in $OUT (wave.tgz with every log and result, plus a summary).
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
DEADLINE=${DEADLINE:-570}
FINAL=${OUT:-/tmp/out}
W=/tmp/wave; mkdir -p "$W" "$FINAL"
trap 'tar -C /tmp -czf "$FINAL/wave.tgz" wave gemv fp8 pdl 2>/dev/null; cp "$W/summary.txt" "$FINAL/" 2>/dev/null' EXIT
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
say() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$W/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$W/env.txt" 2>&1; date -u >> "$W/env.txt"
cat "$W/env.txt" >> "$W/summary.txt"
# relabel SRC DST LABEL: a sweep's result JSON under another label (compare needs distinct ones).
relabel() { [ -f "$1" ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["label"]=sys.argv[3]; json.dump(d,open(sys.argv[2],"w"))' "$1" "$2" "$3"; }
ceilings() { [ -f "$W/ceilings.json" ] || timeout 120 python3 bench/gpu/ceilings.py "$W/ceilings.json" > "$W/ceilings.log" 2>&1; }
for stage in "$@"; do
  l=$(left)
  if [ "$l" -lt 30 ]; then say "skipped $stage (deadline)"; continue; fi
  say "stage $stage (${l}s left)"
  case "$stage" in
    tests:*)
      IFS=, read -ra names <<< "${stage#tests:}"
      for name in "${names[@]}"; do
        l=$(left); [ "$l" -lt 20 ] && { say "skipped test $name"; continue; }
        cap=${TEST_CAP:-150}; t=$(( l < cap ? l : cap ))
        echo "=== test/gpu/$name.test.ts" >> "$W/test_gpu.log"
        timeout "$t" bash .gpu/enter bun test --timeout 120000 "test/gpu/$name.test.ts" 2>&1 | grep -v "^(pass)\|^(skip)" >> "$W/test_gpu.log"
        say "$name: $(grep -A200 "=== test/gpu/$name.test.ts" "$W/test_gpu.log" | grep -E "^ *[0-9]+ (pass|fail)" | tr '\n' ' ')"
      done ;;
    gemv)
      timeout "$(left)" env STAGES="kernels decode" VARIANTS="default FASTGEN_GEMV_MAX_M=1" bash bench/gpu/run_gemv.sh > "$W/gemv.log" 2>&1
      tail -40 "$W/gemv.log" >> "$W/summary.txt" ;;
    fp8)
      ceilings
      timeout "$(left)" bash .gpu/enter bun bench/gpu/fp8.ts "$W/ceilings.json" "$W" > "$W/fp8_bench.log" 2>&1 || say "fp8 bench failed"
      tail -20 "$W/fp8_bench.log" >> "$W/summary.txt" ;;
    families)
      ceilings
      timeout "$(left)" bash .gpu/enter bun bench/gpu/families.ts "$W/ceilings.json" "$W" > "$W/families.log" 2>&1 || say "families bench failed"
      tail -14 "$W/families.log" >> "$W/summary.txt" ;;
    routing)
      timeout "$(left)" bash .gpu/enter bash bench/device/run-routing.sh --clients 4,16 --requests 48 > "$W/routing.log" 2>&1
      cp -r bench/results/device-routing "$W/" 2>/dev/null
      tail -8 "$W/routing.log" >> "$W/summary.txt" ;;
    overlap)
      M=/tmp/fastgen-llama2-7b-random
      [ -f "$M/config.json" ] || timeout "$(left)" python3 bench/device/make_llama7b_random.py "$M" > "$W/make7b.log" 2>&1
      for ov in off on; do
        timeout "$(left)" bash .gpu/enter bun bench/grammarOverhead.ts --model "$M" --backend cuda --steps 64 --rounds 3 --overlap "$ov" >> "$W/overlap.log" 2>&1
      done
      cp bench/results/grammar-cuda-*.json "$W/" 2>/dev/null
      tail -20 "$W/overlap.log" >> "$W/summary.txt" ;;
    grammar)
      M=/tmp/fastgen-llama2-7b-random
      [ -f "$M/config.json" ] || timeout "$(left)" python3 bench/device/make_llama7b_random.py "$M" > "$W/make7b.log" 2>&1
      for k in ${GRAMMAR_WORKERS:-1 2 4}; do
        l=$(left); [ "$l" -lt 40 ] && { say "skipped grammar K=$k (deadline)"; continue; }
        timeout "$l" bash .gpu/enter bun bench/grammarOverhead.ts --model "$M" --backend cuda --steps 64 --rounds "${GRAMMAR_ROUNDS:-3}" --batches "${GRAMMAR_BATCHES:-1,16,64}" --overlap on --grammar-workers "$k" --schema "${GRAMMAR_SCHEMA:-strings}" > "$W/grammar-k$k.log" 2>&1 || say "grammar K=$k failed"
        say "grammar K=$k:"; grep -v "^\[FATAL\]\|^Aborted" "$W/grammar-k$k.log" | tail -22 >> "$W/summary.txt"
      done
      cp bench/results/grammar-cuda-*-gw* "$W/" 2>/dev/null ;;
    mla)
      DRIFT_FILE=bench/results/hf-bf16-drift-deepseek.json
      [ -f "$DRIFT_FILE" ] || timeout "$(left)" python3 bench/gpu/hf_bf16_drift.py "$DRIFT_FILE" deepseek-v2-lite deepseek-v2 > "$W/drift.log" 2>&1 || say "drift failed"
      cp "$DRIFT_FILE" "$W/" 2>/dev/null
      tail -4 "$W/drift.log" >> "$W/summary.txt" ;;
    mlabench)
      ceilings
      FASTGEN_ATTN_TIMING=/tmp/mla_ms.txt timeout "$(left)" bash .gpu/enter bun bench/gpu/mla.ts "$W/ceilings.json" "$W" --kernels "${MLA_KERNELS:-fma,mma}" > "$W/mla_bench.log" 2>&1 || say "mla bench failed"
      tail -16 "$W/mla_bench.log" >> "$W/summary.txt" ;;
    fp8kv)
      ceilings
      rm -f /tmp/fp8kv_attn_ms.txt
      FASTGEN_ATTN_TIMING=/tmp/fp8kv_attn_ms.txt timeout "$(left)" bash .gpu/enter bun bench/gpu/fp8Kv.ts "$W/ceilings.json" "$W" > "$W/fp8kv_bench.log" 2>&1 || say "fp8kv bench failed"
      tail -24 "$W/fp8kv_bench.log" >> "$W/summary.txt" ;;
    fp8kvab)
      ceilings
      for d in 0 1; do
        rm -f /tmp/fp8kv_attn_ms.txt
        FASTGEN_ATTN_FP8_DIRECT=$d FASTGEN_ATTN_TIMING=/tmp/fp8kv_attn_ms.txt timeout "$(left)" bash .gpu/enter bun bench/gpu/fp8Kv.ts "$W/ceilings.json" "$W" --kernel-only > "$W/fp8kvab_kernel$d.log" 2>&1 || say "fp8kvab kernel (direct $d) failed"
        grep "^kernel" "$W/fp8kvab_kernel$d.log" >> "$W/summary.txt"
      done
      for d in 0 1; do
        [ "$(left)" -gt 60 ] || { say "fp8kvab: no time for the engine rows"; break; }
        rm -f /tmp/fp8kv_attn_ms.txt
        FASTGEN_ATTN_FP8_DIRECT=$d FASTGEN_ATTN_TIMING=/tmp/fp8kv_attn_ms.txt timeout "$(left)" bash .gpu/enter bun bench/gpu/fp8Kv.ts "$W/ceilings.json" "$W" --engine fp8 --decode 32x4096 > "$W/fp8kvab_engine$d.log" 2>&1 || say "fp8kvab engine (direct $d) failed"
        grep -E "^kernel|decode batch" "$W/fp8kvab_engine$d.log" >> "$W/summary.txt"
      done ;;
    pdl)
      ceilings
      timeout "$(left)" env CEILINGS="$W/ceilings.json" ROUNDS="${PDL_ROUNDS:-3}" bash bench/gpu/run_pdl.sh > "$W/pdl.log" 2>&1 || say "pdl bench failed"
      tail -12 "$W/pdl.log" >> "$W/summary.txt" ;;
    piecewise)
      mkdir -p "$W/piecewise"
      for r in $(seq 1 "${PIECEWISE_ROUNDS:-2}"); do
        for v in 0 1; do
          l=$(left); [ "$l" -lt 40 ] && { say "skipped piecewise $v r$r (deadline)"; continue; }
          FASTGEN_PIECEWISE_GRAPHS=$v ROUND=$r timeout "$l" bash .gpu/enter bun bench/gpu/piecewise.ts "$W/piecewise" >> "$W/piecewise.log" 2>&1 || say "piecewise $v r$r failed"
        done
      done
      timeout 60 bash .gpu/enter bun bench/gpu/piecewise.ts --report "$W/piecewise" > "$W/piecewise.md" 2>&1
      cat "$W/piecewise.md" >> "$W/summary.txt" ;;
    fp8ab)
      OUT="$W" BUDGET=$(( $(left) < 240 ? $(left) : 240 )) bash bench/device/run-fp8ab.sh > "$W/fp8ab.log" 2>&1
      cp -r /tmp/fp8ab "$W/" 2>/dev/null
      tail -40 "$W/fp8ab.log" >> "$W/summary.txt" ;;
    specinv)
      # Speculation's bit-identity on the GPU: a draft equal to the target at batch 1-3 (at most 15
      # tokens a verification pass), default kernels vs the batch-invariant pair
      # FASTGEN_ATTN=simple FASTGEN_GEMV_SMALL_AT_1=1 FASTGEN_GEMV_MAX_M=16 (every GEMM of up to 16
      # rows in the small-M kernel): the second should accept ~100% and change no output.
      M=/tmp/fastgen-llama2-7b-random
      [ -f "$M/config.json" ] || timeout "$(left)" python3 bench/device/make_llama7b_random.py "$M" > "$W/make7b.log" 2>&1
      for v in default "FASTGEN_ATTN=simple FASTGEN_GEMV_SMALL_AT_1=1 FASTGEN_GEMV_MAX_M=16"; do
        l=$(left); [ "$l" -lt 40 ] && { say "skipped specinv $v (deadline)"; continue; }
        ( [ "$v" = default ] || export $v; FASTGEN_BACKEND=cuda timeout "$l" bash .gpu/enter bun bench/speculative.ts --model "$M" --tokens 64 --batches 1,2,3 --draft "$M" ) > "$W/specinv-${v%% *}.log" 2>&1 || say "specinv $v failed"
        say "specinv $v:"; tail -14 "$W/specinv-${v%% *}.log" >> "$W/summary.txt"
      done ;;
    spec)
      # issue 22's device figures: bench/device/run-speculative.sh (no speculation / ngram / a
      # self-draft / a self-draft with penalties, batch 1, 4, 16, 64, outputs checked equal)
      mkdir -p "$W/spec"
      OUT="$W/spec" timeout "$(left)" bash .gpu/enter bash bench/device/run-speculative.sh > "$W/spec.log" 2>&1 || say "spec failed"
      grep -E "│|Speculative|differ" "$W/spec.log" | tail -80 >> "$W/summary.txt" ;;
    fp8acc)
      timeout "$(left)" bash .gpu/enter bun bench/gpu/fp8Accuracy.ts "$W" > "$W/fp8acc.log" 2>&1 || say "fp8acc failed"
      tail -30 "$W/fp8acc.log" >> "$W/summary.txt" ;;
    fp8serve)
      M=/tmp/fastgen-llama2-7b-random
      for q in bf16 fp8; do
        l=$(left); [ "$l" -lt 60 ] && { say "skipped fp8serve $q (deadline)"; continue; }
        flags="--backend cuda"; [ "$q" = fp8 ] && flags="--backend cuda --quantization fp8"
        timeout "$l" bash .gpu/enter bash bench/device/run-policies.sh --suite fastgen-2600-60 --clients "${FP8_CLIENTS:-1,4,16,32}" \
          --requests "${FP8_REQUESTS:-24}" --policies splitfuse --stages "model fastgen" --model-dir "$M" \
          --serve-flags "$flags" --results "/tmp/fp8serve-$q" > "$W/fp8serve-$q.log" 2>&1 || say "fp8serve $q failed"
        tail -4 "$W/fp8serve-$q.log" >> "$W/summary.txt"
      done
      mkdir -p "$W/fp8serve"
      for q in bf16 fp8; do relabel "/tmp/fp8serve-$q/fastgen-2600-60-splitfuse.json" "$W/fp8serve/fastgen-2600-60-$q.json" "$q"; done
      timeout 60 bash .gpu/enter bun bench/run.ts compare "$W/fp8serve/fastgen-2600-60-bf16.json" "$W/fp8serve/fastgen-2600-60-fp8.json" \
        --out "$W/fp8serve/fastgen-2600-60-fp8-vs-bf16" >> "$W/fp8serve.log" 2>&1 || say "fp8serve compare failed"
      cat "$W/fp8serve/fastgen-2600-60-fp8-vs-bf16.md" >> "$W/summary.txt" 2>/dev/null ;;
    grammarserve)
      # Structured outputs served: `fastgen serve` on the 7B shape, chat-128-200 at GS_CLIENTS
      # (default 16,64) with GS_REQUESTS a point (default 128), without and then with a JSON schema
      # in every request's response_format (3 records of the bench's 20 fields: longer than any
      # reply, so every request still makes max_tokens), one comparison.
      M=/tmp/fastgen-llama2-7b-random
      [ -f "$M/config.json" ] || timeout "$(left)" python3 bench/device/make_llama7b_random.py "$M" > "$W/make7b.log" 2>&1
      mkdir -p "$W/gserve"
      bash .gpu/enter bun -e 'import { recordsSchema } from "./bench/grammarOverhead"; await Bun.write("/tmp/rf.json", JSON.stringify({ type: "json_schema", json_schema: { name: "records", strict: true, schema: JSON.parse(recordsSchema()) } }));'
      for v in none json; do
        l=$(left); [ "$l" -lt 60 ] && { say "skipped grammarserve $v (deadline)"; continue; }
        extra=(); [ "$v" = json ] && extra=(--response-format @/tmp/rf.json)
        timeout "$l" bash .gpu/enter bun bench/run.ts --serve --serve-model "$M" --serve-flags "--backend cuda" --suite chat-128-200 \
          --clients "${GS_CLIENTS:-16,64}" --requests "${GS_REQUESTS:-128}" --label "$v" --tokenizer "$M" --out-dir "$W/gserve" --quiet "${extra[@]}" > "$W/gserve-$v.log" 2>&1 || say "grammarserve $v failed"
      done
      timeout 60 bash .gpu/enter bun bench/run.ts compare "$W/gserve/chat-128-200-none.json" "$W/gserve/chat-128-200-json.json" \
        --out "$W/gserve/chat-128-200-json-vs-none" >> "$W/gserve.log" 2>&1 || say "grammarserve compare failed"
      cat "$W/gserve/chat-128-200-json-vs-none.md" >> "$W/summary.txt" 2>/dev/null ;;
    e2e)
      M=/tmp/fastgen-llama2-7b-random
      for suite in ${E2E_SUITES:-fastgen-2600-60 chat-128-200}; do
        case "$suite" in chat-*) clients=1,16,64 requests=64 ;; *) clients=1,8,32 requests=24 ;; esac
        for v in before after; do
          l=$(left); [ "$l" -lt 60 ] && { say "skipped e2e $suite $v (deadline)"; continue; }
          envs="FASTGEN_LOOP_TIMING=1"; [ "$v" = before ] && envs="$envs ${E2E_BEFORE:-FASTGEN_ATTN_HOPPER=0 FASTGEN_NORM_FOLD=0}"
          timeout "$l" env $envs bash .gpu/enter bash bench/device/run-policies.sh --suite "$suite" --clients "$clients" \
            --requests "$requests" --policies splitfuse --stages "model fastgen" --model-dir "$M" \
            --serve-flags "--backend cuda" --results "/tmp/e2e-$suite-$v" > "$W/e2e-$suite-$v.log" 2>&1 || say "e2e $suite $v failed"
          say "e2e $suite $v ($envs): $(grep "fastgen loop:" "$W/e2e-$suite-$v.log" | tail -1)"
          mkdir -p "$W/e2e"; relabel "/tmp/e2e-$suite-$v/$suite-splitfuse.json" "$W/e2e/$suite-$v.json" "$v"
        done
        timeout 60 bash .gpu/enter bun bench/run.ts compare "$W/e2e/$suite-before.json" "$W/e2e/$suite-after.json" \
          --out "$W/e2e/$suite-before-after" >> "$W/e2e.log" 2>&1 || say "e2e compare $suite failed"
        cat "$W/e2e/$suite-before-after.md" >> "$W/summary.txt" 2>/dev/null
      done ;;
    stepcost)
      ceilings
      # What each op kind costs on the decode chain: bench/gpu/stepCost.ts (7B shape, b=1, ctx 128
      # and 512) once per FASTGEN_SKIP setting in STEPCOST_SKIPS ("-" = none), bf16 then FP8
      # (STEPCOST_WEIGHTS, default "bf16 fp8"), STEPCOST_ROUNDS rounds (default 1).
      for r in $(seq 1 "${STEPCOST_ROUNDS:-1}"); do
        for wt in ${STEPCOST_WEIGHTS:-bf16 fp8}; do
          for sk in ${STEPCOST_SKIPS:-- rope attn norm rope,attn,norm o}; do
            l=$(left); [ "$l" -lt 40 ] && { say "skipped stepcost $wt $sk (deadline)"; continue; }
            [ "$sk" = - ] && sk=""
            flag=(); [ "$wt" = fp8 ] && flag=(--fp8)
            FASTGEN_SKIP="$sk" timeout "$l" bash .gpu/enter bun bench/gpu/stepCost.ts "$W/stepcost.jsonl" "${flag[@]}" >> "$W/stepcost.log" 2>&1 || say "stepcost $wt '$sk' failed"
          done
        done
      done
      timeout 60 bash .gpu/enter bun bench/gpu/stepCost.ts --report "$W/stepcost.jsonl" > "$W/stepcost.md" 2>&1
      cat "$W/stepcost.md" >> "$W/summary.txt" ;;
    ncu)
      # Where the decode GEMVs lose bandwidth: ncu's sections (NCU_SECTIONS, default speed-of-light,
      # occupancy, warp state, launch) for NCU_COUNT (default 4: one layer's qkv, o, gate_up, down)
      # kernels matching NCU_KERNELS of a b=1 decode (bench/gpu/stepCost.ts: CUDA graphs, profiled
      # node by node; a KV pool of 1024 blocks, so that kernel replay backs memory up on the device),
      # per weight type in NCU_WEIGHTS (default "fp8 bf16"); text reports in $W/ncu-<weights>.txt.
      NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
      for wt in ${NCU_WEIGHTS:-fp8 bf16}; do
        l=$(left); [ "$l" -lt 60 ] && { say "skipped ncu $wt (deadline)"; continue; }
        flag=(); [ "$wt" = fp8 ] && flag=(--fp8)
        secs=(); for sec in ${NCU_SECTIONS:-SpeedOfLight Occupancy WarpStateStats LaunchStats}; do secs+=(--section "$sec"); done
        STEPCOST_BLOCKS=1024 timeout "$(( l < 240 ? l : 240 ))" bash .gpu/enter "$NCU" "${secs[@]}" \
          -k "regex:${NCU_KERNELS:-gemv}" --launch-skip "${NCU_SKIP:-400}" --launch-count "${NCU_COUNT:-4}" \
          bun bench/gpu/stepCost.ts /tmp/ncu-steps.jsonl "${flag[@]}" > "$W/ncu-$wt.txt" 2>&1 || say "ncu $wt failed"
        say "ncu $wt: $(grep -cE "^  [a-zA-Z_].*\(" "$W/ncu-$wt.txt") kernels profiled"
        grep -E "^  [a-zA-Z_].*\(|DRAM Throughput|Memory Throughput|Duration|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible" "$W/ncu-$wt.txt" | head -80 >> "$W/summary.txt"
      done ;;
    scheduler)
      # Issue 24 item 4 on the GPU host's CPU: the scheduler's plan + batch host time a step
      # (bench/scheduler.ts, no GPU), its table and JSON in $W.
      timeout "$(left)" bash .gpu/enter bun bench/scheduler.ts --steps "${SCHED_STEPS:-1500}" --rounds 3 > "$W/scheduler.log" 2>&1 || say "scheduler bench failed"
      cp bench/results/scheduler.json "$W/scheduler-device-host.json" 2>/dev/null
      lscpu | grep -E "Model name|^CPU\(s\)" >> "$W/scheduler.log"
      tail -14 "$W/scheduler.log" >> "$W/summary.txt" ;;
    commits)
      ceilings
      # A device-side bisect of a speed change: bench/gpu/decodeBatch.ts of each older commit that
      # bench/device/pack-commit.sh packed into .gpu-lib/commit-<sha>.tar.xz, run from that commit's
      # own tree against its own library, in the order of COMMITS ("HEAD" = this checkout, "HEAD+VAR=v,W=x"
      # the same under those FASTGEN_* knobs, "<sha>+VAR=v" a packed commit under them; default:
      # HEAD, every packed commit, HEAD again), then one table with a column a run.
      order=${COMMITS:-HEAD $(ls .gpu-lib/commit-*.tar.xz 2>/dev/null | sed 's/.*commit-//; s/.tar.xz//' | tr '\n' ' ') HEAD}
      mkdir -p "$W/commits"; n=0; runs=()
      for c in $order; do
        l=$(left); [ "$l" -lt 45 ] && { say "skipped commit $c (deadline)"; continue; }
        n=$((n + 1)); out="$W/commits/$n-$c"; mkdir -p "$out"
        base=${c%%+*}; envs=(); [ "$c" != "$base" ] && IFS=, read -ra envs <<< "${c#*+}"  # X+VAR=v,VAR2=w: under those knobs
        if [ "$base" = HEAD ]; then
          timeout "$l" env "${envs[@]}" bash .gpu/enter bun bench/gpu/decodeBatch.ts "$W/ceilings.json" "$out" > "$out/decode.log" 2>&1 || say "decodeBatch $c failed"
        else
          t=/tmp/commit-$base; rm -rf "$t"; mkdir -p "$t"; tar -xJf ".gpu-lib/commit-$base.tar.xz" -C "$t"; ln -sfn "$PWD/node_modules" "$t/node_modules"
          bash .gpu/enter true  # unpacks bun into /tmp/gpubin (enter itself would cd back here)
          (cd "$t" && PATH=/tmp/gpubin:$PATH FASTGEN_LIB="$t/libfastgen.so" timeout "$l" env "${envs[@]}" bun bench/gpu/decodeBatch.ts "$W/ceilings.json" "$out") > "$out/decode.log" 2>&1 || say "decodeBatch $c failed"
          cp "$t/COMMIT" "$out/" 2>/dev/null
        fi
        f=$(ls "$out"/decode-batch-*.json 2>/dev/null | head -1)
        [ -n "$f" ] && relabel "$f" "$out/run.json" "$n:$c" && runs+=("$out/run.json")
        say "commit $c: $(grep -E "batch 1 ctx (128|512)" "$out/decode.log" | sed 's/.*: //' | tr '\n' ' ')"
      done
      [ ${#runs[@]} -gt 0 ] && timeout 60 bash .gpu/enter bun bench/gpu/decodeBatch.ts --report "${runs[@]}" > "$W/commits.md" 2>&1
      cat "$W/commits.md" >> "$W/summary.txt" 2>/dev/null ;;
    fa3)
      # the kernel's test first, in its own process: a fault or a hang there must not cost the bench
      t=$(( $(left) < 240 ? $(left) : 240 ))
      timeout "$t" bash .gpu/enter bun test --timeout 120000 test/gpu/attentionHopper.test.ts 2>&1 | grep -v "^(pass)\|^(skip)" > "$W/fa3_test.log"
      say "attentionHopper: $(grep -E "^ *[0-9]+ (pass|fail)" "$W/fa3_test.log" | tr '\n' ' ')"
      grep -E "rel err|hopper:|\(fail\)|rror" "$W/fa3_test.log" | head -90 >> "$W/summary.txt"
      # a kernel that failed its test (or hung in it) is not timed, and later stages run without it
      kernels=mma,hopper,hopper-serial
      grep -qE "^ *0 fail" "$W/fa3_test.log" && grep -qE "^ *[1-9][0-9]* pass" "$W/fa3_test.log" || {
        kernels=mma; export FASTGEN_ATTN_HOPPER=0; say "fa3: test not clean: timing mma.sync only, FASTGEN_ATTN_HOPPER=0 from here"; }
      ceilings
      timeout "$(left)" python3 bench/gpu/sdpa_attention.py "$W/sdpa_fa3.json" --fa3-shapes --prefill-only > "$W/sdpa_fa3.log" 2>&1 || say "sdpa failed"
      rm -f /tmp/attn_ms_fa3.txt
      FASTGEN_ATTN_TIMING=/tmp/attn_ms_fa3.txt timeout "$(left)" bash .gpu/enter bun bench/gpu/attention.ts "$W/ceilings.json" "$W/sdpa_fa3.json" "$W/fa3" \
        --prefill-only --fa3-shapes --kernels=$kernels > "$W/fa3_bench.log" 2>&1 || say "fa3 bench failed"
      sed -n '/^## Prefill/,/^## Decode/p' "$W/fa3_bench.log" | grep -v "^## Decode" >> "$W/summary.txt"
      grep -E "FAILED|WARNING|Skipped|SDPA errors" "$W/fa3_bench.log" >> "$W/summary.txt" ;;
    *) say "unknown stage $stage" ;;
  esac
done
say "done"
cat "$W/summary.txt"
