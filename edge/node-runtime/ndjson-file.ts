/** Writes an async stream of JSON lines to a file with progress on stderr (the export CLIs). */
import { once } from "node:events";
import { createWriteStream } from "node:fs";

export async function writeNdjsonFile(options: {
  lines: AsyncIterable<unknown>;
  total: number;
  out: string;
  label: string;
}): Promise<number> {
  const { lines, total, label } = options;
  const out = createWriteStream(options.out);
  let written = 0;
  let lastReport = 0;
  const report = (final = false) => {
    const pct = total > 0 ? Math.min(100, Math.floor((written / total) * 100)) : 100;
    process.stderr.write(`\r${label}: ${written}/${total} (${pct}%)${final ? "\n" : ""}`);
  };
  report();
  try {
    for await (const line of lines) {
      if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, "drain");
      written++;
      if (Date.now() - lastReport > 250) {
        lastReport = Date.now();
        report();
      }
    }
  } catch (err) {
    out.destroy();
    throw err;
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  report(true);
  process.stderr.write(`wrote ${written} line(s) to ${options.out}\n`);
  return written;
}
