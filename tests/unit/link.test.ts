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
  });

  it('writes the set-up back as a link that reads the same', () => {
    const made = makeLink('https://lab.example/', {
      model: { kind: 'hf', repo: 'org/m', revision: 'main' },
      adapters: [{ kind: 'kept', name: 'run 1' }, { kind: 'url', url: 'https://x.org/a/' }],
      view: 'compare', prompt: 'Name three colors & why',
    });
    expect('url' in made).toBe(true);
    const { link } = parseLink(new URL((made as { url: string }).url).search);
    expect(link.model).toEqual({ kind: 'hf', repo: 'org/m', revision: undefined });
    expect(link.adapters.map((a) => a.name)).toEqual(['run 1', 'https://x.org/a/']);
    expect(link.view).toBe('compare');
    expect(link.prompt).toBe('Name three colors & why');
    expect(makeLink('/', { model: { kind: 'files', files: [] }, adapters: [], view: 'playground', prompt: '' })).toHaveProperty('why');
    // A GGUF file of a repo round-trips.
    const gguf = makeLink('https://lab.example/', { model: { kind: 'hf', repo: 'org/m-GGUF', revision: 'v2', file: 'm-Q4_K_M.gguf' }, adapters: [], view: 'playground', prompt: '' });
    expect(parseLink(new URL((gguf as { url: string }).url).search).link.model).toEqual({ kind: 'hf', repo: 'org/m-GGUF', revision: 'v2', file: 'm-Q4_K_M.gguf' });
  });
});
