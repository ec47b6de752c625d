# syntax=docker/dockerfile:1
#
# The GPU node (Hermes on node-llama-cpp, Phi-3 on onnxruntime-node) on NVIDIA's CUDA runtime.
# Build from the repository root:  docker build -f docker/gpu-node.Dockerfile -t llm-sidecar-gpu-node .
#
# Two CUDA major versions in one image, because the two runtimes were built against different ones:
# - node-llama-cpp's prebuilt CUDA backend (@node-llama-cpp/linux-x64-cuda[-ext]) links
#   libcudart.so.13 and libcublas.so.13: the base image, NVIDIA's CUDA 13.0 runtime, provides them.
# - onnxruntime-node's CUDA execution provider is built for CUDA 12 + cuDNN 9: we add the CUDA 12.9
#   runtime libraries it loads (cudart, cuBLAS/cuBLASLt, cuFFT, cuRAND) and cuDNN 9 for CUDA 12,
#   from NVIDIA's apt repository (already configured and trusted in the base image).
# The sonames differ (.so.12 vs .so.13), so both sets live side by side; LD_LIBRARY_PATH lists both
# folders. One host driver serves both: it must support CUDA 13, i.e. NVIDIA driver >= 580
# (drivers are backward compatible with older CUDA runtimes). No model weights are baked in: they
# live on the `models` volume at /models (`npm run models:pull`, see docker/compose.yaml).

ARG NODE_VERSION=20
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04

# --- Node.js, taken from the official image (the CUDA base has none) --------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS node

# --- Production dependencies, with onnxruntime-node's CUDA 12 provider -------------------------------
FROM node AS deps
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# Install scripts stay off (--ignore-scripts, the project's .npmrc and allowScripts; the ENV above
# would skip onnxruntime-node's download anyway); the CUDA 12 provider is then fetched explicitly
# (ONNXRUNTIME_NODE_INSTALL=cuda12 for that one command), so a failed download fails
# the build instead of leaving a CPU-only image. Binaries for other platforms and backends (about
# 300 MB this image never loads) are removed.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js \
  && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
  && rm -rf node_modules/@node-llama-cpp/linux-arm64 node_modules/@node-llama-cpp/linux-armv7l \
    node_modules/@node-llama-cpp/linux-x64-vulkan \
    node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
    node_modules/onnxruntime-node/bin/napi-v6/linux/arm64 \
  && npm cache clean --force

# --- Runtime ------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS runtime
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
    ca-certificates \
    cuda-cudart-12-9 \
    libcublas-12-9 \
    libcufft-12-9 \
    libcurand-12-9 \
    libcudnn9-cuda-12 \
  && rm -rf /var/lib/apt/lists/*
ENV LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/cuda-12.9/targets/x86_64-linux/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
# The host driver must be new enough for the CUDA 13 libraries (the NVIDIA Container Toolkit checks).
ENV NVIDIA_REQUIRE_CUDA="cuda>=13.0"
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && node --version && npm --version

# A dedicated unprivileged user; /models belongs to it so a fresh named volume does too.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin app \
  && mkdir -p /models \
  && chown app:app /models

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY gpu-node ./gpu-node
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs

ENV NODE_ENV=production \
  MODELS_DIR=/models \
  GPU_NODE_HOST=0.0.0.0 \
  GPU_NODE_PORT=8001
USER app
VOLUME ["/models"]
EXPOSE 8001
# /v1/health answers as soon as the node listens (models load in the background and show there).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs", "http://127.0.0.1:8001/v1/health"]
CMD ["node", "--import", "tsx", "gpu-node/main.ts"]
