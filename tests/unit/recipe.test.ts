// The cluster recipe of a run: its data reproduces, token for token, the inputs and label masks our trainer used
// (the exported prompt/completion text re-tokenized with the model's tokenizer, and the exported tokens and masks);
// the TRL script and the Axolotl YAML parse and name exactly the run's settings; an adapter folder as TRL writes it
// loads back. Real tokenizer (SmolLM2-135M-Instruct) and the bundled GPT-4 Alpaca sample.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDataset } from '../../src/lib/data/records.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { recipeData } from '../../src/lib/recipe/data.js';
import { buildRecipe, type RecipeRun } from '../../src/lib/recipe/recipe.js';
import { readTrlSettings } from '../../src/lib/recipe/trl.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { buildExamples } from '../../src/lib/training/session.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/lib/training/train-config.js';

const fixture = (f: string) => readFileSync(new URL(`../fixtures/SmolLM2-135M-Instruct/${f}`, import.meta.url));
const template = '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';
const tok = new TextTokenizer(JSON.parse(fixture('tokenizer.json').toString()), JSON.parse(fixture('tokenizer_config.json').toString()), template);
const EOS = tok.eosTokenIds[0];
const records = await parseDataset(new Uint8Array(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url))), 'alpaca-gpt4-sample-en.json');
const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG, rank: 16, alpha: 32, dropout: 0.1, useRslora: true, targetModules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'],
  learningRate: 2e-4, warmupSteps: 7, schedule: 'constant', steps: 123, epochs: 0, microBatch: 3, gradAccumulation: 5, cutoff: 96,
  maxGradNorm: 0.7, weightDecay: 0.01, beta1: 0.85, beta2: 0.995, eps: 1e-7, seed: 1234, validationFraction: 0.1, evalEvery: 9, checkpointEvery: 11,
};
const decoder = new TextDecoder();
const jsonl = (b: Uint8Array) => decoder.decode(b).trim().split('\n').map((l) => JSON.parse(l));

function run(c: TrainConfig, format: 'alpaca' | 'chat', examples: { train: number; validation: number }): RecipeRun {
  return { name: 'gpt4-alpaca-r16', baseModel: 'HuggingFaceTB/SmolLM2-135M-Instruct', baseFingerprint: 'abc123', config: c, format, totalSteps: 123, dataFile: 'alpaca-gpt4-sample-en.json', maxRecords: 40, examples };
}

describe('cluster recipe: data', () => {
  for (const [format, trainOnInputs] of [['alpaca', false], ['chat', false], ['alpaca', true]] as const) {
    it(`reproduces our trainer's inputs and label masks token for token (${format}, train on inputs ${trainOnInputs})`, () => {
      const c = { ...config, trainOnInputs };
      const o = { records, format, maxRecords: 40 };
      const ours = buildExamples(tok, EOS, { name: 'x', baseModel: null, config: {}, ...o }, c);
      const data = recipeData(tok, EOS, o, c);
      const files = buildRecipe(run(c, format, { train: data.train.length, validation: data.validation.length }), data);
      for (const split of ['train', 'validation'] as const) {
        const trl = jsonl(files.get(`data/${split}.jsonl`)!);
        const axo = jsonl(files.get(`data/tokenized-${split}.jsonl`)!);
        expect(trl.length).toBe(ours[split].length);
        expect(trl.length).toBeGreaterThan(split === 'train' ? 30 : 2);
        ours[split].forEach((e, i) => {
          const row = trl[i];
          // The tokens and the mask are our trainer's: token j is learned exactly when our target j - 1 is.
          expect(row.input_ids).toEqual(e.ids);
          expect(row.completion_mask).toEqual(e.ids.map((_: number, j: number) => (j >= 1 && e.targets[j - 1] !== -100 ? 1 : 0)));
          // The text gives the same tokens: encode(prompt) (+ BOS for the Alpaca template) + encode(completion) + EOS.
          const promptIds = tok.encode(row.prompt, format === 'alpaca');
          const completionIds = tok.encode(row.completion, false);
          expect([...promptIds, ...completionIds, EOS].slice(0, c.cutoff)).toEqual(e.ids);
          // Axolotl's labels: the token where learned, -100 elsewhere; the attention mask covers every token.
          expect(axo[i].input_ids).toEqual(e.ids);
          expect(axo[i].labels).toEqual(e.ids.map((id: number, j: number) => (row.completion_mask[j] ? id : -100)));
          expect(axo[i].attention_mask).toEqual(e.ids.map(() => 1));
          expect(Object.keys(axo[i]).sort()).toEqual(['attention_mask', 'input_ids', 'labels']);
        });
      }
    });
  }
});

describe('cluster recipe: settings', () => {
  const data = recipeData(tok, EOS, { records, format: 'alpaca', maxRecords: 40 }, config);
  const r = run(config, 'alpaca', { train: data.train.length, validation: data.validation.length });
  const files = buildRecipe(r, data, 4);
  const text = (f: string) => decoder.decode(files.get(f)!);

  it("the TRL script names exactly the run's settings", () => {
    const s = readTrlSettings(text('train_trl.py'));
    expect(s.base_model).toBe(r.baseModel);
    expect(s.lora).toEqual({ r: 16, lora_alpha: 32, lora_dropout: 0.1, target_modules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'], use_rslora: true, bias: 'none', task_type: 'CAUSAL_LM' });
    expect(s.training).toEqual({
      learning_rate: 2e-4, lr_scheduler_type: 'constant_with_warmup', warmup_steps: 7, max_steps: 123, per_device_train_batch_size: 3, per_device_eval_batch_size: 3,
      gradient_accumulation_steps: 5, max_grad_norm: 0.7, weight_decay: 0.01, adam_beta1: 0.85, adam_beta2: 0.995, adam_epsilon: 1e-7, optim: 'adamw_torch',
      seed: 1234, data_seed: 1234, eval_strategy: 'steps', eval_steps: 9, save_strategy: 'steps', save_steps: 11, logging_steps: 1,
    });
    expect(s.sft).toEqual({ max_length: 96, packing: false, completion_only_loss: true });
    expect(JSON.parse(text('run.json'))).toEqual(s);
    // The script passes them on: LoraConfig(**RUN["lora"]), the training arguments and SFT settings into SFTConfig.
    for (const use of ['LoraConfig(**RUN["lora"])', 'RUN["training"].items()', 'RUN["sft"]["max_length"]', 'RUN["sft"]["completion_only_loss"]', 'RUN["sft"]["packing"]', 'peft_config=peft_config']) {
      expect(text('train_trl.py')).toContain(use);
    }
  });

  // .ci/run installs python3; without it this test fails saying so rather than skipping.
  const python = ['python3', 'python'].find((p) => { try { execFileSync(p, ['--version']); return true; } catch { return false; } });
  it('the TRL script is valid Python (py_compile) and its RUN literal loads with json', () => {
    if (!python) throw new Error('This test needs python3 on the PATH (apt-get install python3).');
    const dir = mkdtempSync(join(tmpdir(), 'recipe-'));
    const file = join(dir, 'train_trl.py');
    writeFileSync(file, files.get('train_trl.py')!);
    execFileSync(python, ['-m', 'py_compile', file]);
    const out = execFileSync(python, ['-c', `import ast,json,sys; t=ast.parse(open(sys.argv[1]).read()); run=[n for n in t.body if isinstance(n, ast.Assign) and n.targets[0].id=="RUN"][0]; print(json.dumps(json.loads(run.value.args[0].value)["lora"]))`, file]).toString();
    expect(JSON.parse(out)).toEqual(readTrlSettings(text('train_trl.py')).lora);
  });

  it('the Axolotl YAML and the accelerate configs parse, with the same settings', () => {
    const y = parse(text('axolotl.yaml'));
    expect(y).toMatchObject({
      base_model: r.baseModel, adapter: 'lora', lora_r: 16, lora_alpha: 32, lora_dropout: 0.1, lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'],
      peft_use_rslora: true, sequence_len: 96, sample_packing: false, micro_batch_size: 3, gradient_accumulation_steps: 5, max_steps: 123,
      optimizer: 'adamw_torch', learning_rate: 2e-4, lr_scheduler: 'constant_with_warmup', warmup_steps: 7, weight_decay: 0.01,
      adam_beta1: 0.85, adam_beta2: 0.995, adam_epsilon: 1e-7, max_grad_norm: 0.7, seed: 1234, eval_steps: 9, save_steps: 11,
      datasets: [{ path: 'data/tokenized-train.jsonl', ds_type: 'json', type: null }],
      test_datasets: [{ path: 'data/tokenized-validation.jsonl', ds_type: 'json', type: null }],
    });
    for (const f of ['data/tokenized-train.jsonl', 'data/tokenized-validation.jsonl']) expect(files.has(f)).toBe(true);
    expect(parse(text('accelerate/ddp.yaml'))).toMatchObject({ distributed_type: 'MULTI_GPU', num_processes: 4, num_machines: 1 });
    expect(parse(text('accelerate/zero2.yaml'))).toMatchObject({ distributed_type: 'DEEPSPEED', num_processes: 4, deepspeed_config: { zero_stage: 2, gradient_accumulation_steps: 5, gradient_clipping: 0.7 } });
    expect(parse(text('accelerate/fsdp.yaml'))).toMatchObject({ distributed_type: 'FSDP', num_processes: 4, fsdp_config: { fsdp_sharding_strategy: 'FULL_SHARD', fsdp_use_orig_params: true } });
    expect(JSON.parse(text('accelerate/ds_zero2.json')).zero_optimization.stage).toBe(2);
  });

  it('the README gives the commands and says plainly that none of it was run here', () => {
    const readme = text('README.md');
    expect(readme).toMatch(/were not run by it/);
    expect(readme).toContain('accelerate launch --config_file accelerate/zero2.yaml train_trl.py');
    expect(readme).toContain('axolotl train axolotl.yaml');
    expect(readme).toContain(`**${r.baseModel}**`);
  });

  it('an adapter folder as TRL and PEFT save it (PEFT 0.17 config keys, unprefixed tensor names) loads back', async () => {
    const dir = new URL('../fixtures/adapters/smollm2-360m-instruct-r8-qv/', import.meta.url).pathname;
    expect(existsSync(join(dir, 'adapter_config.json'))).toBe(true);
    const a = await loadPeftAdapter(new NodeDirFiles('trl-adapter', dir));
    expect(a.config.r).toBe(8);
    expect([...new Set([...a.modules.values()].map((m) => m.module))].sort()).toEqual(['q_proj', 'v_proj']);
    expect(a.modules.size).toBe(2 * 32);
  });
});
