// Links that open a set-up playground: parsed into sources and written back, the same set-up both ways.

import { describe, expect, it } from 'vitest';
import { makeLink, parseLink } from '../../src/ui/link.js';

describe('links', () => {
  it('reads model, repeated adapters, view and prompt', () => {
    const { link, problems } = parseLink('?model=HuggingFaceTB/SmolLM2-135M-Instruct@v1&adapter=org/lora&adapter=https://x.org/a/&adapter=my%20run&adapter=builtin:demo-short&view=chat&prompt=Hi%20there');
    expect(problems).toEqual([]);
    expect(link.model).toEqual({ kind: 'hf', repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'v1' });
    expect(link.adapters.map((a) => a.source)).toEqual([
      { kind: 'hf', repo: 'org/lora', revision: undefined },
      { kind: 'url', url: 'https://x.org/a/' },
      { kind: 'kept', name: 'my run' },
      { kind: 'builtin', name: 'demo-short' },
    ]);
    expect(link.view).toBe('playground');
    expect(link.prompt).toBe('Hi there');
  });

  it('names what it cannot read', () => {
    const { problems } = parseLink('?model=../etc/passwd&view=nowhere');
    expect(problems.map((p) => p.param)).toEqual(['model', 'view']);
    const bad = parseLink('?adapter=builtin:demo-zh&strength=3&temperature=-5&top_k=1000&max_tokens=999999&seed=0x10').problems;
    expect(bad.map((p) => `${p.param}=${p.value} ${p.why}`)).toEqual([
      'strength=3 is not a number from 0 to 2', 'temperature=-5 is not a number from 0 to 2', 'top_k=1000 is not an integer from 0 to 64',
      'max_tokens=999999 is not an integer from 1 to 4096', 'seed=0x10 is not an integer from 0 to 4294967295',
    ]);
  });

  it('writes the set-up back as a link that reads the same', () => {
    const made = makeLink('https://lab.example/', {
      model: { kind: 'hf', repo: 'org/m', revision: 'main' },
      adapters: [{ source: { kind: 'kept', name: 'run 1' } }, { source: { kind: 'url', url: 'https://x.org/a/' }, strength: 0.5 }],
      view: 'compare', prompt: 'Name three colors & why', sampling: { temperature: 0.7, topK: 20, maxNewTokens: 48, seed: 3 },
    });
    expect('url' in made).toBe(true);
    const { link } = parseLink(new URL((made as { url: string }).url).search);
    expect(link.model).toEqual({ kind: 'hf', repo: 'org/m', revision: undefined });
    expect(link.adapters.map((a) => [a.name, a.strength])).toEqual([['run 1', 1], ['https://x.org/a/', 0.5]]);
    expect(link.sampling).toEqual({ temperature: 0.7, topK: 20, maxNewTokens: 48, seed: 3 });
    expect(link.view).toBe('compare');
    expect(link.prompt).toBe('Name three colors & why');
    expect(makeLink('/', { model: { kind: 'files', files: [] }, adapters: [], view: 'playground', prompt: '' })).toHaveProperty('why');
    // A GGUF file of a repo round-trips.
    const gguf = makeLink('https://lab.example/', { model: { kind: 'hf', repo: 'org/m-GGUF', revision: 'v2', file: 'm-Q4_K_M.gguf' }, adapters: [], view: 'playground', prompt: '' });
    expect(parseLink(new URL((gguf as { url: string }).url).search).link.model).toEqual({ kind: 'hf', repo: 'org/m-GGUF', revision: 'v2', file: 'm-Q4_K_M.gguf' });
  });
});
