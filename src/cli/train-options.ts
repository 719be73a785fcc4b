// What `lora-lab train` and `lora-lab train --reward` share: the training settings read from the command line, the
// --out and --data checks made before any work, the signals that stop a run after its current step.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../lib/errors.js';
import { LORA_MODULES, type LoraModule } from '../lib/lora/peft.js';
import { recoverFolder, replaceFolder } from '../lib/store/atomic-node.js';
import { checkpointFiles, type CheckpointData } from '../lib/training/checkpoint-files.js';
import type { Checkpoint } from '../lib/training/trainer.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../lib/training/train-config.js';
import type { Options } from './args.js';

const builtinData = fileURLToPath(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url));

/** Files an adapter folder may hold besides the adapter itself; anything else means --out is someone's folder. */
const OUT_FILES = new Set(['adapter_config.json', 'adapter_model.safetensors', 'checkpoint', 'README.md']);

/** Checks --out before any work: a new folder under an existing one, or an adapter folder this command may replace. */
/** Checks --out before any work: a new folder under an existing one, or a folder holding only `own` files (which this
 * command may replace). */
export function checkOut(out: string, own: ReadonlySet<string> = OUT_FILES): void {
  recoverFolder(out);
  const parent = dirname(resolve(out));
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new InvalidArgumentError(`--out ${out}: the folder ${parent} does not exist; create it first.`);
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new InvalidArgumentError(`--out ${out} is a file, not a folder: give a new folder name (or an adapter folder to replace).`);
  const foreign = readdirSync(out).filter((n) => !own.has(n));
  if (foreign.length) {
    throw new InvalidArgumentError(`--out ${out} holds other files (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}) and would be replaced as a whole: give a new folder, or one this command wrote.`);
  }
}

export function readData(dataText: string): { bytes: Uint8Array; path: string; sha256: string } {
  const path = dataText === 'builtin' ? builtinData : dataText;
  if (!existsSync(path) || !statSync(path).isFile()) throw new InvalidArgumentError(`--data ${dataText}: no such file.`);
  const bytes = new Uint8Array(readFileSync(path));
  return { bytes, path, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The TrainConfig fields given on the command line (the rest come from the defaults or the checkpoint). */
export function trainSettings(args: Options): Partial<TrainConfig> {
  const c: Partial<TrainConfig> = {};
  const stepsGiven = args.has('steps');
  if (stepsGiven && args.has('epochs')) throw new InvalidArgumentError('Give --steps or --epochs, not both.');
  if (stepsGiven) { c.steps = args.number('steps', 0, { min: 1, max: 10_000_000, integer: true }); c.epochs = 0; }
  if (args.has('epochs')) c.epochs = args.number('epochs', 0, { min: 0, max: 10_000, above: true });
  if (args.has('lr')) c.learningRate = args.number('lr', 0, { min: 0, max: 1, above: true, below: true });
  if (args.has('rank')) c.rank = args.number('rank', 0, { min: 1, max: 64, integer: true });
  if (args.has('alpha')) c.alpha = args.number('alpha', 0, { min: 0, max: 1e6, above: true });
  if (args.has('dropout')) c.dropout = args.number('dropout', 0, { min: 0, max: 1, below: true });
  const targets = args.list('targets', (t) => {
    if (!LORA_MODULES.includes(t as LoraModule)) throw new InvalidArgumentError(`--targets: "${t}" is not one of ${LORA_MODULES.join(', ')}.`);
    return t as LoraModule;
  });
  if (targets) c.targetModules = [...new Set(targets)];
  if (args.has('cutoff')) c.cutoff = args.number('cutoff', 0, { min: 2, max: 65536, integer: true });
  if (args.has('batch')) c.microBatch = args.number('batch', 0, { min: 1, max: 1024, integer: true });
  if (args.has('grad-accum')) c.gradAccumulation = args.number('grad-accum', 0, { min: 1, max: 1024, integer: true });
  c.warmupSteps = args.number('warmup', stepsGiven ? Math.min(DEFAULT_TRAIN_CONFIG.warmupSteps, Math.floor(c.steps! / 10)) : DEFAULT_TRAIN_CONFIG.warmupSteps, { min: 0, max: 10_000_000, integer: true });
  c.schedule = args.choice('schedule', ['cosine', 'linear', 'constant'] as const, DEFAULT_TRAIN_CONFIG.schedule);
  if (args.has('seed')) c.seed = args.number('seed', 0, { min: 0, max: 0xffffffff, integer: true });
  c.trainOnInputs = args.flag('train-on-inputs');
  if (args.has('val-fraction')) c.validationFraction = args.number('val-fraction', 0, { min: 0, max: 1, below: true });
  if (args.has('eval-every')) c.evalEvery = args.number('eval-every', 0, { min: 0, max: 10_000_000, integer: true });
  c.nonFinite = args.choice('on-non-finite', ['stop', 'skip'] as const, 'stop');
  return c;
}

/** SIGINT/SIGTERM stop after the current step, so the run writes its checkpoint and exits; a second signal: now. */
export function stopOnSignals(json: boolean, then = 'writing a checkpoint'): { signal: AbortSignal; received: () => NodeJS.Signals | null; dispose: () => void } {
  const stop = new AbortController();
  let received: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) process.exit(sig === 'SIGINT' ? 130 : 143);
    received = sig;
    if (!json) process.stderr.write(`\n${sig}: stopping after this step and ${then} (again to quit now)\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    received: () => received,
    dispose: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); },
  };
}

export const round = (x: number, k = 2) => Math.round(x * 10 ** k) / 10 ** k;

/**
 * A checkpoint written to --out, whole or not at all: the adapter at its step (loadable as it is) with the training
 * state in <out>/checkpoint for --resume. Returns the writer the run calls at each checkpoint.
 */
export function checkpointWriter(out: string, data: CheckpointData, emit: (o: Record<string, unknown>, text: string) => void): (c: Checkpoint) => void {
  return (c) => {
    const folder = new Map([['adapter_config.json', new TextEncoder().encode(c.peft.config)], ['adapter_model.safetensors', c.peft.safetensors]]);
    for (const [f, b] of checkpointFiles(c, data)) folder.set(`checkpoint/${f}`, b);
    replaceFolder(out, folder);
    emit({ type: 'checkpoint', step: c.step, out }, `checkpoint at step ${c.step} written to ${out}`);
  };
}
