#!/usr/bin/env bash
# Builds llama.cpp's own llama-server from the exact source node-llama-cpp binds
# (node_modules/node-llama-cpp/llama/gitRelease.bundle + its patches), for bench/hermes.ts.
# Usage: bash bench/lib/build-llama-server.sh [CACHE_DIR]   (default .cache/llama-server)
# Slow (15-30 min on 2 busy cores): it runs niced, one compile job at a time.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${1:-$root/.cache/llama-server}"
llama="$root/node_modules/node-llama-cpp/llama"
src="$cache/src"
bin="$src/build/bin/llama-server"
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
commit="$(git bundle list-heads "$llama/gitRelease.bundle" | awk '$2=="HEAD"{print $1}')"
if [[ ! -d "$src/.git" ]]; then
  rm -rf "$src"
  git clone --quiet "$llama/gitRelease.bundle" "$src"
  git -C "$src" checkout --quiet "$commit"
  for patch in "$llama"/patches/*.diff; do git -C "$src" apply "$patch"; done
fi
nice -n 19 cmake -S "$src" -B "$src/build" -G Ninja -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$cache/cmake.log" 2>&1
nice -n 19 cmake --build "$src/build" --target llama-server -j1 >"$cache/build.log" 2>&1
echo "$bin"
