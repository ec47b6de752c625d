/**
 * The stand-in GPU node (instant, deterministic answers) as its own process, so that the load
 * generator, the edge and the GPU side do not share one event loop. Prints {"url": ...} once
 * listening; stops on SIGTERM/SIGINT.
 */
import { z } from "zod";
import { parseEnv } from "../../gpu-node/contract/env.ts";
import { startStandInGpuNode } from "../../test/support/stand-in-gpu-node.ts";

const env = parseEnv(
  z.object({
    GPU_NODE_TOKEN: z.string().optional(),
    // Paces streamed pieces like a model would (bench/streaming.ts); 0 = as fast as possible.
    STAND_IN_STREAM_DELAY_MS: z.coerce.number().int().min(0).default(0),
  }),
  process.env,
);
const node = await startStandInGpuNode({
  token: env.GPU_NODE_TOKEN,
  streamDelayMs: env.STAND_IN_STREAM_DELAY_MS,
});
// Keep the record of calls from growing without bound under load.
setInterval(() => {
  node.calls.length = 0;
}, 1000).unref();
process.stdout.write(`${JSON.stringify({ url: node.url })}\n`);
const stop = async () => {
  await node.close();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
