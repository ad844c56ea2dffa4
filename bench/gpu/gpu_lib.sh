# Sourced by the run_*.sh device scripts: FASTGEN_LIB from what the call carried in .gpu-lib/,
# the stripped sm_90a build, plain or xz-compressed (when it and .gpu/ pass the 64 MiB a call carries).
if [ -f .gpu-lib/libfastgen.so.xz ]; then
  mkdir -p /tmp/gl && xz -dc .gpu-lib/libfastgen.so.xz > /tmp/gl/libfastgen.so && export FASTGEN_LIB=/tmp/gl/libfastgen.so
elif [ -f .gpu-lib/libfastgen.so ]; then
  export FASTGEN_LIB=$PWD/.gpu-lib/libfastgen.so
fi
