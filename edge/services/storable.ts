/**
 * How model output is stored: whatever a model produced, the record can hold it and the response
 * carries exactly what was stored.
 *
 * Postgres `text` and `jsonb` cannot hold U+0000 (NUL), and `jsonb` refuses ill-formed UTF-16 (a
 * lone surrogate). Both become U+FFFD (the replacement character). Every other control character
 * (U+0001-U+001F, U+007F, U+0080-U+009F) is kept as it is: `text` holds it, and JSON (the JSONL
 * export, jsonb) writes it escaped (`\u0001`).
 */
import type { TradeProposal } from "../../gpu-node/contract/index.ts";

export const REPLACEMENT_CHARACTER = "\uFFFD";

export function storableText(text: string): string {
  const noNul = text.includes("\u0000") ? text.replaceAll("\u0000", REPLACEMENT_CHARACTER) : text;
  return noNul.isWellFormed() ? noNul : noNul.toWellFormed();
}

export function storableOrNull(text: string | null): string | null {
  return text === null ? null : storableText(text);
}

/** The proposal with each string field made storable (numbers and enums pass through). */
export function storableProposal(proposal: TradeProposal): TradeProposal {
  let changed: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(proposal)) {
    if (typeof value !== "string") continue;
    const fixed = storableText(value);
    if (fixed !== value) {
      changed ??= { ...proposal };
      changed[key] = fixed;
    }
  }
  return (changed as TradeProposal | undefined) ?? proposal;
}
