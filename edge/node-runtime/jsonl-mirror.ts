/**
 * The append-only JSONL mirror of the record (Node only): DATA_DIR/phi3_feedback_log.jsonl and
 * DATA_DIR/phi3_feedback_data.jsonl, in the seed's field names. The database is the record; a
 * mirror write that fails is logged, never turned into a lost request.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import path from "node:path";
import type { Logger, RecordMirror } from "../deps.ts";

export const LOG_FILE = "phi3_feedback_log.jsonl";
export const FEEDBACK_FILE = "phi3_feedback_data.jsonl";

export interface FileMirror extends RecordMirror {
  /** Flushes and closes both files. */
  close(): Promise<void>;
}

export function createFileMirror(dataDir: string, logger: Logger): FileMirror {
  mkdirSync(dataDir, { recursive: true });
  const open = (name: string): WriteStream => {
    const stream = createWriteStream(path.join(dataDir, name), { flags: "a" });
    stream.on("error", (err) => logger.error({ err, file: name }, "JSONL mirror write failed"));
    return stream;
  };
  const log = open(LOG_FILE);
  const feedback = open(FEEDBACK_FILE);
  const end = (s: WriteStream) => new Promise<void>((resolve) => s.end(resolve));
  return {
    appendLog: (line) => void log.write(`${JSON.stringify(line)}\n`),
    appendFeedback: (line) => void feedback.write(`${JSON.stringify(line)}\n`),
    close: async () => {
      await Promise.all([end(log), end(feedback)]);
    },
  };
}
