// One small interface for "a model that answers a conversation", whatever runs it: our own engine (any loaded model,
// with any adapter at any strength) or web-llm. The teacher and the judge are written against it only.

import type { SamplingOptions } from '../model/sampling.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';

export interface CompletionSettings {
  maxNewTokens: number;
  sampling?: Partial<SamplingOptions>;
}

export interface Completion {
  text: string;
  /** Tokens generated. */
  tokens: number;
  /** Why generation ended: 'eos', 'length', 'stop' (a stop string), 'aborted'. */
  stopReason: string;
}

export interface AssistantBackend {
  /** Which engine runs it: 'engine' (ours) or 'web-llm'. */
  readonly kind: string;
  /** The model (and adapter) that answers, as recorded in a dataset's provenance or a judge's results. */
  readonly model: string;
  /** The next assistant turn of `messages`, streamed through `onText`; `signal` stops it (stopReason 'aborted'). */
  complete(messages: ChatMessage[], settings: CompletionSettings, onText?: (delta: string) => void, signal?: AbortSignal): Promise<Completion>;
}

/** Anything with the engine's chat call: the Engine itself in Node and the worker, or the page's EngineClient. */
export type ChatCall = (
  req: { messages: ChatMessage[]; adapter: string | null; adapterScale: number; maxNewTokens: number; sampling?: Partial<SamplingOptions>; overflow: 'stop' },
  onText: (delta: string) => void,
  signal?: AbortSignal,
) => Promise<{ text: string; tokens: number[]; stopReason: string }>;

/** Our own engine as a backend: the loaded model, through `adapter` at `strength` (null: the base model). */
export function engineBackend(chat: ChatCall, modelLabel: string, adapter: string | null = null, strength = 1): AssistantBackend {
  const model = adapter === null || strength === 0 ? modelLabel : `${modelLabel} + ${adapter}@${strength}`;
  return {
    kind: 'engine',
    model,
    async complete(messages, settings, onText, signal) {
      const r = await chat({ messages, adapter, adapterScale: strength, maxNewTokens: settings.maxNewTokens, sampling: settings.sampling, overflow: 'stop' }, (d) => onText?.(d), signal);
      return { text: r.text, tokens: r.tokens.length, stopReason: r.stopReason };
    },
  };
}
