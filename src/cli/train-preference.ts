// lora-lab train --objective dpo|orpo|simpo: a LoRA adapter tuned on preference pairs (TRL's {prompt, chosen,
// rejected} JSON/JSONL, or the paper's comparison data and the app's vote export), written crash-safe to --out with
// its checkpoint as a LoRA run is, resumable with --resume. DPO's reference is the base (adapter off) or
// --ref-adapter DIR (frozen); --start-from DIR tunes an existing adapter further. --json prints TRL's metric names.

import { basename, resolve } from 'node:path';
import { parsePreferenceData } from '../lib/data/preference-data.js';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { sameModel } from '../lib/model/fingerprint.js';
import type { CheckpointData } from '../lib/training/checkpoint-files.js';
import { PREFERENCE_OBJECTIVES, type PreferenceObjective } from '../lib/training/preference.js';
import type { PreferenceCheckpoint } from '../lib/training/preference-trainer.js';
import type { Checkpoint } from '../lib/training/trainer.js';
import type { TrainConfig } from '../lib/training/train-config.js';
import { precisionOf, type Options } from './args.js';
import { openSource } from './sources.js';
import { checkOut, checkpointWriter, readData, round, stopOnSignals } from './train-options.js';

export interface PreferencePlan {
  out: string;
  modelText: string;
  dataText: string;
  config: Partial<TrainConfig>;
  format: 'alpaca' | 'chat';
  resume?: { checkpoint: Checkpoint; data: CheckpointData };
}

/** --beta, --label-smoothing, --gamma as given (the objective's TRL defaults for the rest). */
function preferenceSettings(args: Options): { beta?: number; labelSmoothing?: number; gamma?: number } {
  return {
    ...(args.has('beta') ? { beta: args.number('beta', 0, { min: 0, max: 1e4, above: true }) } : {}),
    ...(args.has('label-smoothing') ? { labelSmoothing: args.number('label-smoothing', 0, { min: 0, max: 0.5, below: true }) } : {}),
    ...(args.has('gamma') ? { gamma: args.number('gamma', 0, { min: 0, max: 1e4 }) } : {}),
  };
}

export async function trainPreferenceCommand(args: Options, plan: PreferencePlan): Promise<number> {
  const json = args.flag('json');
  const emit = (o: Record<string, unknown>, text: string) => process.stdout.write((json ? JSON.stringify(o) : text) + '\n');
  const resume = plan.resume?.checkpoint.preference ? plan.resume as { checkpoint: PreferenceCheckpoint; data: CheckpointData } : undefined;
  const objective = (resume?.checkpoint.preference.objective ?? args.choice('objective', PREFERENCE_OBJECTIVES, 'dpo')) as PreferenceObjective;
  if (resume && (args.has('objective') || args.has('beta') || args.has('label-smoothing') || args.has('gamma'))) throw new InvalidArgumentError('--resume continues a run with the objective of its checkpoint: drop --objective, --beta, --label-smoothing and --gamma.');
  if (objective !== 'dpo' && args.has('ref-adapter')) throw new InvalidArgumentError(`--ref-adapter is DPO's reference; ${objective} has none: drop it.`);
  const { out } = plan;
  checkOut(out);
  const data = readData(plan.dataText);
  if (resume && data.sha256 !== resume.data.sha256) throw new InvalidArgumentError(`--data ${data.path} is not the file this run was trained on (its SHA-256 differs): resume with the same pairs file.`);
  const parsed = parsePreferenceData(new TextDecoder().decode(data.bytes), basename(data.path));

  const engine = new Engine(await createNodeGpu({ forceF32: args.flag('f32') }), { contextLength: Math.max(256, plan.config.cutoff ?? 256), slots: 2 });
  const info = await engine.load(await openSource(plan.modelText, args, 'model', json), undefined, undefined, { precision: precisionOf(args) });
  if (resume && !sameModel({ model: resume.checkpoint.baseModel, fingerprint: resume.checkpoint.baseFingerprint }, info)) {
    throw new InvalidArgumentError(`The checkpoint in ${out} was trained on ${resume.checkpoint.baseModel}, not ${info.modelId}: give --model ${resume.checkpoint.baseModel}.`);
  }
  const refDir = args.string('ref-adapter');
  const wantedRef = resume?.checkpoint.preference.referenceAdapter ?? null;
  if (resume && wantedRef !== null && !refDir) throw new InvalidArgumentError(`This DPO run's reference was the adapter "${wantedRef}": give it again with --ref-adapter.`);
  const referenceAdapter = refDir ? (await engine.loadAdapter(new NodeDirFiles(basename(resolve(refDir)), resolve(refDir)), wantedRef ?? `reference:${basename(resolve(refDir))}`)).name : null;
  const startDir = args.string('start-from');
  if (resume && startDir) throw new InvalidArgumentError('--start-from begins a run; a resumed run continues from its checkpoint: drop it.');
  const startFrom = startDir ? (await engine.loadAdapter(new NodeDirFiles(basename(resolve(startDir)), resolve(startDir)), `start:${basename(resolve(startDir))}`)).name : null;
  if (!json) process.stderr.write(`loaded ${info.label} on ${info.gpu}, weights ${info.precision}; ${parsed.records.length} pairs (${parsed.format === 'trl' ? "TRL's preference format" : 'comparison data'}) from ${data.path}\n`);

  const dataRecord: CheckpointData = { file: basename(data.path), sha256: data.sha256, format: plan.format };
  const write = checkpointWriter(out, dataRecord, emit);
  const signals = stopOnSignals(json);
  const t0 = performance.now();
  let last: number | null = null;
  try {
    const r = await engine.trainPreference({
      name: resume?.checkpoint.name ?? basename(resolve(out)), records: parsed.records, config: plan.config, objective, preference: preferenceSettings(args),
      format: plan.format, referenceAdapter, startFrom, resume: resume?.checkpoint,
    }, {
      onStep: (m) => {
        last = m.trainLoss;
        const metrics = Object.fromEntries(Object.entries(m.metrics ?? {}).map(([k, v]) => [k, round(v, 6)]));
        emit({ type: 'step', step: m.step, totalSteps: m.totalSteps, epoch: m.epoch, loss: round(m.trainLoss, 6), ...metrics, learningRate: m.learningRate, gradNorm: round(m.gradNorm, 6), tokensPerSecond: round(m.tokensPerSecond), skipped: m.skipped },
          `step ${m.step}/${m.totalSteps}  loss ${m.trainLoss.toFixed(4)}  reward accuracy ${(100 * (m.metrics?.['rewards/accuracies'] ?? NaN)).toFixed(0)}%  margin ${(m.metrics?.['rewards/margins'] ?? NaN).toFixed(4)}  lr ${m.learningRate.toExponential(2)}  grad-norm ${m.gradNorm.toFixed(3)}`);
      },
      onEval: (step, loss, metrics) => emit({ type: 'eval', step, validationLoss: round(loss, 6), ...Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`eval_${k}`, round(v, 6)])) },
        `step ${step}  validation loss ${loss.toFixed(4)}  reward accuracy ${(100 * (metrics['rewards/accuracies'] ?? NaN)).toFixed(0)}%`),
      onCheckpoint: write,
    }, { signal: signals.signal });
    const seconds = round((performance.now() - t0) / 1000);
    const sig = signals.received();
    if (sig) {
      emit({ type: 'stopped', signal: sig, out, seconds }, `stopped by ${sig}; resume with: lora-lab train --resume ${out}`);
      return sig === 'SIGINT' ? 130 : 143;
    }
    const cut = r.pairs.truncated ? `; ${r.pairs.truncated} pair(s) longer than the cutoff were cut (the prompt kept, the answers cut)` : '';
    emit({ type: 'done', out, objective, adapter: r.name, pairs: r.pairs, finalLoss: last, seconds }, `wrote ${out} (${objective}, ${r.pairs.train} training pairs, ${r.pairs.validation} held out) in ${seconds} s${cut}`);
    return 0;
  } finally {
    signals.dispose();
  }
}
