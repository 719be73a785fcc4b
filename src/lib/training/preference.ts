// Preference objectives on chosen/rejected pairs, as TRL defines them (DPOTrainer's sigmoid loss, ORPOTrainer's odds
// ratio, CPOTrainer's SimPO), written per pair in float64 from the sequences' log-probabilities:
//   DPO:   u = beta ((pc - rc) - (pr - rr)) of summed log-probs (policy p, reference r);
//          loss = -(1 - eps) logsigmoid(u) - eps logsigmoid(-u)
//   ORPO:  x = (c - r) - (log(1 - e^c) - log(1 - e^r)) of mean log-probs; loss = -beta logsigmoid(x), plus the chosen
//          answers' NLL (mean over their tokens), added by the trainer
//   SimPO: u = beta (c - r) - gamma of mean log-probs; loss as DPO's
// Each gives dLoss / d(summed log-prob) of both sequences: the trainer weighs each sequence's token gradients by it
// (kernels/train/cross-entropy.ts, per-row weights). Metrics keep TRL's logged names.

import { InvalidArgumentError } from '../errors.js';

export const PREFERENCE_OBJECTIVES = ['dpo', 'orpo', 'simpo'] as const;
export type PreferenceObjective = (typeof PREFERENCE_OBJECTIVES)[number];

export interface PreferenceConfig {
  objective: PreferenceObjective;
  /** DPO's and SimPO's beta; ORPO's lambda (TRL names it beta too). */
  beta: number;
  /** DPO and SimPO: the conservative loss's label smoothing (0: plain sigmoid loss). */
  labelSmoothing: number;
  /** SimPO's target margin gamma. */
  gamma: number;
}

/** TRL's defaults: DPOConfig beta 0.1, ORPOConfig beta 0.1, CPOConfig beta 0.1 with simpo_gamma 0.5. */
export const PREFERENCE_DEFAULTS: Record<PreferenceObjective, PreferenceConfig> = {
  dpo: { objective: 'dpo', beta: 0.1, labelSmoothing: 0, gamma: 0 },
  orpo: { objective: 'orpo', beta: 0.1, labelSmoothing: 0, gamma: 0 },
  simpo: { objective: 'simpo', beta: 0.1, labelSmoothing: 0, gamma: 0.5 },
};

export function validatePreferenceConfig(c: PreferenceConfig): void {
  if (!PREFERENCE_OBJECTIVES.includes(c.objective)) throw new InvalidArgumentError(`objective "${c.objective}" is not one of ${PREFERENCE_OBJECTIVES.join(', ')}`, { field: 'objective' });
  if (!(c.beta > 0 && Number.isFinite(c.beta))) throw new InvalidArgumentError(`beta ${c.beta} is invalid: make sure it is a number > 0 (TRL's default is 0.1)`, { field: 'beta' });
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 0.5)) throw new InvalidArgumentError(`label smoothing ${c.labelSmoothing} is invalid: make sure 0 <= it < 0.5`, { field: 'labelSmoothing' });
  if (!(c.gamma >= 0 && Number.isFinite(c.gamma))) throw new InvalidArgumentError(`gamma ${c.gamma} is invalid: make sure it is a number >= 0`, { field: 'gamma' });
}

/** One pair's log-probabilities: the policy's summed over each answer's tokens, and (DPO) the reference model's. */
export interface PairLogps {
  chosen: number;
  rejected: number;
  chosenTokens: number;
  rejectedTokens: number;
  refChosen?: number;
  refRejected?: number;
}

/** TRL's logged metrics of one pair (a step's are their means). */
export type PreferenceMetrics = Record<'rewards/chosen' | 'rewards/rejected' | 'rewards/accuracies' | 'rewards/margins' | 'logps/chosen' | 'logps/rejected', number> & Partial<Record<'log_odds_ratio' | 'log_odds_chosen', number>>;

export interface PairLoss {
  loss: number;
  /** dLoss / d(summed log-prob) of the chosen and of the rejected answer. */
  dChosen: number;
  dRejected: number;
  metrics: PreferenceMetrics;
}

/** log sigmoid(x), stable at both ends. */
export function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** -(1 - eps) logsigmoid(u) - eps logsigmoid(-u), and its derivative by u. */
function smoothedSigmoidLoss(u: number, eps: number): { loss: number; dU: number } {
  return { loss: -(1 - eps) * logSigmoid(u) - eps * logSigmoid(-u), dU: -(1 - eps) * sigmoid(-u) + eps * sigmoid(u) };
}

export function pairLoss(c: PreferenceConfig, p: PairLogps): PairLoss {
  if (p.chosenTokens < 1 || p.rejectedTokens < 1) throw new InvalidArgumentError('A preference pair needs at least one answer token on each side.');
  if (c.objective === 'dpo') {
    if (p.refChosen === undefined || p.refRejected === undefined) throw new Error('DPO needs the reference log-probabilities');
    const rc = c.beta * (p.chosen - p.refChosen);
    const rr = c.beta * (p.rejected - p.refRejected);
    const { loss, dU } = smoothedSigmoidLoss(rc - rr, c.labelSmoothing);
    return { loss, dChosen: c.beta * dU, dRejected: -c.beta * dU, metrics: metrics(rc, rr, p.chosen, p.rejected) };
  }
  const ac = p.chosen / p.chosenTokens;
  const ar = p.rejected / p.rejectedTokens;
  if (c.objective === 'simpo') {
    const { loss, dU } = smoothedSigmoidLoss(c.beta * (ac - ar) - c.gamma, c.labelSmoothing);
    return { loss, dChosen: (c.beta * dU) / p.chosenTokens, dRejected: (-c.beta * dU) / p.rejectedTokens, metrics: metrics(c.beta * ac, c.beta * ar, ac, ar) };
  }
  // ORPO: log odds(y) = log(p / (1 - p)) of the mean log-prob; log(1 - e^a) as log(-expm1(a)).
  const x = ac - ar - (Math.log(-Math.expm1(ac)) - Math.log(-Math.expm1(ar)));
  const ratio = logSigmoid(x);
  const dX = -c.beta * sigmoid(-x);
  return {
    loss: -c.beta * ratio,
    dChosen: (dX * (-1 / Math.expm1(ac))) / p.chosenTokens,
    dRejected: (dX * (1 / Math.expm1(ar))) / p.rejectedTokens,
    metrics: { ...metrics(c.beta * ac, c.beta * ar, ac, ar), log_odds_ratio: ratio, log_odds_chosen: x },
  };
}

function metrics(rewardChosen: number, rewardRejected: number, logpChosen: number, logpRejected: number): PreferenceMetrics {
  return {
    'rewards/chosen': rewardChosen, 'rewards/rejected': rewardRejected,
    'rewards/accuracies': rewardChosen > rewardRejected ? 1 : 0, 'rewards/margins': rewardChosen - rewardRejected,
    'logps/chosen': logpChosen, 'logps/rejected': logpRejected,
  };
}
