// Container health check (Dockerfile HEALTHCHECK / compose healthcheck), in plain Node so the slim
// images need no curl: `node docker/healthcheck.mjs URL [ACCEPTED_STATUSES]`.
// Sends GPU_NODE_TOKEN as a Bearer token when set (the GPU node's /v1/health requires it).
// Exit 0 when the answer's status is accepted (default 200), 1 otherwise.
const [url, accepted = "200"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node docker/healthcheck.mjs URL [STATUS,STATUS...]");
  process.exit(2);
}
const statuses = new Set(accepted.split(",").map(Number));
const token = process.env.GPU_NODE_TOKEN?.trim();
try {
  const response = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(8_000),
  });
  await response.body?.cancel();
  if (!statuses.has(response.status)) {
    console.error(`${url}: HTTP ${response.status}`);
    process.exit(1);
  }
} catch (error) {
  console.error(`${url}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
