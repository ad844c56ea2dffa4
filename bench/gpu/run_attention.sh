#!/usr/bin/env bash
# One device call: the attention kernel against torch SDPA flash (prefill 2k-16k causal; decode
# batch 1-256 x context 512-8k, % of copy bandwidth), then decode b=1 of the 7B shape with the
# key-split count forced to 1, 2, 4 and chosen automatically.
#   device run: carry [".gpu", ".gpu-lib"], command "bash bench/gpu/run_attention.sh"
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu/gpu_lib.sh
python3 bench/gpu/ceilings.py "$OUT/ceil.json" > "$OUT/ceil.log" 2>&1
python3 bench/gpu/sdpa_attention.py "$OUT/sdpa.json" > "$OUT/sdpa.log" 2>&1
rm -f /tmp/attn_ms.txt
FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 200 bash .gpu/enter bun bench/gpu/attention.ts "$OUT/ceil.json" "$OUT/sdpa.json" "$OUT" > "$OUT/attention.log" 2>&1
echo "attention.ts exit $?"; tail -40 "$OUT/attention.log"
for s in auto 1 2 4; do
  if [ $s = auto ]; then env -u FASTGEN_ATTN_SPLITS timeout 60 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceil.json" "$OUT" --quick 2>&1 | grep "decode b=1" | sed "s/^/splits $s: /"
  else FASTGEN_ATTN_SPLITS=$s timeout 60 bash .gpu/enter bun bench/gpu/llama7b.ts "$OUT/ceil.json" "$OUT" --quick 2>&1 | grep "decode b=1" | sed "s/^/splits $s: /"; fi
done
