/**
 * The output language (language.ts's AST) printed as EBNF in xgrammar's dialect, the grammar
 * xgrammar masks the logits with.
 */
import type { Lang } from "./language.ts";

function ebnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (cp < 0x20 || cp === 0x7f) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** xgrammar reads `\x` escapes greedily (`\x5cbf` is U+5CBF), so bytes are written as `\uHHHH`,
 * which has a fixed length. */
function ebnfByte(b: number): string {
  const ch = String.fromCharCode(b);
  if (/[A-Za-z0-9]/.test(ch)) return ch;
  return `\\u${b.toString(16).padStart(4, "0")}`;
}

/** Prints `root` and every named rule it uses as an EBNF grammar whose start rule is `root`. */
export function toEbnf(root: Lang): string {
  const rules = new Map<string, string>();
  const print = (node: Lang): string => {
    switch (node.kind) {
      case "lit":
        return ebnfLiteral(node.text);
      case "bytes":
        for (const [, hi] of node.ranges) {
          if (hi > 0x7f) throw new Error("EBNF byte classes must be ASCII; use a char node");
        }
        return `[${node.ranges.map(([lo, hi]) => (lo === hi ? ebnfByte(lo) : `${ebnfByte(lo)}-${ebnfByte(hi)}`)).join("")}]`;
      case "char":
        return node.ebnf;
      case "seq":
        return node.items.length === 0 ? '""' : `(${node.items.map(print).join(" ")})`;
      case "alt":
        return `(${node.items.map(print).join(" | ")})`;
      case "rep": {
        const inner = print(node.item);
        if (node.min === 0 && node.max === 1) return `${inner}?`;
        if (node.min === 0 && node.max === Infinity) return `${inner}*`;
        if (node.min === 1 && node.max === Infinity) return `${inner}+`;
        return `${inner}{${node.min},${node.max === Infinity ? "" : node.max}}`;
      }
      case "rule": {
        const existing = rules.get(node.name);
        if (existing === undefined) {
          rules.set(node.name, ""); // reserve first: rules may be shared
          rules.set(node.name, print(node.body));
        }
        return node.name;
      }
      case "loop": {
        if (!rules.has(node.name)) {
          rules.set(node.name, ""); // reserve first: the rule refers to itself
          // Top-level sequences unparenthesized: `"\\" (escape) name`, as xgrammar's JSON grammar.
          const unwrap = (item: Lang): string =>
            item.kind === "seq" && item.items.length > 0
              ? item.items.map(print).join(" ")
              : print(item);
          const tails = node.items.map((item) => `${unwrap(item)} ${node.name}`);
          rules.set(node.name, [unwrap(node.end), ...tails].join(" | "));
        }
        return node.name;
      }
      case "step": {
        if (!rules.has(node.name)) {
          rules.set(node.name, "");
          const unwrap = (item: Lang): string =>
            item.kind === "seq" && item.items.length > 0
              ? item.items.map(print).join(" ")
              : print(item);
          const next = print(node.next);
          const tails = node.items.map((item) => `${unwrap(item)} ${next}`);
          rules.set(node.name, [...(node.end ? [unwrap(node.end)] : []), ...tails].join(" | "));
        }
        return node.name;
      }
    }
  };
  const rootText = print(root);
  const lines = [`root ::= ${rootText}`];
  for (const [name, body] of rules) lines.push(`${name} ::= ${body}`);
  return `${lines.join("\n")}\n`;
}
