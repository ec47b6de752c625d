/**
 * The stand-in GPU node (instant, deterministic answers) as its own process, so that the load
 * generator, the edge and the GPU side do not share one event loop. Prints {"url": ...} once
 * listening; stops on SIGTERM/SIGINT.
 */
import { startStandInGpuNode } from "../../test/support/stand-in-gpu-node.ts";

const node = await startStandInGpuNode({
  token: process.env.GPU_NODE_TOKEN || undefined,
  // Paces streamed pieces like a model would (bench/streaming.ts); 0 = as fast as possible.
  streamDelayMs: Number(process.env.STAND_IN_STREAM_DELAY_MS ?? 0),
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
