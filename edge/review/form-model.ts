/**
 * The correction form, generated from the trade schema (TRADE_PROPOSAL_JSON_SCHEMA for the fields,
 * the zod TradeProposal for the check). Shared by the server (rendering, checking a post) and the
 * page's script (checking before anything is sent): the same code and the same schema on both.
 */
import {
  canonicalProposal,
  TRADE_PROPOSAL_JSON_SCHEMA,
  TradeProposal,
} from "../../gpu-node/contract/index.ts";

type FieldName = keyof typeof TRADE_PROPOSAL_JSON_SCHEMA.properties;

export interface FieldSpec {
  name: FieldName;
  label: string;
  kind: "text" | "textarea" | "select" | "number";
  required: boolean;
  /** Numbers only: empty means null. */
  nullable: boolean;
  options?: readonly string[];
  min?: number;
  max?: number;
  hint?: string;
}

const LABELS: Partial<Record<FieldName, { label: string; hint?: string }>> = {
  ticker: { label: "Ticker" },
  action: { label: "Action" },
  side: { label: "Side" },
  new_stop_pct: { label: "New stop (%)", hint: "Empty means none (null)." },
  new_target_pct: { label: "New target (%)", hint: "Empty means none (null)." },
  confidence: { label: "Confidence", hint: "From 0 to 1." },
  rationale: { label: "Rationale", hint: "One-sentence justification." },
};

const humanize = (name: string) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

/** One field per schema property, in the schema's order. */
export const PROPOSAL_FIELDS: FieldSpec[] = Object.entries(
  TRADE_PROPOSAL_JSON_SCHEMA.properties,
).map(([key, raw]) => {
  const name = key as FieldName;
  const prop = raw as {
    type: string | readonly string[];
    enum?: readonly string[];
    minimum?: number;
    maximum?: number;
    description?: string;
  };
  const types = typeof prop.type === "string" ? [prop.type] : [...prop.type];
  const required = (TRADE_PROPOSAL_JSON_SCHEMA.required as readonly string[]).includes(name);
  const text = LABELS[name];
  return {
    name,
    label: text?.label ?? humanize(name),
    kind: prop.enum
      ? "select"
      : types.includes("number")
        ? "number"
        : name === "rationale"
          ? "textarea"
          : "text",
    required,
    nullable: types.includes("null"),
    ...(prop.enum ? { options: prop.enum } : {}),
    ...(prop.minimum !== undefined ? { min: prop.minimum } : {}),
    ...(prop.maximum !== undefined ? { max: prop.maximum } : {}),
    hint: text?.hint ?? prop.description,
  };
});

export type FormValues = Record<string, string | undefined>;

/** A proposal's values as the form shows them (null and absent are empty). */
export function proposalToForm(p: TradeProposal): FormValues {
  const out: FormValues = {};
  for (const f of PROPOSAL_FIELDS) {
    const v = (p as Record<string, unknown>)[f.name];
    out[f.name] = v === undefined || v === null ? "" : String(v);
  }
  return out;
}

export type ParsedProposal =
  | { ok: true; proposal: TradeProposal }
  | { ok: false; errors: Partial<Record<FieldName, string>> };

/** Reads the form's values into a proposal and checks it with the trade schema. */
export function parseProposalForm(values: FormValues): ParsedProposal {
  const candidate: Record<string, unknown> = {};
  for (const f of PROPOSAL_FIELDS) {
    const raw = values[f.name] ?? "";
    if (f.kind === "number") {
      const trimmed = raw.trim();
      if (trimmed === "") {
        if (f.nullable) candidate[f.name] = null;
      } else {
        const n = Number(trimmed);
        candidate[f.name] = Number.isFinite(n) ? n : trimmed;
      }
    } else if (f.kind === "select") {
      if (raw !== "") candidate[f.name] = raw;
    } else {
      candidate[f.name] = f.name === "ticker" ? raw.trim() : raw;
    }
  }
  const result = TradeProposal.safeParse(candidate);
  if (result.success) return { ok: true, proposal: canonicalProposal(result.data) };
  const errors: Partial<Record<FieldName, string>> = {};
  for (const issue of result.error.issues) {
    const name = String(issue.path[0] ?? "") as FieldName;
    const field = PROPOSAL_FIELDS.find((f) => f.name === name);
    if (!field || errors[name]) continue;
    errors[name] = messageFor(field, candidate[name]);
  }
  return { ok: false, errors };
}

function messageFor(field: FieldSpec, value: unknown): string {
  if (value === undefined) return `${field.label} is required.`;
  if (field.kind === "number") {
    if (typeof value !== "number") {
      return `${field.label} must be a number${field.nullable ? ", or empty for none" : ""}.`;
    }
    if (field.min !== undefined && field.max !== undefined) {
      return `${field.label} must be between ${field.min} and ${field.max} (got ${value}).`;
    }
  }
  if (field.options) return `${field.label} must be one of ${field.options.join(", ")}.`;
  return `${field.label} is not valid.`;
}

/** Same proposal, counting an absent nullable number as null. */
export function sameProposal(a: TradeProposal, b: TradeProposal): boolean {
  const norm = (p: TradeProposal) =>
    JSON.stringify(
      PROPOSAL_FIELDS.map((f) => {
        const v = (p as Record<string, unknown>)[f.name];
        return v === undefined && f.nullable ? null : (v ?? null);
      }),
    );
  return norm(a) === norm(b);
}

export interface ReviewInput {
  rating?: number;
  comment: string;
}

/** Rating (1-5, optional) and comment of the form. */
export function parseReviewFields(
  values: FormValues,
): { ok: true; value: ReviewInput } | { ok: false; errors: { rating?: string } } {
  const raw = (values.rating ?? "").trim();
  const comment = (values.comment ?? "").trim();
  if (raw === "") return { ok: true, value: { comment } };
  const rating = Number(raw);
  if (!Number.isInteger(rating) || rating < 1 || rating > 5) {
    return { ok: false, errors: { rating: "Rating must be a whole number from 1 to 5." } };
  }
  return { ok: true, value: { rating, comment } };
}
