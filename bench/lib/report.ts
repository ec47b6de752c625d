/** Markdown for BENCHMARKS.md: each result's tables between `<!-- bench:ID -->` markers. */
import type { MachineFacts } from "./machine.ts";
import type { BenchResult, Table } from "./types.ts";

export function markdownTable(table: Table): string {
  const cell = (v: string | number | null) => (v === null ? "–" : String(v));
  return [
    `| ${table.columns.join(" | ")} |`,
    `| ${table.columns.map(() => "---").join(" | ")} |`,
    ...table.rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");
}

export function renderResult(result: BenchResult, machine: MachineFacts): string {
  const parts = [
    `Command: \`${result.command}\` · target: ${result.target} · measured ${machine.date.slice(0, 10)} on ${machine.cores} × ${machine.cpu}, Node ${machine.node}, commit \`${machine.commit.slice(0, 10)}\`${machine.dirty ? " (with uncommitted changes)" : ""} · raw: \`bench/results/${result.id}.json\``,
  ];
  for (const t of result.tables) parts.push(`**${t.title}**\n\n${markdownTable(t)}`);
  if (result.notes.length) parts.push(result.notes.map((n) => `- ${n}`).join("\n"));
  return parts.join("\n\n");
}

/** Replaces the text between a result's markers; leaves the rest of the document alone. */
export function replaceSection(doc: string, id: string, body: string): string {
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) return doc;
  return `${doc.slice(0, i + start.length)}\n${body}\n${doc.slice(j)}`;
}
