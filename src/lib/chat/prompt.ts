// A conversation becomes the token ids the model continues: rendered through the model's chat template, or, for a
// model without one, the Alpaca template around the last user message only (such models were tuned on single turns).
// When the conversation and the room for the answer outgrow the context, the oldest turns are dropped (the system
// prompt stays) or the caller is told, as the conversation's setting says.

import { ContextOverflowError, InvalidArgumentError } from '../errors.js';
import type { ChatMessage, TemplateVariables, TextTokenizer } from '../tokenizer/tokenizer.js';

export type OverflowPolicy = 'drop-oldest' | 'stop';

export interface ChatPrompt {
  ids: number[];
  /** Messages left out at the start (oldest first) to fit the context. */
  dropped: number;
  /** The model has no chat template: only the last user message was sent, in the Alpaca template. */
  singleTurn: boolean;
}

/** Checks the shape a chat template expects: an optional system message, then user/assistant turns, ending with user. */
export function validateMessages(messages: ChatMessage[]): void {
  const turns = messages[0]?.role === 'system' ? messages.slice(1) : messages;
  if (turns.length === 0 || turns[turns.length - 1].role !== 'user') {
    throw new InvalidArgumentError('A chat request ends with a user message: type one, then send.');
  }
  turns.forEach((m, i) => {
    const want = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== want) throw new InvalidArgumentError(`Message ${i + 1} of the conversation is from "${m.role}" where "${want}" was expected: turns alternate user, assistant.`);
  });
}

export function chatPrompt(tok: TextTokenizer, messages: ChatMessage[], contextLength: number, maxNewTokens: number, overflow: OverflowPolicy, variables: TemplateVariables = {}): ChatPrompt {
  validateMessages(messages);
  if (!tok.chatTemplate) {
    const last = messages[messages.length - 1].content;
    const ids = tok.promptIds(last, 'alpaca');
    if (ids.length + maxNewTokens > contextLength) throw overflowError(ids.length, contextLength, maxNewTokens, false);
    return { ids, dropped: Math.max(0, messages.length - 1), singleTurn: true };
  }
  const system = messages[0].role === 'system' ? [messages[0]] : [];
  let turns = messages.slice(system.length);
  let dropped = 0;
  for (;;) {
    const ids = tok.encode(tok.renderChat([...system, ...turns], true, variables), false);
    if (ids.length + maxNewTokens <= contextLength) return { ids, dropped, singleTurn: false };
    if (turns.length <= 1) throw overflowError(ids.length, contextLength, maxNewTokens, false);
    if (overflow === 'stop') throw overflowError(ids.length, contextLength, maxNewTokens, true);
    turns = turns.slice(2); // the oldest user message and its answer
    dropped += 2;
  }
}

function overflowError(promptTokens: number, context: number, maxNewTokens: number, canDrop: boolean): ContextOverflowError {
  return new ContextOverflowError(
    canDrop
      ? `The conversation (${promptTokens} tokens) plus ${maxNewTokens} new tokens exceed the context of ${context} tokens. Drop the oldest turns, start a new chat, or ask for fewer new tokens.`
      : `The last message alone (${promptTokens} tokens with the template) plus ${maxNewTokens} new tokens exceed the context of ${context} tokens. Shorten it or ask for fewer new tokens.`,
    { promptTokens, maxNewTokens, context, canDrop },
  );
}

/** Length of the longest common prefix of two token sequences. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
