// A recipe that re-runs a LoRA Lab training on a cluster: the run's data (text, and the exact tokens and loss masks
// our trainer used), a TRL script, an Axolotl config, accelerate configs for N GPUs, and a README with the commands.
// None of it was run here (no Python trainer or GPU on the machines LoRA Lab is built on); what can be checked here
// is: the data reproduces our trainer's inputs token for token, and the files parse and name the run's settings.

import { axolotlJsonl, trlJsonl, type RecipeData } from './data.js';
import { accelerateConfigs, axolotlYaml } from './cluster.js';
import { runSettings, type RecipeRun } from './settings.js';
import { trlScript } from './trl.js';

export type { RecipeRun };

/** GPUs the accelerate configs are written for (one machine); editable in the files. */
export const DEFAULT_GPUS = 8;

export function buildRecipe(run: RecipeRun, data: RecipeData, gpus = DEFAULT_GPUS): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const files = new Map<string, string>([
    ['README.md', recipeReadme(run, gpus)],
    ['run.json', JSON.stringify(runSettings(run), null, 2) + '\n'],
    ['train_trl.py', trlScript(run)],
    ['axolotl.yaml', axolotlYaml(run, gpus)],
    ['data/train.jsonl', trlJsonl(data.train)],
    ['data/tokenized-train.jsonl', axolotlJsonl(data.train)],
    ...(data.validation.length ? [['data/validation.jsonl', trlJsonl(data.validation)], ['data/tokenized-validation.jsonl', axolotlJsonl(data.validation)]] as [string, string][] : []),
    ...accelerateConfigs(run, gpus),
  ]);
  return new Map([...files].map(([k, v]) => [k, enc.encode(v)]));
}

function recipeReadme(run: RecipeRun, gpus: number): string {
  const c = run.config;
  const batch = c.microBatch * c.gradAccumulation;
  return `# ${run.name}: the LoRA Lab run, for a cluster

LoRA Lab trained the LoRA adapter "${run.name}" on **${run.baseModel}**${run.baseFingerprint ? ` (weights fingerprint ${run.baseFingerprint})` : ''}
in the browser: ${run.totalSteps} optimizer steps of ${batch} sequences (${c.microBatch} x ${c.gradAccumulation} accumulated),
rank ${c.rank}, alpha ${c.alpha}${c.useRslora ? ' (rsLoRA)' : ''}, dropout ${c.dropout} on ${c.targetModules.join(', ')}, learning rate ${c.learningRate}
(${c.schedule}, ${c.warmupSteps} warmup steps), cutoff ${c.cutoff} tokens, seed ${c.seed}, on ${run.examples.train} examples of
${run.dataFile}${run.maxRecords ? ` (its first ${run.maxRecords} records)` : ''} (${run.examples.validation} held out), ${run.format === 'chat' ? "through the model's chat template" : 'in the Alpaca template'}.

**These files were written by LoRA Lab and were not run by it**: there is no Python trainer or GPU where LoRA Lab is
built. They are checked there for what can be checked without one: the data reproduces, token for token, the inputs
and loss masks LoRA Lab trained on; the script and the YAML parse and name exactly the run's settings.

## Files

| file | what |
|---|---|
| data/train.jsonl, data/validation.jsonl | per example: \`prompt\`, \`completion\` (text), \`input_ids\` and \`completion_mask\` (1: the token is learned) |
| data/tokenized-*.jsonl | the same tokens in Axolotl's pre-tokenized form: \`input_ids\`, \`attention_mask\`, \`labels\` (-100: no loss) |
| train_trl.py | TRL's SFTTrainer with the run's LoraConfig and training arguments (the \`RUN\` JSON at its top) |
| axolotl.yaml | the same run for Axolotl |
| accelerate/ddp.yaml, zero2.yaml (+ ds_zero2.json), fsdp.yaml | ${gpus} GPUs of one machine: DDP, DeepSpeed ZeRO-2, FSDP |
| run.json | the settings as JSON |

## Commands

\`\`\`
pip install "trl>=0.20" peft transformers datasets accelerate deepspeed   # and axolotl, for axolotl.yaml
python train_trl.py                                                       # one GPU
accelerate launch --config_file accelerate/ddp.yaml train_trl.py          # ${gpus} GPUs, DDP
accelerate launch --config_file accelerate/zero2.yaml train_trl.py        # ${gpus} GPUs, DeepSpeed ZeRO-2
accelerate launch --config_file accelerate/fsdp.yaml train_trl.py         # ${gpus} GPUs, FSDP
axolotl train axolotl.yaml
\`\`\`

The adapter lands in \`out/\` (\`out-axolotl/\` for Axolotl) as a PEFT folder: load it on LoRA Lab's shelf (Adapters,
Local folder) to compare it with the browser run and evaluate it.

## Which base, and what differs on a cluster

- The base checkpoint is **${run.baseModel}**, the one the data was tokenized for. For a larger base (a 7-70B model
  of another family), pass \`--base <repo>\` to train_trl.py: the data is then tokenized again from its prompt and
  completion text by that model's tokenizer, and only the completion is learned.
- With N GPUs the batch is N times larger: divide \`gradient_accumulation_steps\` by N (in train_trl.py's RUN and in
  axolotl.yaml) to keep the run's ${batch} sequences a step.
- The examples are the same, the order is not: each trainer shuffles with its own sampler. LoRA Lab trained in float32;
  the script runs in bfloat16 where the GPU has it. LoRA Lab's dropout masks and packing (${c.batching === 'packed' ? 'on' : 'off'}) are its
  own. Losses will be close, not equal.
- To train on the whole 52K GPT-4 Alpaca set rather than this run's records, make the recipe from a run on that file
  (a few steps in the browser are enough: the recipe carries the data and settings; raise \`max_steps\` in RUN).
`;
}
