import { describe, expect, it } from 'vitest';
import { rankByScore, rankGroups, rewardByModel } from '../../src/lib/reward/rank.js';

describe('ranking by reward', () => {
  it('puts the highest score first and keeps the sampled order among equal scores', () => {
    expect(rankByScore(['a', 'b', 'c', 'd'], [0.1, 2, 0.1, -1])).toEqual([
      { item: 'b', score: 2, rank: 1 }, { item: 'a', score: 0.1, rank: 2 }, { item: 'c', score: 0.1, rank: 3 }, { item: 'd', score: -1, rank: 4 },
    ]);
  });
  it("groups every question's k-th ranked answer, with a second measure averaged per group (the paper's figure)", () => {
    // Two questions, three answers each; `other` is a judge's score of the same answers.
    const g = rankGroups([[1, 3, 2], [0, -1, 5]], [[6, 9, 7], [5, 4, 8]]);
    expect(g).toEqual([
      { rank: 1, answers: 2, meanScore: 4, meanOther: 8.5 },
      { rank: 2, answers: 2, meanScore: 1, meanOther: 6 },
      { rank: 3, answers: 2, meanScore: 0, meanOther: 5 },
    ]);
    expect(rankGroups([[1, 2]])[0].meanOther).toBeNull();
  });
  it('gives each model its mean reward and how often it was best on a question', () => {
    const rows = rewardByModel([
      { id: 'q1', model: 'base', score: 1 }, { id: 'q1', model: 'lora', score: 2 },
      { id: 'q2', model: 'base', score: 3 }, { id: 'q2', model: 'lora', score: 3 },
      { id: 'q3', model: 'lora', score: 9 }, // answered by one model only: no comparison
    ]);
    expect(rows).toEqual([
      { model: 'lora', answers: 3, mean: 14 / 3, bestShare: 1 },
      { model: 'base', answers: 2, mean: 2, bestShare: 0.5 },
    ]);
  });
});
