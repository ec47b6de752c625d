/** The seed's JSONL line shapes, shared by the export endpoint, the CLI and the Node mirror. */
import type { FeedbackRow } from "../../db/schema/feedback.ts";
import type { GenerationRow } from "../../db/schema/generations.ts";
import type { ProposalRow } from "../../db/schema/proposals.ts";
import { canonicalProposal } from "../../gpu-node/contract/index.ts";

/** A phi3_feedback_log.jsonl line: the seed's fields first, then what we add. */
export function toLogLine(row: ProposalRow): Record<string, unknown> {
  return {
    transaction_id: row.transactionId,
    timestamp: row.createdAt.toISOString(),
    phi3_proposal: canonicalProposal(row.phi3Proposal),
    hermes_assessment: row.hermesAssessment,
    endpoint: row.endpoint,
    prompt: row.prompt,
    augmented_prompt: row.augmentedPrompt,
    example_ids: row.exampleIds,
    max_length: row.maxLength,
    phi3_model: row.phi3Model,
    hermes_model: row.hermesModel,
    hermes_error: row.hermesError,
    tokens: {
      phi3_prompt: row.phi3PromptTokens,
      phi3_completion: row.phi3CompletionTokens,
      hermes_prompt: row.hermesPromptTokens,
      hermes_completion: row.hermesCompletionTokens,
    },
    timings: row.timings,
    request_id: row.requestId,
  };
}

/** A phi3_feedback_data.jsonl line: the FeedbackItem fields, then what we add. */
export function toFeedbackLine(row: FeedbackRow): Record<string, unknown> {
  return {
    transaction_id: row.transactionId,
    feedback_type: row.feedbackType,
    feedback_content: row.feedbackContent,
    timestamp: row.timestamp.toISOString(),
    corrected_proposal: row.correctedProposal ? canonicalProposal(row.correctedProposal) : null,
    id: String(row.id),
    received_at: row.receivedAt.toISOString(),
    request_id: row.requestId,
  };
}

/** A generations export line: one /v1 completion that is not a trade proposal. */
export function toGenerationLine(row: GenerationRow): Record<string, unknown> {
  return {
    id: `chatcmpl-${row.id}`,
    timestamp: row.createdAt.toISOString(),
    model: row.model,
    node_model: row.nodeModel,
    messages: row.messages,
    response_format: row.responseFormat,
    params: row.params,
    output: row.output,
    finish_reason: row.finishReason,
    usage: {
      prompt_tokens: row.promptTokens,
      completion_tokens: row.completionTokens,
      total_tokens: row.promptTokens + row.completionTokens,
    },
    stream: row.stream,
    timings: row.timings,
    request_id: row.requestId,
  };
}
