// lora-lab train: a LoRA adapter trained on instruction data, written crash-safe to --out (lib/store/atomic-node.ts)
// with its checkpoint, resumable with --resume; SIGINT/SIGTERM save a checkpoint first.

import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseDataset } from '../lib/data/records.js';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { sameModel } from '../lib/model/fingerprint.js';
import { BUILTIN_MODEL_ID } from '../lib/hub/source.js';
import { LORA_MODULES } from '../lib/lora/peft.js';
import { recoverFolder } from '../lib/store/atomic-node.js';
import { readCheckpointFiles, type CheckpointData } from '../lib/training/checkpoint-files.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../lib/training/train-config.js';
import type { Checkpoint } from '../lib/training/trainer.js';
import { parseOptions, precisionOf, type Options, type OptionSpec } from './args.js';
import { checkOut, checkpointWriter, readData, round, stopOnSignals, trainSettings } from './train-options.js';
import { PRECISIONS } from '../lib/quant/precision.js';
import { openSource, SOURCE_OPTIONS } from './sources.js';

const TRAIN_SETTINGS = ['steps', 'epochs', 'lr', 'rank', 'alpha', 'dropout', 'targets', 'cutoff', 'batch', 'grad-accum', 'warmup',
  'schedule', 'seed', 'format', 'max-records', 'train-on-inputs', 'val-fraction', 'eval-every', 'on-non-finite'] as const;

const TRAIN_OPTIONS: OptionSpec = {
  ...SOURCE_OPTIONS,
  model: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  reward: { type: 'boolean' },
  objective: { type: 'string' },
  beta: { type: 'string' },
  'label-smoothing': { type: 'string' },
  gamma: { type: 'string' },
  'ref-adapter': { type: 'string' },
  'start-from': { type: 'string' },
  ...Object.fromEntries(TRAIN_SETTINGS.map((k) => [k, { type: k === 'train-on-inputs' ? 'boolean' as const : 'string' as const }])),
};

const TRAIN_HELP = `lora-lab train — train a LoRA adapter on instruction data

  lora-lab train --model <...> --data <file.json|file.jsonl|file.parquet|builtin> --out <folder>
                 [--steps N | --epochs E] [--lr LR] [--rank R] [--alpha A] [--dropout P] [--targets q_proj,v_proj]
                 [--cutoff N] [--batch B] [--grad-accum G] [--warmup N] [--schedule cosine|linear|constant]
                 [--seed S] [--format alpaca|chat] [--max-records N] [--train-on-inputs] [--val-fraction F]
                 [--eval-every N] [--checkpoint-every N] [--on-non-finite stop|skip] [--precision P] [--json]
  lora-lab train --resume <folder> [--model <...>] [--data <...>] [--checkpoint-every N] [--json]
  lora-lab train --reward --model <...> --data <comparison.json> --out <folder> [the settings above]
  lora-lab train --objective dpo|orpo|simpo --model <...> --data <pairs.jsonl|comparison.json> --out <folder>
                 [--beta B] [--label-smoothing E] [--gamma G] [--ref-adapter DIR] [--start-from DIR] [the settings above]

  --out                a new folder, or an adapter folder to replace. It always holds a complete adapter: the latest
                       checkpoint's (every --checkpoint-every steps, default ${DEFAULT_TRAIN_CONFIG.checkpointEvery}, and on SIGINT/SIGTERM), then
                       the final one, with the training state in <out>/checkpoint for --resume.
  --resume             continues the run in that folder exactly where its checkpoint left it; the settings and the
                       dataset come from the checkpoint (the data file must be unchanged)
  --steps              1..10000000 optimizer steps (or --epochs E > 0; default ${DEFAULT_TRAIN_CONFIG.epochs} epochs)
  --rank 1..64  --alpha > 0  --dropout [0, 1)  --lr (0, 1)  --cutoff 2..65536  --batch 1..1024  --grad-accum 1..1024
  --targets            comma-separated, from ${LORA_MODULES.join(', ')}
  --max-records        1.. (use only the first N records)         --val-fraction [0, 1)
  --eval-every         0.. steps between validation losses (0: never)
  --on-non-finite      stop (default: end with an error, the last good checkpoint kept) or skip (drop that step)
  --precision          the base's weights: ${PRECISIONS.join(', ')}; q8 or q4 train QLoRA (a frozen quantized base, f32 LoRA)
  --json               one JSON object per line: steps, evaluations, checkpoints, and a final summary
  --reward             train a reward model: LoRA plus a score head on the last token, on preference pairs, with the
                       pairwise loss -log sigmoid(r_chosen - r_rejected). --data is comparison data in the paper's
                       format ([{user_input, responses_and_scores: [{response, score}]}], or votes exported from the
                       app); every two responses with different scores make a pair. --out gets a PEFT folder (task
                       SEQ_CLS, the head as score.weight) that lora-lab score --reward takes with --model. No
                       checkpoints: a stop writes what was trained so far. --max-records caps the pairs.
  --objective          sft (default: the instruction loss), or preference tuning on chosen/rejected pairs as TRL
                       defines it: dpo (sigmoid loss against a reference: the base with the adapter off, or
                       --ref-adapter DIR, frozen), orpo (odds ratio plus the chosen answers' NLL, no reference) or simpo
                       (length-normalized, margin --gamma, no reference). --data: {"prompt", "chosen", "rejected"} records
                       (texts or messages; JSON or JSON Lines), or comparison data / the app's vote export. --beta
                       (default 0.1), --label-smoothing (dpo, simpo; default 0), --gamma (simpo; default 0.5).
                       --start-from DIR tunes that adapter further (its rank and alpha must be given). Checkpoints,
                       --resume and --json as for LoRA runs; steps print TRL's metrics (rewards/accuracies, ...).`;

/** What a train command will do: a new run from the options, or the run whose checkpoint is in --resume. */
interface RunPlan {
  out: string;
  resume?: { checkpoint: Checkpoint; data: CheckpointData };
  modelText: string;
  dataText: string;
  config: Partial<TrainConfig>;
  format: 'alpaca' | 'chat';
  maxRecords?: number;
}

async function planResume(args: Options, out: string): Promise<RunPlan> {
  const given = TRAIN_SETTINGS.filter((k) => args.has(k));
  if (given.length) throw new InvalidArgumentError(`--resume continues a run with the settings of its checkpoint: drop --${given.join(', --')}.`);
  if (args.has('out') && resolve(args.string('out')!) !== resolve(out)) throw new InvalidArgumentError('--resume writes to the folder it resumes: drop --out.');
  recoverFolder(out);
  if (!existsSync(resolve(out, 'checkpoint', 'trainer_state.json'))) {
    throw new InvalidArgumentError(`--resume ${out}: there is no checkpoint in this folder (${out}/checkpoint/trainer_state.json). Give the --out folder of an earlier lora-lab train run.`);
  }
  const resume = await readCheckpointFiles(new NodeDirFiles(`${out}/checkpoint`, resolve(out, 'checkpoint')));
  const modelText = args.string('model') ?? (resume.checkpoint.baseModel === BUILTIN_MODEL_ID ? 'builtin' : undefined);
  if (!modelText) throw new InvalidArgumentError(`Give --model: this run was trained on ${resume.checkpoint.baseModel ?? 'an unnamed model'}.`);
  // Checkpoints name the dataset by its file name only (no local paths); the SHA-256 proves it is the same file.
  const dataText = args.string('data') ?? (resume.data.file === 'builtin' ? 'builtin' : undefined);
  if (!dataText) throw new InvalidArgumentError(`Give --data: this run was trained on ${resume.data.file} (SHA-256 ${resume.data.sha256.slice(0, 12)}...).`);
  return { out, resume, modelText, dataText, config: { ...resume.checkpoint.config }, format: resume.data.format, maxRecords: resume.data.maxRecords };
}

function planNew(args: Options): RunPlan {
  const out = args.string('out');
  const modelText = args.string('model');
  const dataText = args.string('data');
  if (!modelText || !dataText || !out) throw new InvalidArgumentError('lora-lab train needs --model, --data and --out (see lora-lab train --help).');
  return {
    out, modelText, dataText, config: trainSettings(args),
    format: args.choice('format', ['alpaca', 'chat'] as const, 'alpaca'),
    maxRecords: args.has('max-records') ? args.number('max-records', 0, { min: 1, max: 1e9, integer: true }) : undefined,
  };
}

export async function trainCommand(argv: string[]): Promise<number> {
  const args = parseOptions('train', argv, TRAIN_OPTIONS);
  if (args.flag('help')) { console.log(TRAIN_HELP); return 0; }
  if (args.flag('reward')) return (await import('./train-reward.js')).trainRewardCommand(args);
  const objective = args.choice('objective', ['sft', 'dpo', 'orpo', 'simpo'] as const, 'sft');
  const resumeDir = args.string('resume');
  const plan = resumeDir !== undefined ? await planResume(args, resumeDir) : planNew(args);
  if (objective !== 'sft' || plan.resume?.checkpoint.preference) {
    plan.config.checkpointEvery = args.number('checkpoint-every', plan.resume?.checkpoint.config.checkpointEvery ?? DEFAULT_TRAIN_CONFIG.checkpointEvery, { min: 0, max: 10_000_000, integer: true });
    return (await import('./train-preference.js')).trainPreferenceCommand(args, plan);
  }
  if (args.has('beta') || args.has('gamma') || args.has('label-smoothing') || args.has('ref-adapter') || args.has('start-from')) {
    throw new InvalidArgumentError('--beta, --gamma, --label-smoothing, --ref-adapter and --start-from are for preference runs: add --objective dpo, orpo or simpo.');
  }
  const json = args.flag('json');
  const emit = (o: Record<string, unknown>, text: string) => process.stdout.write((json ? JSON.stringify(o) : text) + '\n');
  const { out, resume, modelText, dataText, config, format, maxRecords } = plan;
  config.checkpointEvery = args.number('checkpoint-every', resume?.checkpoint.config.checkpointEvery ?? DEFAULT_TRAIN_CONFIG.checkpointEvery, { min: 0, max: 10_000_000, integer: true });
  checkOut(out);

  const data = readData(dataText);
  if (resume && data.sha256 !== resume.data.sha256) {
    throw new InvalidArgumentError(`--data ${data.path} is not the file this run was trained on (its SHA-256 differs): resume with the same dataset file.`);
  }
  const records = await parseDataset(data.bytes, basename(data.path));
  const files = await openSource(modelText, args, 'model', json);
  const gpu = await createNodeGpu({ forceF32: args.flag('f32') });
  const engine = new Engine(gpu, { contextLength: 256, slots: 1 });
  const info = await engine.load(files, undefined, undefined, { precision: precisionOf(args) });
  if (resume && !sameModel({ model: resume.checkpoint.baseModel, fingerprint: resume.checkpoint.baseFingerprint }, info)) {
    throw new InvalidArgumentError(`The checkpoint in ${out} was trained on ${resume.checkpoint.baseModel}, not ${info.modelId}: give --model ${resume.checkpoint.baseModel}.`);
  }
  if (!json) process.stderr.write(`loaded ${info.label} on ${info.gpu}, weights ${info.precision}; ${records.length} records from ${data.path}\n`);

  const dataRecord: CheckpointData = { file: dataText === 'builtin' ? 'builtin' : basename(data.path), sha256: data.sha256, format, ...(maxRecords ? { maxRecords } : {}) };
  const name = resume?.checkpoint.name ?? basename(resolve(out));
  const write = checkpointWriter(out, dataRecord, emit);

  const signals = stopOnSignals(json);
  const t0 = performance.now();
  let last: number | null = null;
  try {
    const adapter = await engine.train({ name, records, format, config, maxRecords, resume: resume?.checkpoint }, {
      onStep: (m) => {
        last = m.trainLoss;
        emit({ type: 'step', step: m.step, totalSteps: m.totalSteps, epoch: m.epoch, loss: round(m.trainLoss, 6), learningRate: m.learningRate, gradNorm: round(m.gradNorm, 6), tokensPerSecond: round(m.tokensPerSecond), skipped: m.skipped },
          `step ${m.step}/${m.totalSteps}  loss ${m.trainLoss.toFixed(4)}  lr ${m.learningRate.toExponential(2)}  grad-norm ${m.gradNorm.toFixed(3)}  ${m.tokensPerSecond.toFixed(0)} tokens/s${m.skipped ? '  (skipped: not finite)' : ''}`);
      },
      onEval: (step, v) => emit({ type: 'eval', step, validationLoss: round(v, 6) }, `step ${step}  validation loss ${v.toFixed(4)}`),
      onCheckpoint: write,
    }, { signal: signals.signal });
    const seconds = round((performance.now() - t0) / 1000);
    const sig = signals.received();
    if (sig) {
      emit({ type: 'stopped', signal: sig, out, seconds }, `stopped by ${sig}; resume with: lora-lab train --resume ${out}`);
      return sig === 'SIGINT' ? 130 : 143;
    }
    emit({ type: 'done', out, adapter: adapter.name, finalLoss: last, seconds }, `wrote ${out} (rank ${adapter.rank}, ${adapter.modules} modules) in ${seconds} s`);
    return 0;
  } finally {
    signals.dispose();
  }
}
