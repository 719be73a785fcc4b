// lora-lab train --reward: a reward model (LoRA + score head) trained on the preference pairs of comparison data,
// written crash-safe to --out as a PEFT SEQ_CLS folder. SIGINT/SIGTERM stop after the current step and write what
// was trained so far.

import { basename, resolve } from 'node:path';
import { Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { createNodeGpu } from '../lib/gpu/node.js';
import { MAX_PREFERENCE_PAIRS, parseComparisonData } from '../lib/reward/pairs.js';
import { writeRewardAdapter } from '../lib/reward/reward-adapter.js';
import { replaceFolder } from '../lib/store/atomic-node.js';
import { precisionOf, type Options } from './args.js';
import { openSource } from './sources.js';
import { checkOut, readData, round, stopOnSignals, trainSettings } from './train-options.js';

export async function trainRewardCommand(args: Options): Promise<number> {
  const json = args.flag('json');
  const emit = (o: Record<string, unknown>, text: string) => process.stdout.write((json ? JSON.stringify(o) : text) + '\n');
  if (args.has('resume')) throw new InvalidArgumentError('--reward runs have no checkpoints to resume: start a new run.');
  if (args.has('format') || args.has('train-on-inputs')) throw new InvalidArgumentError('--format and --train-on-inputs are for instruction data; --reward reads comparison data.');
  const out = args.string('out');
  const modelText = args.string('model');
  const dataText = args.string('data');
  if (!modelText || !dataText || !out) throw new InvalidArgumentError('lora-lab train --reward needs --model, --data (comparison data) and --out.');
  const config = trainSettings(args);
  const maxPairs = args.has('max-records') ? args.number('max-records', 0, { min: 1, max: 1e9, integer: true }) : undefined;
  checkOut(out);
  const data = readData(dataText);
  const records = parseComparisonData(new TextDecoder().decode(data.bytes), basename(data.path));

  const engine = new Engine(await createNodeGpu({ forceF32: args.flag('f32') }), { contextLength: 256, slots: 1 });
  const info = await engine.load(await openSource(modelText, args, 'model', json), undefined, undefined, { precision: precisionOf(args) });
  if (!json) process.stderr.write(`loaded ${info.label} on ${info.gpu}; ${records.length} comparison records from ${data.path}\n`);

  const signals = stopOnSignals(json, 'writing the reward model as trained so far');
  const t0 = performance.now();
  try {
    let last: number | null = null;
    const trained = await engine.trainReward({ name: basename(resolve(out)), records, config, maxPairs }, {
      onStep: (m) => {
        last = m.trainLoss;
        emit({ type: 'step', step: m.step, totalSteps: m.totalSteps, loss: round(m.trainLoss, 6), accuracy: round(m.accuracy, 4), learningRate: m.learningRate, gradNorm: round(m.gradNorm, 6), tokensPerSecond: round(m.tokensPerSecond), skipped: m.skipped },
          `step ${m.step}/${m.totalSteps}  loss ${m.trainLoss.toFixed(4)}  accuracy ${(100 * m.accuracy).toFixed(1)}%  lr ${m.learningRate.toExponential(2)}  grad-norm ${m.gradNorm.toFixed(3)}  ${m.tokensPerSecond.toFixed(0)} tokens/s`);
      },
      onEval: (step, loss, accuracy) => emit({ type: 'eval', step, validationLoss: round(loss, 6), validationAccuracy: round(accuracy, 4) },
        `step ${step}  validation loss ${loss.toFixed(4)}  accuracy ${(100 * accuracy).toFixed(1)}%`),
    }, { signal: signals.signal });
    const files = writeRewardAdapter(trained);
    const readme = `# ${basename(resolve(out))}\n\nA reward model trained with LoRA Lab on ${info.modelId}: LoRA (rank ${trained.adapter.config.r}) plus a score head on the last token, ` +
      `on ${trained.pairs.train} preference pairs from ${basename(data.path)} (${trained.pairs.validation} held out), pairwise loss.\n\n` +
      `Score with it: \`lora-lab score --reward ${out} --model ${modelText} --question ... --answer ...\`, or load it in the app (Evaluate, Reward model). ` +
      'In Python: `AutoPeftModelForSequenceClassification.from_pretrained(folder, num_labels=1)`.\n';
    const enc = new TextEncoder();
    replaceFolder(out, new Map([['adapter_config.json', enc.encode(files.config)], ['adapter_model.safetensors', files.safetensors], ['README.md', enc.encode(readme)]]));
    const seconds = round((performance.now() - t0) / 1000);
    const sig = signals.received();
    emit({ type: sig ? 'stopped' : 'done', out, pairs: trained.pairs, finalLoss: last, seconds, ...(sig ? { signal: sig } : {}) },
      `${sig ? `stopped by ${sig}; ` : ''}wrote the reward model to ${out} (${trained.pairs.train} training pairs) in ${seconds} s` +
      (trained.pairs.available > trained.pairs.train + trained.pairs.validation ? `; the data makes ${trained.pairs.available} pairs, the first ${trained.pairs.train + trained.pairs.validation} were used (at most ${MAX_PREFERENCE_PAIRS}, or --max-records)` : ''));
    return sig ? (sig === 'SIGINT' ? 130 : 143) : 0;
  } finally {
    signals.dispose();
    engine.unload();
  }
}
