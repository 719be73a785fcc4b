// ROUGE-L against hand-worked cases and against the step-by-step reference of rouge-score (tests/reference/rouge.ts).

import { describe, expect, it } from 'vitest';
import { lcsLength, rougeL, rougeTokens } from '../../src/lib/eval/rouge.js';
import { Rng } from '../../src/lib/util/rng.js';
import { referenceRougeL, referenceTokenize } from '../reference/rouge.js';

describe('ROUGE-L', () => {
  it('tokenizes as rouge-score: lowercase, non-alphanumerics split, non-ASCII letters dropped', () => {
    expect(rougeTokens('Hello, World! It\'s 3.14')).toEqual(['hello', 'world', 'it', 's', '3', '14']);
    expect(rougeTokens('café au lait, naïve')).toEqual(['caf', 'au', 'lait', 'na', 've']);
    expect(rougeTokens('机器学习')).toEqual([]);
    expect(rougeTokens('  \n\t ')).toEqual([]);
    expect(rougeTokens('running quickly', true)).toEqual(['run', 'quickli']);
  });

  it('hand-worked scores', () => {
    const close = (s: { precision: number; recall: number; fmeasure: number }, p: number, r: number, f: number) => {
      expect(s.precision).toBeCloseTo(p, 12); expect(s.recall).toBeCloseTo(r, 12); expect(s.fmeasure).toBeCloseTo(f, 12);
    };
    close(rougeL('the cat sat on the mat', 'the cat sat on the mat'), 1, 1, 1);
    close(rougeL('the cat sat on the mat', 'the cat on the mat'), 1, 5 / 6, 10 / 11);   // one word missing
    close(rougeL('a a a', 'a'), 1, 1 / 3, 0.5);                                         // repeated words count once each
    close(rougeL('a b c d', 'd c b a'), 1 / 4, 1 / 4, 1 / 4);                           // order matters: LCS 1
    close(rougeL('a b', 'b a'), 0.5, 0.5, 0.5);                                         // a tie between two LCS choices
    close(rougeL('Hello, world!', 'hello world'), 1, 1, 1);                             // punctuation and case ignored
    close(rougeL('', 'anything'), 0, 0, 0);
    close(rougeL('anything', '...'), 0, 0, 0);                                          // nothing left after tokenizing
    close(rougeL('x y', 'p q'), 0, 0, 0);
    expect(lcsLength(['a', 'b', 'c', 'b', 'd', 'a', 'b'], ['b', 'd', 'c', 'a', 'b', 'a'])).toBe(4); // CLRS' example
  });

  it('equals the step-by-step reference to 1e-9 on 300 generated pairs, long texts included', () => {
    const rng = new Rng(2023);
    const vocab = ['the', 'a', 'model', 'LoRA', 'GPU', 'answer', 'is', 'of', 'and', '42', 'é', 'naïve', 'x-y', "don't", '!', ',', 'Ünïcode', '中文', 'cat', 'sat'];
    const text = (n: number) => Array.from({ length: n }, () => vocab[Math.floor(rng.next() * vocab.length)]).join(rng.next() < 0.5 ? ' ' : '  ');
    for (let i = 0; i < 300; i++) {
      const long = i % 50 === 0;
      const t = text(long ? 1500 : Math.floor(rng.next() * 30));
      const p = text(long ? 1200 : Math.floor(rng.next() * 30));
      expect(rougeTokens(t)).toEqual(referenceTokenize(t));
      const a = rougeL(t, p);
      const e = referenceRougeL(t, p);
      for (const k of ['precision', 'recall', 'fmeasure'] as const) expect(Math.abs(a[k] - e[k])).toBeLessThanOrEqual(1e-9);
    }
  });
});
