// web-llm as an assistant backend: OpenAI-style streaming chat completions from a (Web Worker) MLC engine; Stop
// interrupts the generation. Written against the small part of web-llm's engine it uses, so it is tested without one.

import type { AssistantBackend } from './backend.js';

interface Chunk {
  choices: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { completion_tokens?: number } | null;
}

/** The part of web-llm's MLCEngineInterface the backend uses. */
export interface MlcChat {
  chat: { completions: { create(req: Record<string, unknown>): Promise<AsyncIterable<Chunk>> } };
  interruptGenerate(): void;
}

const STOP: Record<string, string> = { stop: 'eos', length: 'length', abort: 'aborted' };

export function webllmBackend(engine: MlcChat, modelId: string): AssistantBackend {
  return {
    kind: 'web-llm',
    model: modelId,
    async complete(messages, settings, onText, signal) {
      if (signal?.aborted) return { text: '', tokens: 0, stopReason: 'aborted' };
      const s = settings.sampling ?? {};
      const stream = await engine.chat.completions.create({
        messages, stream: true, stream_options: { include_usage: true }, max_tokens: settings.maxNewTokens,
        temperature: s.temperature ?? 0.7, top_p: s.topP ?? 1, ...(s.seed !== undefined ? { seed: s.seed } : {}),
        ...(s.repetitionPenalty !== undefined && s.repetitionPenalty !== 1 ? { repetition_penalty: s.repetitionPenalty } : {}),
      });
      const stop = () => engine.interruptGenerate();
      signal?.addEventListener('abort', stop, { once: true });
      let text = '';
      let tokens = 0;
      let finish: string | null = null;
      try {
        for await (const c of stream) {
          const d = c.choices[0]?.delta?.content ?? '';
          if (d) { text += d; onText?.(d); }
          finish = c.choices[0]?.finish_reason ?? finish;
          if (c.usage?.completion_tokens !== undefined) tokens = c.usage.completion_tokens;
        }
      } finally {
        signal?.removeEventListener('abort', stop);
      }
      return { text, tokens, stopReason: signal?.aborted ? 'aborted' : STOP[finish ?? 'stop'] ?? finish ?? 'eos' };
    },
  };
}
