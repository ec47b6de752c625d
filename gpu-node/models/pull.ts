/**
 * Downloads the real models from a Hugging Face hub (or a mirror in its URL layout) into
 * MODELS_DIR, resumably, and verifies every file against the hub's own checksums.
 *
 * Listing: `GET {endpoint}/api/models/{repo}/tree/{rev}/{dir}` gives each file's size, its git
 * blob id and, for LFS files, `lfs.oid` = the sha256 of the content.
 * Files: `GET {endpoint}/{repo}/resolve/{rev}/{path}`, fetched by node-llama-cpp's downloader
 * (ipull): parallel ranged connections, retries, and a `.ipull` progress file next to the
 * destination so an interrupted run resumes where its finished chunks end.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { createModelDownloader } from "node-llama-cpp";
import type { Logger } from "pino";
import {
  HERMES_REPO,
  HERMES_REVISION,
  HERMES_SUBDIR,
  hermesFileName,
  PHI3_REPO,
  PHI3_REVISION,
  phi3DirFor,
} from "./catalog.ts";

/** One file as the hub lists it. */
export interface HubFile {
  /** Path inside the repository. */
  path: string;
  size: number;
  /** Git blob id (sha1 of "blob {size}\0{content}"). */
  gitOid: string;
  /** sha256 of the content, for LFS files. */
  sha256?: string;
}

export interface HubOptions {
  /** e.g. https://huggingface.co (HF_ENDPOINT). */
  endpoint: string;
  /** HF_TOKEN, sent as a Bearer token when set. */
  token?: string;
  fetch?: typeof fetch;
}

export class ChecksumError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = "ChecksumError";
  }
}

function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

export function resolveUrl(hub: HubOptions, repo: string, revision: string, path: string): string {
  return `${hub.endpoint.replace(/\/+$/, "")}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
}

interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid: string;
  lfs?: { oid: string; size: number };
}

/** Lists the files directly inside `dir` of a repository (follows the API's `Link` pages). */
export async function listHubFiles(
  hub: HubOptions,
  repo: string,
  revision: string,
  dir: string,
  signal?: AbortSignal,
): Promise<HubFile[]> {
  const doFetch = hub.fetch ?? fetch;
  const base = hub.endpoint.replace(/\/+$/, "");
  let url: string | undefined =
    `${base}/api/models/${repo}/tree/${encodeURIComponent(revision)}${dir ? `/${encodePath(dir)}` : ""}`;
  const files: HubFile[] = [];
  while (url) {
    const res = await doFetch(url, { headers: authHeaders(hub.token), signal });
    if (!res.ok) {
      const hint =
        res.status === 401 || res.status === 403
          ? " (set HF_TOKEN if the repository needs a login)"
          : res.status === 404
            ? " (check the repository, revision and folder names)"
            : "";
      throw new Error(`listing ${repo}/${dir} at ${base} failed: HTTP ${res.status}${hint}`);
    }
    const entries = (await res.json()) as TreeEntry[];
    for (const e of entries) {
      if (e.type !== "file") continue;
      files.push({ path: e.path, size: e.lfs?.size ?? e.size, gitOid: e.oid, sha256: e.lfs?.oid });
    }
    const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get("link") ?? "");
    url = next?.[1];
  }
  return files;
}

/** Hashes a file as the hub identifies it: sha256 for LFS files, the git blob id otherwise. */
export async function verifyFile(
  localPath: string,
  file: HubFile,
  onProgress?: (hashedBytes: number) => void,
): Promise<void> {
  const size = (await stat(localPath)).size;
  if (size !== file.size) {
    throw new ChecksumError(
      localPath,
      `size mismatch for ${file.path}: expected ${file.size} bytes, got ${size}`,
    );
  }
  const hash = file.sha256 ? createHash("sha256") : createHash("sha1");
  if (!file.sha256) hash.update(`blob ${size}\0`);
  let hashed = 0;
  for await (const chunk of createReadStream(localPath, { highWaterMark: 1 << 22 })) {
    hash.update(chunk as Buffer);
    hashed += (chunk as Buffer).length;
    onProgress?.(hashed);
  }
  const actual = hash.digest("hex");
  const expected = file.sha256 ?? file.gitOid;
  if (actual !== expected) {
    throw new ChecksumError(
      localPath,
      `checksum mismatch for ${file.path}: expected ${file.sha256 ? "sha256" : "git blob sha1"} ${expected}, got ${actual}`,
    );
  }
}

export interface DownloadRequest {
  url: string;
  dest: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
  onProgress?: (downloaded: number, total: number) => void;
}
/** Fetches one URL into `dest`, resuming a previous partial download of it. */
export type Downloader = (req: DownloadRequest) => Promise<void>;

/** node-llama-cpp's downloader (ipull); keeps its `.ipull` progress file on cancel to resume. */
export const nodeLlamaCppDownloader: Downloader = async (req) => {
  const downloader = await createModelDownloader({
    modelUri: req.url,
    dirPath: dirname(req.dest),
    fileName: basename(req.dest),
    headers: req.headers,
    skipExisting: true,
    deleteTempFileOnCancel: false,
    onProgress: (s) => req.onProgress?.(s.downloadedSize, s.totalSize),
  });
  await downloader.download({ signal: req.signal });
  // ipull's download resolves (instead of rejecting) when cancelled midway.
  req.signal?.throwIfAborted();
};

export interface PullItem {
  label: string;
  repo: string;
  revision: string;
  file: HubFile;
  /** Absolute destination. */
  dest: string;
}

export interface PullOptions {
  modelsDir: string;
  hub: HubOptions;
  /** What to fetch; both by default. */
  hermes?: { quant: string } | false;
  phi3?: { variant: string } | false;
  logger: Logger;
  signal?: AbortSignal;
  downloader?: Downloader;
  /** Per-file progress for a CLI to draw. */
  onProgress?: (event: {
    item: PullItem;
    phase: "download" | "verify";
    done: number;
    total: number;
  }) => void;
}

/** Works out which files to fetch and where they go, from the hub's listings. */
export async function planPull(opts: PullOptions): Promise<PullItem[]> {
  const items: PullItem[] = [];
  if (opts.hermes) {
    const quant = opts.hermes.quant;
    const files = await listHubFiles(opts.hub, HERMES_REPO, HERMES_REVISION, "", opts.signal);
    const ggufs = files.filter((f) => f.path.endsWith(".gguf"));
    const wanted =
      ggufs.find((f) => f.path === hermesFileName(quant)) ??
      (() => {
        const matches = ggufs.filter((f) => f.path.toUpperCase().includes(`.${quant}.`));
        return matches.length === 1 ? matches[0] : undefined;
      })();
    if (!wanted) {
      const available = ggufs
        .map((f) => /\.([A-Za-z0-9_]+)\.gguf$/.exec(f.path)?.[1])
        .filter(Boolean);
      throw new Error(
        `no ${quant} GGUF in ${HERMES_REPO}; available quantizations: ${available.join(", ") || "none"} (set HERMES_QUANT)`,
      );
    }
    items.push({
      label: `Hermes-3 ${quant}`,
      repo: HERMES_REPO,
      revision: HERMES_REVISION,
      file: wanted,
      dest: join(opts.modelsDir, HERMES_SUBDIR, posix.basename(wanted.path)),
    });
  }
  if (opts.phi3) {
    const variant = opts.phi3.variant;
    const files = await listHubFiles(opts.hub, PHI3_REPO, PHI3_REVISION, variant, opts.signal);
    if (files.length === 0)
      throw new Error(`${PHI3_REPO} has no files in ${variant} (set PHI3_VARIANT)`);
    const destDir = join(opts.modelsDir, phi3DirFor(variant));
    for (const file of files) {
      items.push({
        label: `Phi-3 ${posix.basename(variant)}`,
        repo: PHI3_REPO,
        revision: PHI3_REVISION,
        file,
        dest: join(destDir, posix.relative(variant, file.path)),
      });
    }
  }
  return items;
}

export interface PulledFile {
  dest: string;
  bytes: number;
  status: "downloaded" | "present";
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Fetches every planned file that is not already present and intact. A file whose checksum does
 * not match is deleted (never left looking complete) and the pull fails with the reason.
 */
export async function pullModels(opts: PullOptions): Promise<PulledFile[]> {
  const log = opts.logger;
  const download = opts.downloader ?? nodeLlamaCppDownloader;
  const items = await planPull(opts);
  const total = items.reduce((n, i) => n + i.file.size, 0);
  log.info(
    { files: items.length, bytes: total, endpoint: opts.hub.endpoint, dir: opts.modelsDir },
    "models to pull",
  );
  const results: PulledFile[] = [];
  for (const item of items) {
    opts.signal?.throwIfAborted();
    const verify = () =>
      verifyFile(item.dest, item.file, (done) =>
        opts.onProgress?.({ item, phase: "verify", done, total: item.file.size }),
      );
    const partial = await exists(`${item.dest}.ipull`);
    if (!partial && (await exists(item.dest))) {
      try {
        await verify();
        log.info({ file: item.dest }, "already present and verified");
        results.push({ dest: item.dest, bytes: item.file.size, status: "present" });
        continue;
      } catch (err) {
        log.warn(
          { file: item.dest, reason: (err as Error).message },
          "present but not intact; downloading again",
        );
        await rm(item.dest, { force: true });
      }
    }
    await mkdir(dirname(item.dest), { recursive: true });
    const url = resolveUrl(opts.hub, item.repo, item.revision, item.file.path);
    log.info({ url, file: item.dest, bytes: item.file.size, resume: partial }, "downloading");
    await download({
      url,
      dest: item.dest,
      headers: authHeaders(opts.hub.token),
      signal: opts.signal,
      onProgress: (done, size) =>
        opts.onProgress?.({ item, phase: "download", done, total: size || item.file.size }),
    });
    opts.signal?.throwIfAborted();
    try {
      await verify();
    } catch (err) {
      if (!(err instanceof ChecksumError)) throw err;
      await rm(item.dest, { force: true });
      await rm(`${item.dest}.ipull`, { force: true });
      throw new ChecksumError(
        item.dest,
        `${err.message} — the download from ${url} is corrupt or not the published file; it was deleted. Run \`npm run models:pull\` again; if it keeps failing, check HF_ENDPOINT.`,
      );
    }
    log.info({ file: item.dest }, "downloaded and verified");
    results.push({ dest: item.dest, bytes: item.file.size, status: "downloaded" });
  }
  return results;
}
