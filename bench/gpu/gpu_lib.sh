# Sourced by the run_*.sh device scripts. FASTGEN_LIB from what the call carried in .gpu-lib/,
# the stripped sm_90a build, plain or xz-compressed (when it and .gpu/ pass the 64 MiB a call carries).
if [ -f .gpu-lib/libfastgen.so.xz ]; then
  mkdir -p /tmp/gl && xz -dc .gpu-lib/libfastgen.so.xz > /tmp/gl/libfastgen.so && export FASTGEN_LIB=/tmp/gl/libfastgen.so
elif [ -f .gpu-lib/libfastgen.so ]; then
  export FASTGEN_LIB=$PWD/.gpu-lib/libfastgen.so
fi

# test/gpu, each file in its own process (a device fault in one cannot take the others down),
# passes and skips left out, into the log file $1.
run_gpu_tests() {
  for f in test/gpu/*.test.ts; do
    echo "=== $f"
    timeout 240 bash .gpu/enter bun test --timeout 120000 "$f" 2>&1 | grep -v "^(pass)\|^(skip)"
  done > "$1" 2>&1
}
