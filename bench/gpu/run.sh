#!/usr/bin/env bash
# Decode throughput of the llama.cpp engine that node-llama-cpp binds, on a CUDA GPU, against the
# memory-bandwidth limit. One command, no network, no Node (see BENCHMARKS.md, "Model throughput").
#
#   npm run bench:gpu-prepare   # not a script: see below; on the dev machine, fills .gpu-carry/
#   OUT=/some/dir bash bench/gpu/run.sh
#
# Inputs (GPU_CARRY, default .gpu-carry/): gitRelease.bundle (node-llama-cpp's llama/gitRelease.bundle,
# the exact llama.cpp source of our binding), llama-src.tar.gz (the same tree via `git archive`,
# used when git is missing), and node-llama-cpp's patches/*.diff (applied as node-llama-cpp does).
# bench/gpu/prepare.sh makes that folder. Steps: build ggml's CUDA backend + llama-bench for one
# arch (sm_90 by default), write a synthetic GGUF of the Llama-3.1-8B shape in the Q4_K_M mix
# (write_gguf.py, in parallel with the build), measure the device's copy bandwidth, run llama-bench
# (pp512, tg128), and report tokens/s and the fraction of the bandwidth limit (summarize.py).
#
# Settings (env): OUT (results folder), GPU_CARRY, GPU_WORK (scratch, default /tmp/llgpu),
# GPU_BUDGET_S (wall-clock budget for the whole script, default 520), CUDA_ARCH (default 90),
# GPU_SHAPE (llama3-8b | tiny), GPU_BUILD_DIR (reuse a build), GPU_CPU_ONLY=1 (local dry run).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/out}
CARRY=$(cd "${GPU_CARRY:-.gpu-carry}" 2>/dev/null && pwd || echo /nonexistent)
WORK=${GPU_WORK:-/tmp/llgpu}
BUDGET=${GPU_BUDGET_S:-520}
ARCH=${CUDA_ARCH:-90}
SHAPE=${GPU_SHAPE:-llama3-8b}
CPU_ONLY=${GPU_CPU_ONLY:-0}
JOBS=$(nproc)
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }
left() { echo $((BUDGET - SECONDS)); }

log "machine: $(uname -m), $JOBS cores, $(awk '/MemTotal/ {print int($2/1048576) " GiB"}' /proc/meminfo)"
if [ "$CPU_ONLY" != 1 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.memory \
    --format=csv | tee "$OUT/nvidia-smi.csv"
  nvcc --version | tail -2
fi
cmake --version | head -1

# 1. The source: node-llama-cpp's bundle, as node-llama-cpp itself clones it.
SRC=$WORK/src
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  if command -v git >/dev/null && [ -f "$CARRY/gitRelease.bundle" ]; then
    git clone -q "$CARRY/gitRelease.bundle" "$SRC" 2>/dev/null || { log "clone failed"; exit 2; }
    COMMIT=$(git -C "$SRC" rev-parse HEAD)
  elif [ -f "$CARRY/llama-src.tar.gz" ]; then
    mkdir -p "$SRC" && tar -xzf "$CARRY/llama-src.tar.gz" -C "$SRC"
    COMMIT=$(cat "$CARRY/llama-src.commit" 2>/dev/null || echo unknown)
  else
    log "no llama.cpp source in $CARRY (run bench/gpu/prepare.sh)"; exit 2
  fi
  for p in "$CARRY"/*.diff; do
    [ -f "$p" ] || continue
    if (cd "$SRC" && { git apply "$p" 2>/dev/null || patch -p1 -s <"$p"; }); then
      log "applied $(basename "$p")"
    else
      log "could not apply $(basename "$p")"
    fi
  done
fi
COMMIT=${COMMIT:-$(cat "$CARRY/llama-src.commit" 2>/dev/null || echo unknown)}
log "llama.cpp source at $SRC (commit $COMMIT)"

# 2. The synthetic model, written while the build runs (one core; the build takes the rest).
MODEL=$WORK/synthetic-$SHAPE-Q4_K_M.gguf
PYTHONPATH=$SRC/gguf-py python3 "$HERE/write_gguf.py" "$MODEL" --shape "$SHAPE" \
  --json "$OUT/model-facts.json" >"$WORK/write.log" 2>&1 &
WRITER=$!

# 3. The device's copy bandwidth (the ceiling measured, next to the datasheet's).
# Runs beside the build (GPU work; the build is CPU work); waited for before llama-bench.
COPY=""
if [ "$CPU_ONLY" != 1 ]; then
  python3 "$HERE/copy_bandwidth.py" >"$OUT/copy-bandwidth.json" 2>"$WORK/copy.err" &
  COPY=$!
fi

# 4. The build: ggml CUDA backend + llama-bench only, one arch.
BUILD=${GPU_BUILD_DIR:-$WORK/build}
if [ ! -x "$BUILD/bin/llama-bench" ]; then
  CMAKE_ARGS=(-S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CCACHE=OFF)
  if [ "$CPU_ONLY" != 1 ]; then
    CMAKE_ARGS+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCH" -DGGML_CUDA_NCCL=OFF)
  fi
  if ! cmake "${CMAKE_ARGS[@]}" >"$WORK/configure.log" 2>&1; then
    # The toolkit may lack cuBLAS; the Python image ships it as a wheel (nvidia-cublas).
    log "configure failed; looking for cuBLAS in Python's site-packages"
    LIB=$(find /usr /opt -name 'libcublas.so*' -not -name '*Lt*' 2>/dev/null | head -1)
    LT=$(find /usr /opt -name 'libcublasLt.so*' 2>/dev/null | head -1)
    INC=$(dirname "$(find /usr /opt -name cublas_v2.h 2>/dev/null | head -1)")
    log "cublas: $LIB / $LT / $INC"
    rm -rf "$BUILD"
    CMAKE_ARGS+=("-DCUDA_cublas_LIBRARY=$LIB" "-DCUDA_cublasLt_LIBRARY=$LT"
      "-DCMAKE_CUDA_FLAGS=-I$INC" "-DCMAKE_CXX_FLAGS=-I$INC"
      "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath,$(dirname "$LIB")"
      "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath,$(dirname "$LIB")")
    export LD_LIBRARY_PATH=$(dirname "$LIB")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    cmake "${CMAKE_ARGS[@]}" >"$WORK/configure.log" 2>&1 ||
      { tail -40 "$WORK/configure.log"; log "configure failed"; exit 3; }
  fi
  log "configured; building llama-bench with $JOBS jobs ($(left) s left)"
  if ! timeout $(($(left) - 90)) ninja -C "$BUILD" -j "$JOBS" llama-bench >"$WORK/build.log" 2>&1; then
    tail -60 "$WORK/build.log" | tee "$OUT/build-tail.log"
    log "build failed or ran out of time"; exit 4
  fi
fi
log "built $BUILD/bin/llama-bench"

wait $WRITER || { cat "$WORK/write.log"; log "GGUF writer failed"; exit 5; }
log "model written: $(stat -c %s "$MODEL") bytes"
if [ -n "$COPY" ]; then
  wait "$COPY" || { log "copy bandwidth failed"; cat "$WORK/copy.err"; }
  cat "$OUT/copy-bandwidth.json"
fi

# 5. The benchmark: prompt processing (pp512) and decode (tg128), flash attention off and on
# (node-llama-cpp's default is "auto", which picks on for CUDA).
NGL=99; [ "$CPU_ONLY" = 1 ] && NGL=0
REPS=${GPU_REPS:-5}
timeout $(($(left) - 10)) "$BUILD/bin/llama-bench" -m "$MODEL" -p 512 -n 128 -ngl "$NGL" \
  -fa 0,1 -r "$REPS" -o json >"$OUT/llama-bench.json" 2>"$WORK/bench.err" ||
  { tail -30 "$WORK/bench.err"; log "llama-bench failed"; exit 6; }
log "llama-bench done"

python3 "$HERE/summarize.py" --bench "$OUT/llama-bench.json" --model "$OUT/model-facts.json" \
  --copy "$OUT/copy-bandwidth.json" --smi "$OUT/nvidia-smi.csv" --commit "$COMMIT" \
  --arch "$ARCH" --out "$OUT/gpu-bench.json"
log "done in ${SECONDS}s"
