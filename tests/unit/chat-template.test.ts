// Chat templates are code from a model's files: they render as the library renders them, but a template that loops
// for ever ends in a typed error within the limits instead of hanging the worker or the CLI.
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../src/lib/errors.js';
import { renderBounded } from '../../src/lib/tokenizer/chat-template.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

const fixture = (path: string) => readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8');
const smolJson = JSON.parse(fixture('SmolLM2-135M-Instruct/tokenizer.json'));
const withTemplate = (template: string) => new TextTokenizer(smolJson, { bos_token: '<|im_start|>', eos_token: '<|im_end|>' }, template);

const conversation = Array.from({ length: 40 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}: ${'ab '.repeat(i)}` }));

// Constructs real templates use: namespace, loop variables, filters, macros, raise_exception, tests, slicing.
const featureful = `{%- set ns = namespace(n=0) -%}
{%- macro turn(m) -%}<{{ m.role | upper }}>{{ m.content | trim }}{%- endmacro -%}
{%- for m in messages -%}
{%- if m.role not in ['user', 'assistant'] -%}{{ raise_exception('bad role ' ~ m.role) }}{%- endif -%}
{%- set ns.n = ns.n + (m.content | length) -%}
{{ loop.index0 }}:{{ turn(m) }}{% if not loop.last %}|{% endif %}
{%- endfor -%}
{{ ns.n }}{{ messages[-2:] | map(attribute='role') | join(',') }}{% for i in range(3, 12, 4) %}{{ i }}{% endfor %}
{%- if add_generation_prompt %}{{ bos_token }}assistant{% endif %}`;

describe('chat templates render as the library renders them', () => {
  const templates = {
    SmolLM2: JSON.parse(fixture('SmolLM2-135M-Instruct/tokenizer_config.json')).chat_template as string,
    TinyLlama: JSON.parse(fixture('TinyLlama-1.1B-Chat-v1.0/tokenizer_config.json')).chat_template as string,
    'SmolLM2-360M jinja': fixture('SmolLM2-135M-Instruct/chat_template.from-SmolLM2-360M-Instruct.jinja'),
    featureful,
  };
  for (const [name, source] of Object.entries(templates)) {
    it(name, () => {
      const items = { messages: conversation, add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>' };
      const template = new Template(source);
      expect(renderBounded(template, items)).toBe(template.render(items));
    });
  }

  it("a template that refuses a system role (Gemma 2's) gets the system text folded into the first user turn, as Gemma 3's template folds it", () => {
    // Gemma's turn format, and Gemma 2's refusal of a system message, written from its model card's description.
    const gemma2 = `{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}`;
    const tok = withTemplate(gemma2);
    const text = tok.renderChat([{ role: 'system', content: 'Answer in French.' }, { role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Bonjour' }, { role: 'user', content: 'Thanks' }]);
    expect(text).toBe('<|im_start|><start_of_turn>user\nAnswer in French.\n\nHello<end_of_turn>\n<start_of_turn>model\nBonjour<end_of_turn>\n<start_of_turn>user\nThanks<end_of_turn>\n<start_of_turn>model\n');
    // Without a system message nothing is folded; a template failing for another reason still says so.
    expect(tok.renderChat([{ role: 'user', content: 'Hi' }])).toBe('<|im_start|><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n');
    expect(() => tok.renderChat([{ role: 'system', content: 's' }, { role: 'assistant', content: 'x' } as never])).toThrow(/failed on these messages \(System role not supported\)/);
  });

  it('raise_exception reaches the caller with its message', () => {
    const tok = withTemplate(featureful);
    expect(() => tok.renderChat([{ role: 'tool', content: 'x' } as never])).toThrow(/failed on these messages \(bad role tool\)/);
  });

  it('strftime_now writes today in English', () => {
    const text = renderBounded(new Template("{{ strftime_now('%d %b %Y|%B %A %y %H:%M %%|%Q') }}"), {}) as string;
    const now = new Date();
    const [date, rest] = text.split('|');
    expect(date).toBe(`${String(now.getDate()).padStart(2, '0')} ${now.toLocaleString('en-US', { month: 'short' })} ${now.getFullYear()}`);
    expect(rest).toMatch(new RegExp(`^${now.toLocaleString('en-US', { month: 'long' })} \\w+day \\d\\d \\d\\d:\\d\\d %$`));
    expect(text.endsWith('|%Q')).toBe(true);
  });
});

describe('a chat template that never ends', () => {
  const cases: Record<string, string> = {
    'range(10**12)': '{% for i in range(10**12) %}x{% endfor %}',
    'nested loops of 10^5 x 10^5': '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}',
    'a loop over messages inside loops': '{% for a in range(2000) %}{% for b in range(2000) %}{% for m in messages %}{{ m.content }}{% endfor %}{% endfor %}{% endfor %}',
  };
  for (const [name, source] of Object.entries(cases)) {
    it(`${name}: a TokenizerError naming the limit, in seconds`, () => {
      const tok = withTemplate(source);
      const started = Date.now();
      let error: unknown;
      try {
        tok.renderChat([{ role: 'user', content: 'hi' }]);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TokenizerError);
      expect((error as Error).message).toMatch(/chat template was stopped: (it took more than 500,000 steps|range\(\) of [\d,]+ items went past the 500,000 steps it may take), so it likely loops without end/);
      expect(Date.now() - started).toBeLessThan(30_000);
    }, 60_000);
  }

  it('the time limit stops a template whose steps are slow', () => {
    // Each step upper-cases a long string: few steps, much time. A 50 ms limit stops it long before the step budget.
    const template = new Template('{% for i in range(100000) %}{% set x = messages[0].content | upper %}{% endfor %}');
    const items = { messages: [{ role: 'user', content: 'x'.repeat(100_000) }] };
    expect(() => renderBounded(template, items, { steps: 1e9, ms: 50 })).toThrow(/was stopped: it ran for more than 0.05 s/);
  });

  it('a template inside its limits still renders whole', () => {
    const template = new Template('{% for i in range(1000) %}{{ i % 10 }}{% endfor %}');
    expect((renderBounded(template, {}) as string).length).toBe(1000);
    expect(() => renderBounded(template, {}, { steps: 500, ms: 5000 })).toThrow(TokenizerError);
  });
});
