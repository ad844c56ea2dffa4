#!/usr/bin/env bash
# ../shared/gpu/pack, then node_modules.tar.xz again without the packages no device test or bench
# imports (the OpenAI / AI SDK / LangChain clients and TypeScript, test/api's dev dependencies):
# .gpu is ~41 MB instead of ~57, so .gpu + .gpu-lib + the tree stay under the 64 MiB a call carries
# (move bench/results out of the tree for the call if they still do not; see README.md here).
#   bash bench/device/pack-gpu.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash ../shared/gpu/pack > /dev/null
excludes=(bun @oven @ryoppippi .cache @langchain langsmith openai ai @ai-sdk js-tiktoken @typescript typescript bun-types)
args=()
for p in "${excludes[@]}"; do args+=(--exclude="node_modules/$p"); done
tar -cJf .gpu/node_modules.tar.xz "${args[@]}" node_modules
du -sh .gpu
