/**
 * The yardstick of bench/edge-overhead.ts: the smallest Hono app that does the edge's job for
 * POST /generate/hermes/ (read the JSON body, forward it to the GPU node with fetch, answer its
 * text). No validation, auth, request ids, logging or database. Prints {"url": ...} once listening.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { z } from "zod";
import { parseEnv } from "../../gpu-node/contract/env.ts";

// Read once at start-up: nothing of this is on the per-request path being measured.
const env = parseEnv(
  z.object({
    FORWARD_TO: z.url().default("http://127.0.0.1:8001"),
    GPU_NODE_TOKEN: z.string().default(""),
  }),
  process.env,
);
const target = env.FORWARD_TO;
const token = env.GPU_NODE_TOKEN;
const app = new Hono();
app.post("/generate/hermes/", async (c) => {
  const body = await c.req.json<{ prompt: string; max_length?: number }>();
  const res = await fetch(`${target}/v1/hermes/generate`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ prompt: body.prompt, max_tokens: body.max_length ?? 256 }),
  });
  const out = (await res.json()) as { text: string };
  return c.json({ generated_text: out.text }, res.ok ? 200 : 502);
});
const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${info.port}` })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
