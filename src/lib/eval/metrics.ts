// Per-example results and their summaries, as the paper reports them: ROUGE-L F overall and by the reference answer's
// length in words (0-2, 3-5, 6-10, >10, the buckets of its Unnatural Instructions table), teacher-forced loss and
// perplexity (token-weighted over all scored answer tokens), and the lengths of the answers.

export interface ExampleResult {
  /** Example id within the set. */
  id: string;
  /** The model's label: 'base' or `${adapter}@${strength}`. */
  model: string;
  prediction: string;
  reference?: string;
  /** ROUGE-L F of the prediction against the reference. */
  rougeL?: number;
  /** Teacher-forced NLL summed over the reference's scored tokens, and their count. */
  nll?: number;
  lossTokens?: number;
  predictionTokens: number;
  stopReason: string;
  /** A reward model's score of the answer (higher is better), and which reward model gave it. */
  reward?: number;
  rewardModel?: string;
}

export interface Bucket { label: string; min: number; max: number }
export const LENGTH_BUCKETS: readonly Bucket[] = [
  { label: '0-2', min: 0, max: 2 }, { label: '3-5', min: 3, max: 5 }, { label: '6-10', min: 6, max: 10 }, { label: '>10', min: 11, max: Infinity },
];

/** Words as the paper counts answer length: whitespace-separated. */
export function wordCount(text: string): number {
  const t = text.trim();
  return t ? t.split(/\s+/).length : 0;
}

export function bucketOf(words: number): string {
  return LENGTH_BUCKETS.find((b) => words >= b.min && words <= b.max)!.label;
}

export interface ModelSummary {
  model: string;
  examples: number;
  /** Mean ROUGE-L F over examples with a reference (null when none has one). */
  rougeL: number | null;
  byBucket: { label: string; examples: number; rougeL: number | null }[];
  /** Token-weighted mean NLL over all scored reference tokens, and its exponential. */
  loss: number | null;
  perplexity: number | null;
  lossTokens: number;
  answerWords: { mean: number; median: number; p90: number };
  answerTokens: { mean: number };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}

export function summarize(results: ExampleResult[], model: string): ModelSummary {
  const mine = results.filter((r) => r.model === model);
  const scored = mine.filter((r) => r.rougeL !== undefined && r.reference !== undefined);
  const byBucket = LENGTH_BUCKETS.map((b) => {
    const inside = scored.filter((r) => bucketOf(wordCount(r.reference!)) === b.label);
    return { label: b.label, examples: inside.length, rougeL: inside.length ? mean(inside.map((r) => r.rougeL!)) : null };
  });
  const withLoss = mine.filter((r) => r.nll !== undefined && r.lossTokens);
  const lossTokens = withLoss.reduce((a, r) => a + r.lossTokens!, 0);
  const loss = lossTokens ? withLoss.reduce((a, r) => a + r.nll!, 0) / lossTokens : null;
  const words = mine.map((r) => wordCount(r.prediction));
  return {
    model, examples: mine.length,
    rougeL: scored.length ? mean(scored.map((r) => r.rougeL!)) : null,
    byBucket, loss, perplexity: loss === null ? null : Math.exp(loss), lossTokens,
    answerWords: { mean: mean(words), median: quantile(words, 0.5), p90: quantile(words, 0.9) },
    answerTokens: { mean: mean(mine.map((r) => r.predictionTokens)) },
  };
}
