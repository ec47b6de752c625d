/** The critique prompt of the propose flow: Hermes assesses a Phi-3 proposal with it. Runtime
 * text, not contract: the edge sends the proposal, the node builds this prompt. */
import type { TradeProposal } from "../contract/index.ts";

/** The Python sidecar's critique prompt (its /propose_trade_adjustments/), kept verbatim. */
export function critiquePrompt(proposal: TradeProposal): string {
  return (
    "The following trade adjustment was proposed by an AI assistant.\n" +
    `Proposal: ${JSON.stringify(proposal)}\n` +
    "Please critique this proposal. Consider its rationale, risk, and alignment with the " +
    "stated confidence.\n" +
    "Your assessment (provide a brief analysis and recommendation):"
  );
}
