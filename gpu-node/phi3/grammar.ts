/**
 * The output language of Phi-3's trade proposals: the contract's JSON schema through the same
 * compiler as every other schema (gpu-node/structured/), so its guarantee is the general one.
 */
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../contract/index.ts";
import { toEbnf } from "../structured/ebnf.ts";
import type { Lang } from "../structured/language.ts";
import { schemaLanguage } from "../structured/schema.ts";

export interface OutputLanguage {
  lang: Lang;
  ebnf: string;
}

export function tradeProposalLanguage(): OutputLanguage {
  const { lang } = schemaLanguage(TRADE_PROPOSAL_JSON_SCHEMA);
  return { lang, ebnf: toEbnf(lang) };
}
