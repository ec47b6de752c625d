/**
 * A local stand-in for the Hugging Face hub: `/api/models/{repo}/tree/{rev}/{dir}` listings with
 * sha256 (`lfs.oid`) and git blob ids, and `/{repo}/resolve/{rev}/{path}` with Range support.
 * Tests script misbehaviour (dropped or stalled connections, wrong bytes) per request.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface HubRequest {
  method: string;
  path: string;
  range?: { start: number; end: number };
  authorization?: string;
}

export type Misbehaviour = "drop" | "stall" | undefined;

export interface FakeHub {
  endpoint: string;
  requests: HubRequest[];
  /** Decides, per resolve request, whether to drop or stall it midway. */
  misbehave: (req: HubRequest) => Misbehaviour;
  /** Files served with other bytes than listed (listing keeps the original checksums). */
  tampered: Set<string>;
  close(): Promise<void>;
}

/** Files larger than this are listed as LFS files (sha256), as on the hub. */
const LFS_THRESHOLD = 1024;

export async function startFakeHub(
  repos: Record<string, Record<string, Buffer>>,
): Promise<FakeHub> {
  const sockets = new Set<Socket>();
  const hub: FakeHub = {
    endpoint: "",
    requests: [],
    misbehave: () => undefined,
    tampered: new Set(),
    close: async () => {},
  };

  const listing = (repo: string, dir: string) =>
    Object.entries(repos[repo] ?? {})
      .filter(([path]) => (dir === "" ? !path.includes("/") : path.startsWith(`${dir}/`)))
      .filter(([path]) => !path.slice(dir ? dir.length + 1 : 0).includes("/"))
      .map(([path, data]) => ({
        type: "file",
        path,
        size: data.length,
        oid: createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex"),
        ...(data.length > LFS_THRESHOLD
          ? {
              lfs: {
                oid: createHash("sha256").update(data).digest("hex"),
                size: data.length,
                pointerSize: 134,
              },
            }
          : {}),
      }));

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://hub");
    const path = decodeURIComponent(url.pathname);
    const rangeHeader = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const record: HubRequest = {
      method: req.method ?? "GET",
      path,
      authorization: req.headers.authorization,
    };
    hub.requests.push(record);

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)\/?(.*)$/.exec(path);
    if (api) {
      const [, repo = "", , dir = ""] = api;
      if (!repos[repo]) return void res.writeHead(404).end('{"error":"Repository not found"}');
      res.writeHead(200, { "Content-Type": "application/json" });
      return void res.end(JSON.stringify(listing(repo, dir)));
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const original = resolve ? repos[resolve[1] ?? ""]?.[resolve[3] ?? ""] : undefined;
    if (!resolve || !original) return void res.writeHead(404).end("Entry not found");
    let data = original;
    if (hub.tampered.has(resolve[3] ?? "")) {
      data = Buffer.from(original);
      data[data.length >> 1] = (data[data.length >> 1] ?? 0) ^ 0xff;
    }

    let start = 0;
    let end = data.length - 1;
    if (rangeHeader) {
      start = Number(rangeHeader[1]);
      if (rangeHeader[2]) end = Math.min(Number(rangeHeader[2]), end);
      record.range = { start, end };
    }
    const body = data.subarray(start, end + 1);
    const headers: Record<string, string | number> = {
      "Accept-Ranges": "bytes",
      "Content-Length": body.length,
      "Content-Type": "application/octet-stream",
      ETag: `"${createHash("sha256").update(original).digest("hex")}"`,
    };
    if (rangeHeader) headers["Content-Range"] = `bytes ${start}-${end}/${data.length}`;
    res.writeHead(rangeHeader ? 206 : 200, headers);
    if (req.method === "HEAD") return void res.end();
    const misbehaviour = hub.misbehave(record);
    if (misbehaviour) {
      // Half the body, then the connection dies or hangs.
      res.write(body.subarray(0, body.length >> 1), () => {
        if (misbehaviour === "drop") setTimeout(() => req.socket.destroy(), 20);
      });
      return;
    }
    res.end(body);
  };

  const server = createServer(handle);
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  hub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return hub;
}
