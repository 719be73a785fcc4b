// The --out file of lora-lab eval: a first line with what the results were made with (model and its weights'
// fingerprint, precision, each adapter's weights, set, prompt format and decoding settings), then one result per
// line. Resuming reads it back strictly: every line must be a result as eval writes it (a torn last line, from a
// run killed mid-write, is skipped), and the settings must be the run's, or the command says which one differs.

import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../lib/errors.js';
import type { ExampleResult } from '../lib/eval/metrics.js';

export const EVAL_OUT_FORMAT = 'lora-lab-eval';

export interface EvalOutSettings {
  model: string;
  fingerprint: string;
  precision: string;
  set: string;
  format: string;
  maxNewTokens: number;
  temperature: number;
  seed: number;
  loss: boolean;
  stem: boolean;
  /** Each model's label and, for an adapter, the SHA-256 of its weights. */
  models: Record<string, string | null>;
}

const bad = (path: string, line: number, why: string) => new InvalidArgumentError(`--out ${path}, line ${line}: ${why}. It is not a results file lora-lab eval wrote (or it was edited): give a new --out.`, { option: 'out', line });

function checkResult(o: unknown, path: string, line: number): ExampleResult {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(path, line, 'not a result object');
  const r = o as Record<string, unknown>;
  for (const k of ['id', 'model', 'prediction', 'stopReason'] as const) if (typeof r[k] !== 'string') throw bad(path, line, `its "${k}" is not text`);
  if (!(Number.isInteger(r.predictionTokens) && (r.predictionTokens as number) >= 0)) throw bad(path, line, 'its "predictionTokens" is not a count');
  if (r.reference !== undefined && typeof r.reference !== 'string') throw bad(path, line, 'its "reference" is not text');
  if (r.rougeL !== undefined && !(typeof r.rougeL === 'number' && r.rougeL >= 0 && r.rougeL <= 1)) throw bad(path, line, `its ROUGE-L ${JSON.stringify(r.rougeL)} is not in [0, 1]`);
  if (r.nll !== undefined && !(typeof r.nll === 'number' && Number.isFinite(r.nll) && r.nll >= 0)) throw bad(path, line, `its loss ${JSON.stringify(r.nll)} is not a finite number >= 0`);
  if (r.lossTokens !== undefined && !(Number.isInteger(r.lossTokens) && (r.lossTokens as number) >= 0)) throw bad(path, line, 'its "lossTokens" is not a count');
  return r as unknown as ExampleResult;
}

/** The settings line and the results of an --out file (a torn last line skipped); throws on anything else. */
export function readEvalOut(path: string): { settings: EvalOutSettings | null; results: ExampleResult[] } {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  let settings: EvalOutSettings | null = null;
  const results: ExampleResult[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch {
      if (i === torn) return; // a run killed mid-write
      throw bad(path, i + 1, 'not JSON');
    }
    if (i === 0 && typeof o === 'object' && o !== null && (o as { type?: unknown }).type === EVAL_OUT_FORMAT) {
      settings = (o as { settings: EvalOutSettings }).settings;
      return;
    }
    if (i === 0 && text.trim()) throw bad(path, 1, `the first line is not the settings line of an eval (${EVAL_OUT_FORMAT})`);
    results.push(checkResult(o, path, i + 1));
  });
  return { settings, results };
}

export function settingsLine(s: EvalOutSettings): string {
  return JSON.stringify({ type: EVAL_OUT_FORMAT, version: 1, settings: s }) + '\n';
}

/** Resuming under other settings would mix results: the first difference is named. */
export function checkResume(path: string, kept: EvalOutSettings, now: EvalOutSettings): void {
  const names: [keyof EvalOutSettings, string][] = [
    ['fingerprint', 'the model\'s weights'], ['precision', '--precision'], ['set', '--set'], ['format', '--format'], ['maxNewTokens', '--max-new-tokens'],
    ['temperature', '--temperature'], ['seed', '--seed'], ['loss', '--no-loss'], ['stem', '--stem'],
  ];
  for (const [k, what] of names) {
    if (JSON.stringify(kept[k]) !== JSON.stringify(now[k])) {
      throw new InvalidArgumentError(`--out ${path} holds results made with ${what} ${JSON.stringify(kept[k])}, not ${JSON.stringify(now[k])}${k === 'fingerprint' ? ` (model ${kept.model})` : ''}: resuming would mix them. Run with the same settings, or give a new --out.`, { option: 'out', setting: k });
    }
  }
  for (const [label, sha] of Object.entries(now.models)) {
    if (label in kept.models && kept.models[label] !== sha) {
      throw new InvalidArgumentError(`--out ${path} holds results of ${label} made with other adapter weights: resuming would mix them. Give a new --out, or the adapter it was made with.`, { option: 'out', setting: 'models' });
    }
  }
}
