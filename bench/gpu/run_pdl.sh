#!/usr/bin/env bash
# One device call (one GPU) for the decode chain's launch knobs (issue #24 item 5): decode at batch
# 1, 2, 4, 8 on the Llama-2-7B shape under {FASTGEN_PDL 0, 1} x {FASTGEN_NORM_FOLD 0, 8}, then
# both on with FASTGEN_PREFETCH_O 16 and 32 (MiB of o's weights into L2 during RoPE + attention);
# SETTINGS overrides the list ("pdl,fold,prefetch ..."). One process per setting (knobs are read
# once a process), ROUNDS rounds (default 3) with the settings alternating, then one table
# (bench/gpu/pdlFold.ts --report): median ms per step and % of
# the weights + K/V roofline over the copy bandwidth ceilings.py measures first (CEILINGS: reuse a
# ceilings.json). Everything lands in /tmp/pdl, packed into $OUT/pdl.tgz; the table is printed last.
#   device run: carry [".gpu", ".gpu-lib"] (.gpu-lib: the sm_90a build, see run_device.sh),
#   command "bash bench/gpu/run_pdl.sh" (or the `pdl` stage of bench/device/run-wave.sh)
set -uo pipefail
cd "$(dirname "$0")/../.."
FINAL=${OUT:-/tmp/out}
D=/tmp/pdl; mkdir -p "$D" "$FINAL"
trap 'tar -C /tmp -czf "$FINAL/pdl.tgz" pdl' EXIT
export PYTHONUNBUFFERED=1
source bench/gpu/gpu_lib.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$D/env.txt" 2>&1
CEIL=${CEILINGS:-$D/ceilings.json}
[ -f "$CEIL" ] || timeout 120 python3 bench/gpu/ceilings.py "$CEIL" > "$D/ceilings.log" 2>&1 || echo "ceilings failed"
for r in $(seq 1 "${ROUNDS:-3}"); do
  for setting in ${SETTINGS:-0,0,0 1,0,0 0,8,0 1,8,0 1,8,16 1,8,32}; do
    IFS=, read -r pdl fold prefetch <<< "$setting"
    FASTGEN_PDL=$pdl FASTGEN_NORM_FOLD=$fold FASTGEN_PREFETCH_O=$prefetch ROUND=$r timeout 120 bash .gpu/enter bun bench/gpu/pdlFold.ts "$CEIL" "$D" >> "$D/runs.log" 2>&1 \
      || echo "setting pdl,fold,prefetch = $setting round $r failed (see runs.log)"
  done
done
bash .gpu/enter bun bench/gpu/pdlFold.ts --report "$D" > "$D/pdl.md" 2>&1
cat "$D/pdl.md"
