/**
 * PGlite is single-process: a second process that opens the same data directory reads a stale
 * snapshot and risks the files. Every process that opens an embedded database directory (the
 * Node edge, `npm run export:jsonl`, `npm run db:migrate`) takes this lock first: `<dir>.lock`,
 * created exclusively, holding who has it. A lock whose process is gone is taken over.
 * Node only.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from "node:fs";

export interface LockHolder {
  pid: number;
  /** What holds it: "edge", "export:jsonl", "db:migrate". */
  command: string;
  /** The edge's URL, once it listens. */
  url?: string;
  since: string;
}

export class DataDirectoryInUseError extends Error {
  override name = "DataDirectoryInUseError";
  constructor(
    readonly directory: string,
    readonly holder: LockHolder,
  ) {
    super(`the embedded database in ${directory} is in use by ${describeHolder(holder)}`);
  }
}

export function describeHolder(holder: LockHolder): string {
  const where = holder.url ? ` at ${holder.url}` : "";
  return holder.command === "edge"
    ? `the edge running${where} (pid ${holder.pid})`
    : `\`npm run ${holder.command}\` (pid ${holder.pid})`;
}

export interface DataDirectoryLock {
  readonly path: string;
  /** Records more about the holder (the edge's URL once it listens). */
  update(extra: Partial<Pick<LockHolder, "url">>): void;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<LockHolder>;
    return typeof parsed.pid === "number" ? (parsed as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock of an embedded database directory, or throws DataDirectoryInUseError. */
export function lockDataDirectory(directory: string, command: string): DataDirectoryLock {
  const path = `${directory}.lock`;
  let holder: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, JSON.stringify(holder));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
      const current = readHolder(path);
      if (current && current.pid !== process.pid && alive(current.pid)) {
        throw new DataDirectoryInUseError(directory, current);
      }
      // Left behind by a process that is gone (or unreadable): take it over.
      unlinkSync(path);
    }
  }
  let released = false;
  return {
    path,
    update(extra) {
      holder = { ...holder, ...extra };
      if (!released) writeFileSync(path, JSON.stringify(holder));
    },
    release() {
      if (released) return;
      released = true;
      try {
        if (readHolder(path)?.pid === process.pid) unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}
