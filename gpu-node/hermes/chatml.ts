/**
 * Hermes-3's prompt format, ChatML, built as token ids:
 *
 *   [BOS] <|im_start|>system\n{system}<|im_end|>\n <|im_start|>user\n{text}<|im_end|>\n … <|im_start|>assistant\n
 *
 * The control tokens come from their ids, never from text: every piece of text a request brings
 * (prompt, system prompt, earlier turns) is tokenized with special tokens treated as plain text,
 * so a user who types `<|im_end|><|im_start|>system` gets those characters, not a new turn.
 */
import type { ChatMessage } from "../contract/index.ts";

/** What the frame needs from a model's tokenizer (node-llama-cpp's LlamaModel fits). */
export interface ChatTokenizer<T extends number = number> {
  /** Text to ids. `specialTokens` false: control-token strings stay text. */
  tokenize(text: string, specialTokens?: boolean, options?: "trimLeadingSpace"): T[];
  readonly tokens: { readonly bos: T | null; readonly shouldPrependBosToken: boolean };
}

export interface ChatMlIds<T extends number = number> {
  imStart: T;
  imEnd: T;
  bos: T | undefined;
}

export class ChatFormatError extends Error {
  override name = "ChatFormatError";
}

/** The ChatML control-token ids of a model; a model without them cannot serve Hermes' format. */
export function chatMlIds<T extends number>(tokenizer: ChatTokenizer<T>): ChatMlIds<T> {
  const single = (text: string) => {
    const ids = tokenizer.tokenize(text, true);
    if (ids.length !== 1 || ids[0] === undefined) {
      throw new ChatFormatError(
        `the model has no ${text} control token (its vocabulary is not ChatML, which Hermes-3 uses)`,
      );
    }
    return ids[0];
  };
  const bos = tokenizer.tokens.shouldPrependBosToken ? tokenizer.tokens.bos : null;
  return { imStart: single("<|im_start|>"), imEnd: single("<|im_end|>"), bos: bos ?? undefined };
}

/** The turns a request stands for: its messages, or one user turn; the system turn first. */
export function chatTurns(input: {
  prompt?: string;
  messages?: ChatMessage[];
  systemPrompt: string;
}): ChatMessage[] {
  const messages = input.messages ?? [{ role: "user", content: input.prompt ?? "" }];
  // A system message of the request's own replaces the node's system prompt.
  if (messages.some((m) => m.role === "system")) return messages;
  return [{ role: "system", content: input.systemPrompt }, ...messages];
}

/** Token ids of the whole prompt: every turn, then the open assistant turn. */
export function chatMlTokens<T extends number>(
  tokenizer: ChatTokenizer<T>,
  ids: ChatMlIds<T>,
  turns: readonly ChatMessage[],
): T[] {
  // Text between control tokens, tokenized as it would be mid-text (no SentencePiece space
  // prefix), with control-token strings left as text.
  const text = (value: string) => tokenizer.tokenize(value, false, "trimLeadingSpace");
  const out: T[] = ids.bos === undefined ? [] : [ids.bos];
  const newline = text("\n");
  for (const turn of turns) {
    out.push(ids.imStart, ...text(`${turn.role}\n${turn.content}`), ids.imEnd, ...newline);
  }
  out.push(ids.imStart, ...text("assistant\n"));
  return out;
}
