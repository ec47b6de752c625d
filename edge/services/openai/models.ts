/**
 * GET /v1/models: both models, always, each with the GPU node's state for it. Listing only the
 * ready ones would make a model that is still loading look unknown (clients cache the list);
 * with the state a client can tell "loading, retry" from "no such model". An unreachable node
 * is not an error here: the models are still ours, with state "unreachable".
 */
import type { GpuNodeHealth } from "../../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../../deps.ts";
import { MODEL_IDS, type ModelId, type ModelList } from "./wire.ts";

/** Who publishes the weights we serve by default, and when they were published (unix seconds). */
const CATALOG: Record<ModelId, { owned_by: string; created: number }> = {
  // NousResearch/Hermes-3-Llama-3.1-8B(-GGUF), published 2024-08-15.
  hermes: { owned_by: "NousResearch", created: Date.UTC(2024, 7, 15) / 1000 },
  // microsoft/Phi-3-mini-4k-instruct(-onnx), published 2024-04-23.
  phi3: { owned_by: "microsoft", created: Date.UTC(2024, 3, 23) / 1000 },
};

export async function listModels({ ctx }: { ctx: ServiceContext }): Promise<ModelList> {
  let health: GpuNodeHealth | undefined;
  try {
    health = await ctx.gpu.health({
      signal: ctx.signal,
      requestId: ctx.requestId,
      timeoutMs: ctx.settings.HEALTH_TIMEOUT_MS,
    });
  } catch (err) {
    ctx.logger.warn({ request_id: ctx.requestId, err }, "GPU node health failed (/v1/models)");
  }
  return {
    object: "list",
    data: MODEL_IDS.map((id) => {
      const model = health?.models[id];
      return {
        id,
        object: "model",
        ...CATALOG[id],
        context_length: model?.context_length ?? null,
        state: model?.state ?? "unreachable",
        ready: model?.state === "ready",
      };
    }),
  };
}
