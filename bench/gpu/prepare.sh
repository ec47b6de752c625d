#!/usr/bin/env bash
# Fills .gpu-carry/ (ignored by git; name it in the device tool's `carry`) with what run.sh needs:
# node-llama-cpp's llama.cpp bundle, the same tree as a tarball (for a machine without git), its
# commit, and node-llama-cpp's patches. Run from the repository root.
set -euo pipefail
LLAMA=node_modules/node-llama-cpp/llama
DEST=${1:-.gpu-carry}
mkdir -p "$DEST"
cp "$LLAMA/gitRelease.bundle" "$DEST/"
cp "$LLAMA"/patches/*.diff "$DEST/" 2>/dev/null || true
TMP=$(mktemp -d)
git clone -q "$LLAMA/gitRelease.bundle" "$TMP/src" 2>/dev/null
git -C "$TMP/src" rev-parse HEAD >"$DEST/llama-src.commit"
git -C "$TMP/src" archive --format=tar.gz -o "$(pwd)/$DEST/llama-src.tar.gz" HEAD \
  CMakeLists.txt cmake common ggml gguf-py include src tools vendor licenses LICENSE
rm -rf "$TMP"
du -sh "$DEST"/*
