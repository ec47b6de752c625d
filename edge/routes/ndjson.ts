/**
 * A streamed NDJSON answer from an async iterator of rows (the record's exports and the
 * datasets). The first row is read before answering, so an unreachable database is a 503
 * envelope rather than a 200 that breaks off; after that the stream is pull-based (the next batch
 * is read only when the client has taken the last one) and a client that goes away stops it.
 */
import type { Context } from "hono";
import type { AppEnv } from "../deps.ts";
import { ApiError, describeError } from "../errors.ts";

export async function ndjsonResponse(
  c: Context<AppEnv>,
  lines: AsyncGenerator<unknown, unknown, undefined>,
  options: { filename: string; what: string },
): Promise<Response> {
  const { logger, requestId } = c.var.ctx;
  let pending: IteratorResult<unknown> | undefined;
  try {
    pending = await lines.next();
  } catch (err) {
    throw new ApiError("database_unavailable", "Could not read the record.", {}, { cause: err });
  }
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = pending ?? (await lines.next());
        pending = undefined;
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`));
      } catch (err) {
        logger.error(
          { err: describeError(err), request_id: requestId },
          `${options.what} failed mid-stream`,
        );
        controller.error(err);
      }
    },
    async cancel() {
      await lines.return(undefined);
    },
  });
  c.header("content-type", "application/x-ndjson; charset=utf-8");
  c.header("content-disposition", `attachment; filename="${options.filename}"`);
  return c.body(stream, 200);
}
