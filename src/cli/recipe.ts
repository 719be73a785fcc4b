// lora-lab recipe: the cluster recipe of a run `lora-lab train` wrote (its --out folder): the data exactly as the run
// used it, a TRL script, an Axolotl config, accelerate configs and a README (lib/recipe). Needs the run's model (for
// its tokenizer; no GPU) and its data file, checked against the SHA-256 the checkpoint recorded.

import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseDataset } from '../lib/data/records.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { BUILTIN_MODEL_ID } from '../lib/hub/source.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { loadConfig } from '../lib/model/load.js';
import { recipeData } from '../lib/recipe/data.js';
import { buildRecipe, DEFAULT_GPUS } from '../lib/recipe/recipe.js';
import { recoverFolder, replaceFolder } from '../lib/store/atomic-node.js';
import { TextTokenizer } from '../lib/tokenizer/tokenizer.js';
import { readCheckpointFiles } from '../lib/training/checkpoint-files.js';
import { trainingEos } from '../lib/training/session.js';
import { parseOptions } from './args.js';
import { openSource, SOURCE_OPTIONS } from './sources.js';
import { checkOut, readData } from './train-options.js';

const HELP = `lora-lab recipe — re-run a training on a multi-GPU cluster with TRL or Axolotl

  lora-lab recipe --from <folder of lora-lab train --out> --out <new folder> [--model <...>] [--data <file|builtin>] [--gpus N]

  Writes: data/*.jsonl (the run's examples as text, and as the exact tokens and loss masks it trained on),
  train_trl.py (TRL SFTTrainer), axolotl.yaml, accelerate/{ddp,zero2,fsdp}.yaml for N GPUs (default ${DEFAULT_GPUS}), README.md.
  --model and --data default to the run's when it used the built-in ones; the data file must be the one the run
  trained on (its SHA-256 is checked). No GPU is used. None of the written files is run by LoRA Lab.`;

export async function recipeCommand(argv: string[]): Promise<number> {
  const args = parseOptions('recipe', argv, { ...SOURCE_OPTIONS, from: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, data: { type: 'string' }, gpus: { type: 'string' } });
  if (args.flag('help')) { console.log(HELP); return 0; }
  const from = args.string('from');
  const out = args.string('out');
  if (!from || !out) throw new InvalidArgumentError('lora-lab recipe needs --from (a lora-lab train --out folder) and --out (see lora-lab recipe --help).');
  const gpus = args.number('gpus', DEFAULT_GPUS, { min: 1, max: 1024, integer: true });
  recoverFolder(from);
  if (!existsSync(resolve(from, 'checkpoint', 'trainer_state.json'))) {
    throw new InvalidArgumentError(`--from ${from}: there is no checkpoint in this folder (${from}/checkpoint/trainer_state.json). Give the --out folder of a lora-lab train run.`);
  }
  if (resolve(from) === resolve(out)) throw new InvalidArgumentError('--out must be a new folder, not the run\'s own.');
  checkOut(out, new Set(['README.md', 'run.json', 'train_trl.py', 'axolotl.yaml', 'data', 'accelerate']));
  const { checkpoint, data: dataRecord } = await readCheckpointFiles(new NodeDirFiles(`${from}/checkpoint`, resolve(from, 'checkpoint')));
  const modelText = args.string('model') ?? (checkpoint.baseModel === BUILTIN_MODEL_ID ? 'builtin' : undefined);
  if (!modelText) throw new InvalidArgumentError(`Give --model: this run was trained on ${checkpoint.baseModel ?? 'an unnamed model'} (its tokenizer makes the data).`);
  const dataText = args.string('data') ?? (dataRecord.file === 'builtin' ? 'builtin' : undefined);
  if (!dataText) throw new InvalidArgumentError(`Give --data: this run was trained on ${dataRecord.file} (SHA-256 ${dataRecord.sha256.slice(0, 12)}...).`);
  const data = readData(dataText);
  if (data.sha256 !== dataRecord.sha256) throw new InvalidArgumentError(`--data ${data.path} is not the file this run was trained on (its SHA-256 differs): give that file.`);

  const files = await openSource(modelText, args, 'model', args.flag('json'));
  const configs = await loadConfig(files);
  const tok = await TextTokenizer.fromFiles(files, configs.tokenizer);
  const records = await parseDataset(data.bytes, basename(data.path));
  const o = { records, format: dataRecord.format, maxRecords: dataRecord.maxRecords };
  const examples = recipeData(tok, trainingEos(tok, configs.config), o, checkpoint.config);
  const recipe = buildRecipe({
    name: checkpoint.name, baseModel: checkpoint.baseModel ?? files.modelId ?? files.label, baseFingerprint: checkpoint.baseFingerprint,
    config: checkpoint.config, format: dataRecord.format, totalSteps: checkpoint.totalSteps, dataFile: dataRecord.file, maxRecords: dataRecord.maxRecords,
    examples: { train: examples.train.length, validation: examples.validation.length },
  }, examples, gpus);
  replaceFolder(out, recipe);
  const summary = { type: 'recipe', out, files: [...recipe.keys()], train: examples.train.length, validation: examples.validation.length, gpus };
  process.stdout.write((args.flag('json') ? JSON.stringify(summary) : `recipe for ${checkpoint.name} written to ${out}: ${summary.files.join(', ')} (${summary.train} + ${summary.validation} examples; accelerate configs for ${gpus} GPUs)`) + '\n');
  return 0;
}
