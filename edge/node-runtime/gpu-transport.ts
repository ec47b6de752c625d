/**
 * The Node edge's transport to the GPU node: node:http(s) with a keep-alive agent instead of the
 * global fetch (undici's Request/Response/web-stream machinery was the largest single share of
 * the edge's CPU per proxied request; BENCHMARKS.md section 1). Node only: injected by the Node
 * entry (server.ts) and the in-process test harness; Workers keep fetch.
 */
import http from "node:http";
import https from "node:https";
import type { GpuTransport, TransportResponse } from "../gpu-client.ts";

export interface NodeTransport {
  transport: GpuTransport;
  /** Closes idle keep-alive sockets (at shutdown). */
  close(): void;
}

export function createNodeGpuTransport(options: { maxSockets?: number } = {}): NodeTransport {
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 256,
    scheduling: "lifo" as const,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  const transport: GpuTransport = ({ method, url, headers, body, signal }) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const target = new URL(url);
      const secure = target.protocol === "https:";
      const outHeaders: Record<string, string | number> = { ...headers };
      let payload: Buffer | undefined;
      if (body !== undefined) {
        payload = Buffer.from(body);
        outHeaders["content-length"] = payload.length;
      }
      const req = (secure ? https : http).request(
        target,
        { method, headers: outHeaders, agent: secure ? httpsAgent : httpAgent, signal },
        (res) => {
          const chunks: Buffer[] = [];
          const done = new Promise<Buffer>((ok, fail) => {
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.once("end", () =>
              ok(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)),
            );
            res.once("error", fail);
            res.once("aborted", () => fail(new Error("GPU node response aborted")));
          });
          // A rejection nobody awaited yet must not crash the process; json() rethrows it.
          done.catch(() => {});
          resolve({
            status: res.statusCode ?? 0,
            header: (name) => {
              const v = res.headers[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
            },
            json: async () => JSON.parse((await done).toString("utf8")) as unknown,
          });
        },
      );
      req.once("error", reject);
      req.end(payload);
    });

  return {
    transport,
    close: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
