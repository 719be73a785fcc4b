// A kept conversation: its messages and everything needed to continue it as it was (model, adapter and strength,
// system prompt, sampling settings, what to do when it outgrows the context). Plain data, kept in IndexedDB.

import type { OverflowPolicy } from './prompt.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';

export interface ChatSettings {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  /** Every answer samples with `seed` (Regenerate repeats itself at the same settings); otherwise each answer's seed derives from it (another one for each Regenerate). */
  fixedSeed?: boolean;
  maxNewTokens: number;
  /** A model whose template reads enable_thinking (Qwen3): false asks for the answer without thinking first. */
  thinking?: boolean;
}

export interface TurnStats {
  model: string;
  adapter: string | null;
  strength: number;
  tokens: number;
  decodeTokensPerSecond: number;
  timeToFirstTokenMs: number;
  prefilledTokens: number;
  reusedTokens: number;
  contextUsed: number;
  contextLength: number;
  stopReason: string;
  singleTurn: boolean;
  /** The sampling seed the answer was drawn with. */
  seed?: number;
}

/** One answer of several drawn for the same message (Regenerate keeps the earlier ones). */
export interface AnswerVersion {
  content: string;
  stats?: TurnStats;
}

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** For answers: how they were made. */
  stats?: TurnStats;
  /** For answers drawn more than once: every version, `shown` being the one in `content` and `stats`. */
  versions?: AnswerVersion[];
  shown?: number;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  /** The model it was last used with (repo id or label), and the adapter (null: base) at a strength. */
  model: string | null;
  adapter: string | null;
  strength: number;
  system: string;
  settings: ChatSettings;
  overflow: OverflowPolicy;
  turns: Turn[];
}

export const DEFAULT_CHAT_SETTINGS: ChatSettings = { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0, maxNewTokens: 256 };

export function newConversation(now = Date.now(), from?: Pick<Conversation, 'model' | 'adapter' | 'strength' | 'system' | 'settings' | 'overflow'>): Conversation {
  return {
    id: `c-${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    title: 'New chat',
    createdAt: now,
    updatedAt: now,
    model: from?.model ?? null,
    adapter: from?.adapter ?? null,
    strength: from?.strength ?? 1,
    system: from?.system ?? '',
    settings: { ...(from?.settings ?? DEFAULT_CHAT_SETTINGS) },
    overflow: from?.overflow ?? 'stop',
    turns: [],
  };
}

/** A title from the first user message: its first line, at most 48 characters. */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0].trim();
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || 'New chat';
}

/**
 * A user turn with no answer after it, though the conversation went on: what a refused message left in conversations
 * kept by LoRA Lab before a send became a transaction. It is shown, and can be removed, but is never sent.
 */
export function unanswered(turns: readonly Turn[], i: number): boolean {
  return turns[i]?.role === 'user' && turns[i + 1]?.role === 'user';
}

/** The messages the model gets: the system prompt (when set) and the turns, less unanswered ones. */
export function chatMessages(c: Conversation, turns: Turn[] = c.turns): ChatMessage[] {
  const system: ChatMessage[] = c.system.trim() ? [{ role: 'system', content: c.system }] : [];
  return [...system, ...turns.filter((_, i) => !unanswered(turns, i)).map((t) => ({ role: t.role, content: t.content }))];
}

/** The conversation as a JSON file: settings and turns, in the OpenAI-style messages layout plus our fields. */
export function conversationJson(c: Conversation): string {
  return JSON.stringify({
    format: 'lora-lab-conversation', version: 1,
    title: c.title, createdAt: new Date(c.createdAt).toISOString(), updatedAt: new Date(c.updatedAt).toISOString(),
    model: c.model, adapter: c.adapter, strength: c.strength, settings: c.settings, overflow: c.overflow,
    messages: chatMessages(c),
    stats: c.turns.map((t) => t.stats ?? null),
  }, null, 2);
}
