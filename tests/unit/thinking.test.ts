// Qwen3's thinking switch: a chat template that reads enable_thinking gets it as apply_chat_template passes keyword
// arguments (unset: the template's own default), the model says it has the switch, and an answer's <think>…</think>
// is split from the answer (closed, or still open while it streams).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chatPrompt } from '../../src/lib/chat/prompt.js';
import { splitThinking } from '../../src/lib/chat/thinking.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

// The generation-prompt end of Qwen3's template, as Qwen publishes it: thinking off writes an empty think block.
const QWEN3_TAIL = "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

const tokenizer = (template: string | null) => new TextTokenizer(
  JSON.parse(readFileSync(new URL('../fixtures/SmolLM2-135M-Instruct/tokenizer.json', import.meta.url), 'utf8')),
  { eos_token: '<|im_end|>' }, template,
);

describe('the thinking switch', () => {
  const messages = [{ role: 'user' as const, content: 'Hi' }];
  it('reaches the template as enable_thinking, and unset leaves the template its default', () => {
    const tok = tokenizer(QWEN3_TAIL);
    expect(tok.thinkingSwitch).toBe(true);
    expect(tok.renderChat(messages)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.renderChat(messages, true, { enable_thinking: true })).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.renderChat(messages, true, { enable_thinking: false })).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    // The chat prompt passes it on: thinking off costs the empty block's tokens.
    const on = chatPrompt(tok, messages, 256, 16, 'stop');
    const off = chatPrompt(tok, messages, 256, 16, 'stop', { enable_thinking: false });
    expect(tok.decode(off.ids.slice(on.ids.length), false)).toBe('<think>\n\n</think>\n\n');
  });

  it('is offered only by templates that read it', () => {
    expect(tokenizer("{{ messages[0].content }}").thinkingSwitch).toBe(false);
    expect(tokenizer(null).thinkingSwitch).toBe(false);
  });

  it("splits an answer's thinking from the answer, closed or still streaming", () => {
    expect(splitThinking('<think>\nWeigh the options.\n</think>\n\nThe answer.')).toEqual({ thinking: 'Weigh the options.', done: true, answer: 'The answer.' });
    expect(splitThinking('<think>\nStill weighing')).toEqual({ thinking: 'Still weighing', done: false, answer: '' });
    expect(splitThinking('<think>\n\n</think>\n\nAt once.')).toEqual({ thinking: '', done: true, answer: 'At once.' });
    expect(splitThinking('No thinking <think>here</think>.')).toEqual({ thinking: null, done: true, answer: 'No thinking <think>here</think>.' });
  });
});
