/** The correction form's model: fields from the schema, parsing and messages (pure). */
import { describe, expect, it } from "vitest";
import {
  PROPOSAL_FIELDS,
  parseProposalForm,
  parseReviewFields,
  proposalToForm,
  sameProposal,
} from "../../edge/review/form-model.ts";
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../../gpu-node/contract/index.ts";

const valid = {
  ticker: "AAPL",
  action: "adjust",
  side: "",
  new_stop_pct: "",
  new_target_pct: "12.5",
  confidence: "0.7",
  rationale: "r",
};

describe("the correction form model", () => {
  it("has one field per schema property, in the schema's order, of the right kind", () => {
    expect(PROPOSAL_FIELDS.map((f) => f.name)).toEqual(
      Object.keys(TRADE_PROPOSAL_JSON_SCHEMA.properties),
    );
    const kinds = Object.fromEntries(PROPOSAL_FIELDS.map((f) => [f.name, f.kind]));
    expect(kinds).toEqual({
      ticker: "text",
      action: "select",
      side: "select",
      new_stop_pct: "number",
      new_target_pct: "number",
      confidence: "number",
      rationale: "textarea",
    });
    expect(PROPOSAL_FIELDS.find((f) => f.name === "side")?.required).toBe(false);
    expect(PROPOSAL_FIELDS.find((f) => f.name === "confidence")).toMatchObject({ min: 0, max: 1 });
  });

  it("reads empty numbers as null, an empty side as absent", () => {
    expect(parseProposalForm(valid)).toEqual({
      ok: true,
      proposal: {
        ticker: "AAPL",
        action: "adjust",
        new_stop_pct: null,
        new_target_pct: 12.5,
        confidence: 0.7,
        rationale: "r",
      },
    });
  });

  it("gives one clear message per bad field", () => {
    expect(parseProposalForm({ ...valid, confidence: "1.5" })).toEqual({
      ok: false,
      errors: { confidence: "Confidence must be between 0 and 1 (got 1.5)." },
    });
    expect(
      parseProposalForm({ ...valid, confidence: "", new_stop_pct: "abc", action: "buy" }),
    ).toEqual({
      ok: false,
      errors: {
        confidence: "Confidence is required.",
        new_stop_pct: "New stop (%) must be a number, or empty for none.",
        action: "Action must be one of adjust, pass, abort.",
      },
    });
  });

  it("round-trips a proposal through the form, counting absent as null", () => {
    const p = { ticker: "X", action: "pass" as const, confidence: 0.2, rationale: "y" };
    const back = parseProposalForm(proposalToForm(p));
    expect(back.ok && sameProposal(back.proposal, p)).toBe(true);
    expect(sameProposal(p, { ...p, confidence: 0.3 })).toBe(false);
  });

  it("checks the rating", () => {
    expect(parseReviewFields({ rating: "", comment: " hi " })).toEqual({
      ok: true,
      value: { comment: "hi" },
    });
    expect(parseReviewFields({ rating: "6" }).ok).toBe(false);
    expect(parseReviewFields({ rating: "3" })).toEqual({
      ok: true,
      value: { rating: 3, comment: "" },
    });
  });
});
