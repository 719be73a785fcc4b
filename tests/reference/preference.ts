// Float64 references of the preference objectives on the autodiff tape, written from TRL's definitions:
//   DPOTrainer (sigmoid loss): logits = (pi_c - pi_r) - (ref_c - ref_r) of summed log-probs;
//     loss = -logsigmoid(beta logits) (1 - eps) - logsigmoid(-beta logits) eps
//   ORPOTrainer.odds_ratio_loss: of mean log-probs c, r: log_odds = (c - r) - (log1p(-exp(c)) - log1p(-exp(r)));
//     loss = nll(chosen, a mean over the chosen tokens) - beta logsigmoid(log_odds)
//   CPOTrainer, loss_type "simpo": logits = (c - r) - gamma / beta; loss as DPO's with beta logits
// Sequences come in pairs: 2p chosen, 2p + 1 rejected. The loss is the mean over the pairs.

import type { Tape } from './autodiff.js';

export interface RefPreference {
  objective: 'dpo' | 'orpo' | 'simpo';
  beta: number;
  labelSmoothing: number;
  gamma: number;
  /** DPO: each pair's reference log-probabilities. */
  reference?: { chosen: number; rejected: number }[];
}

const logSigmoid = (t: Tape, x: number) => t.scale(t.log(t.addConst(t.exp(t.scale(x, -1)), 1)), -1);
const smoothed = (t: Tape, u: number, eps: number) => t.add(t.scale(logSigmoid(t, u), -(1 - eps)), t.scale(logSigmoid(t, t.scale(u, -1)), -eps));

/** The objective's loss node from each sequence's token losses (-log p), and its value per pair as logged metrics need. */
export function preferenceLoss(o: RefPreference) {
  return (t: Tape, perSequence: number[][]): number => {
    const pairs = perSequence.length / 2;
    const logp = (s: number) => t.scale(t.sum(perSequence[s]), -1);
    const mean = (s: number) => t.scale(logp(s), 1 / perSequence[s].length);
    const losses: number[] = [];
    let nll: number | null = null;
    for (let p = 0; p < pairs; p++) {
      if (o.objective === 'dpo') {
        const ref = o.reference![p];
        const logits = t.addConst(t.sub(logp(2 * p), logp(2 * p + 1)), -(ref.chosen - ref.rejected));
        losses.push(smoothed(t, t.scale(logits, o.beta), o.labelSmoothing));
      } else if (o.objective === 'simpo') {
        const logits = t.addConst(t.sub(mean(2 * p), mean(2 * p + 1)), -o.gamma / o.beta);
        losses.push(smoothed(t, t.scale(logits, o.beta), o.labelSmoothing));
      } else {
        const c = mean(2 * p);
        const r = mean(2 * p + 1);
        const log1mexp = (x: number) => t.log(t.addConst(t.scale(t.exp(x), -1), 1));
        const logOdds = t.sub(t.sub(c, r), t.sub(log1mexp(c), log1mexp(r)));
        losses.push(t.scale(logSigmoid(t, logOdds), -o.beta));
      }
    }
    if (o.objective === 'orpo') {
      // TRL's cross-entropy over the batch's chosen tokens: their mean.
      const chosen = Array.from({ length: pairs }, (_, p) => perSequence[2 * p]).flat();
      nll = t.scale(t.sum(chosen), 1 / chosen.length);
    }
    const mean0 = t.scale(t.sum(losses), 1 / pairs);
    return nll === null ? mean0 : t.add(mean0, nll);
  };
}
