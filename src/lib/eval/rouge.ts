// ROUGE-L as Google's `rouge-score` package computes it by default (rouge_scorer.RougeScorer(['rougeL'])):
//   tokens: lowercase, every run of characters outside [a-z0-9] becomes a space, split on whitespace, keep tokens
//           matching ^[a-z0-9]+$ (so non-ASCII letters are dropped, as there); optional Porter stemming of tokens longer
//           than 3 characters (off by default, as there; `stemmer` implements Porter's 1980 rules, where NLTK's default
//           adds its own extensions, so stemmed scores can differ on a few words);
//   score:  LCS length of the token lists; precision = lcs / |prediction|, recall = lcs / |target|,
//           F = 2PR / (P + R) (0 when either list is empty or P + R = 0).

import { stemmer } from 'stemmer';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export function rougeTokens(text: string, stem = false): string[] {
  const spaced = text.toLowerCase().replace(/[^a-z0-9]+/g, ' ');
  let tokens = spaced.split(/\s+/);
  if (stem) tokens = tokens.map((t) => (t.length > 3 ? stemmer(t) : t));
  return tokens.filter((t) => /^[a-z0-9]+$/.test(t));
}

/** Length of the longest common subsequence, in O(|a|·|b|) time and O(|b|) memory. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint32Array(b.length + 1);
  let row = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      row[j] = ai === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
    }
    [prev, row] = [row, prev];
  }
  return prev[b.length];
}

/** ROUGE-L of `prediction` against `target` (the argument order of rouge-score's `score(target, prediction)`). */
export function rougeL(target: string, prediction: string, opts: { stem?: boolean } = {}): RougeScore {
  const t = rougeTokens(target, opts.stem);
  const p = rougeTokens(prediction, opts.stem);
  if (t.length === 0 || p.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsLength(t, p);
  const precision = lcs / p.length;
  const recall = lcs / t.length;
  return { precision, recall, fmeasure: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}
