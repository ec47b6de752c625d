/** Free text from Hermes through the GPU node. Nothing is recorded (the seed logged only Phi-3). */
import type { ServiceContext } from "../deps.ts";

export async function generateHermesText({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: { prompt: string; maxLength: number };
}): Promise<string> {
  const res = await ctx.gpu.hermesGenerate(
    { prompt: input.prompt, max_tokens: input.maxLength },
    { signal: ctx.clientSignal, deadline: ctx.deadline, requestId: ctx.requestId },
  );
  return res.text;
}
