// What a reward model's scores are used for: ranking the sampled answers to one question (best-of-n), the rank
// groups of the paper's figure (over many questions, all answers ranked k-th form group k), and a mean reward per model.

export interface Ranked<T> {
  item: T;
  score: number;
  /** 1 is the best. */
  rank: number;
}

/** Highest score first; equal scores keep their sampled order. */
export function rankByScore<T>(items: T[], scores: number[]): Ranked<T>[] {
  return items.map((item, i) => ({ item, score: scores[i], i })).sort((a, b) => b.score - a.score || a.i - b.i).map(({ item, score }, k) => ({ item, score, rank: k + 1 }));
}

export interface RankGroup {
  rank: number;
  answers: number;
  meanScore: number;
  /** Mean of a second measure of the same answers (a judge's score, the answer's length), when given. */
  meanOther: number | null;
}

/**
 * Per question, answers ranked by reward; group k holds every question's k-th answer. `other` (same shape as
 * `scores`) is averaged per group too: the paper's figure shows a judge's score per reward-rank group.
 */
export function rankGroups(scores: number[][], other?: number[][]): RankGroup[] {
  const groups: { n: number; s: number; o: number; on: number }[] = [];
  scores.forEach((qs, q) => {
    rankByScore(qs.map((_, i) => i), qs).forEach(({ item: i, score }, k) => {
      const g = (groups[k] ??= { n: 0, s: 0, o: 0, on: 0 });
      g.n++;
      g.s += score;
      const o = other?.[q]?.[i];
      if (o !== undefined && Number.isFinite(o)) { g.o += o; g.on++; }
    });
  });
  return groups.map((g, k) => ({ rank: k + 1, answers: g.n, meanScore: g.s / g.n, meanOther: g.on ? g.o / g.on : null }));
}

export interface ModelReward {
  model: string;
  answers: number;
  mean: number;
  /** Share of questions where this model's answer scored highest among the models (ties count for each). */
  bestShare: number;
}

/** Mean reward per model, and how often each model's answer was the best of the models on the same question. */
export function rewardByModel(scored: { id: string; model: string; score: number }[]): ModelReward[] {
  const models = new Map<string, { n: number; s: number; best: number }>();
  const byQuestion = new Map<string, { model: string; score: number }[]>();
  for (const r of scored) {
    const m = models.get(r.model) ?? { n: 0, s: 0, best: 0 };
    m.n++;
    m.s += r.score;
    models.set(r.model, m);
    byQuestion.set(r.id, [...(byQuestion.get(r.id) ?? []), r]);
  }
  for (const answers of byQuestion.values()) {
    if (answers.length < 2) continue;
    const top = Math.max(...answers.map((a) => a.score));
    for (const a of answers) if (a.score === top) models.get(a.model)!.best++;
  }
  const questions = [...byQuestion.values()].filter((a) => a.length >= 2).length;
  return [...models.entries()].map(([model, m]) => ({ model, answers: m.n, mean: m.s / m.n, bestShare: questions ? m.best / questions : 0 })).sort((a, b) => b.mean - a.mean);
}
