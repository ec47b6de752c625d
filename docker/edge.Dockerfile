# syntax=docker/dockerfile:1
#
# The edge (public API, port 8000) on Node, slim. The VRAM watchdog runs from this image too, with
# another command: node --import tsx gpu-node/watchdog/main.ts (see docker/compose.yaml).
# Build from the repository root:  docker build -f docker/edge.Dockerfile -t llm-sidecar-edge .

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
# No dependency's install script runs (.npmrc ignore-scripts, package.json allowScripts, and
# --ignore-scripts below); should one run, onnxruntime-node's must not download anything.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# The model runtimes (node-llama-cpp, onnxruntime-node: about 1 GB with their binaries) belong to
# the GPU node; neither the edge nor the watchdog imports them (test/docker/image-deps.test.ts
# checks), so they are removed here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf node_modules/node-llama-cpp node_modules/@node-llama-cpp node_modules/onnxruntime-node \
  && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY edge ./edge
COPY db ./db
# The shared contract, and the watchdog.
COPY gpu-node ./gpu-node
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
# DATA_DIR (JSONL mirror; PGlite when DATABASE_URL is unset) belongs to the unprivileged user.
RUN mkdir -p /data && chown node:node /data

ENV NODE_ENV=production \
  HOST=0.0.0.0 \
  PORT=8000 \
  DATA_DIR=/data
USER node
VOLUME ["/data"]
EXPOSE 8000
# Healthy means serving: /health is 200 only when the database and both models are ready (503 while
# the GPU node loads, or when it or the database is down).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs", "http://127.0.0.1:8000/health"]
CMD ["node", "--import", "tsx", "edge/node.ts"]
