/**
 * The GPU node's streaming wire format (zod only, Workers-safe).
 *
 * A streaming route (GPU_ROUTES.*Stream) takes the same body as its non-streaming twin. Errors
 * found before generation starts (validation, queue full, model not loaded, budget too small)
 * are ordinary JSON error responses with their status. Once generation starts the answer is 200,
 * `application/x-ndjson`, one StreamEvent per line:
 *   {"type":"text","text":"..."}   zero or more: each piece of text as it is produced
 *   {"type":"done","response":{...}}  exactly one on success: the very object the non-streaming
 *                                   route would have answered (text / proposal / json, usage, timings)
 *   {"type":"error","error":"...","code":"...","request_id":"..."}  instead of done, on failure
 * The concatenated `text` pieces equal the final response's text (Hermes) or raw (Phi-3, JSON).
 * A client that closes the connection stops its sequence within one decode step.
 */
import { z } from "zod";
import { ErrorCode } from "./errors.ts";

export const STREAM_CONTENT_TYPE = "application/x-ndjson";

export const StreamTextEvent = z.object({ type: z.literal("text"), text: z.string() });
export type StreamTextEvent = z.infer<typeof StreamTextEvent>;

export const StreamDoneEvent = z.object({
  type: z.literal("done"),
  /** HermesGenerateResponse, Phi3GenerateResponse or JsonGenerateResponse, by route. */
  response: z.record(z.string(), z.unknown()),
});
export type StreamDoneEvent = z.infer<typeof StreamDoneEvent>;

export const StreamErrorEvent = z
  .object({ type: z.literal("error"), error: z.string(), code: ErrorCode, request_id: z.string() })
  .catchall(z.unknown());
export type StreamErrorEvent = z.infer<typeof StreamErrorEvent>;

export const StreamEvent = z.discriminatedUnion("type", [
  StreamTextEvent,
  StreamDoneEvent,
  StreamErrorEvent,
]);
export type StreamEvent = z.infer<typeof StreamEvent>;
