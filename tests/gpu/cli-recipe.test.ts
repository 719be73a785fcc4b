// lora-lab recipe on a run lora-lab train wrote: the data files hold exactly the examples the run trained on (the
// builtin model's tokenizer, the bundled dataset), the settings are the checkpoint's, and a wrong data file or a
// folder without a checkpoint is refused before anything is written.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDataset } from '../../src/lib/data/records.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { loadConfig } from '../../src/lib/model/load.js';
import { readTrlSettings } from '../../src/lib/recipe/trl.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { readCheckpointFiles } from '../../src/lib/training/checkpoint-files.js';
import { buildExamples } from '../../src/lib/training/session.js';
import { cliHere, jsonLines } from '../helpers/cli.js';

describe('lora-lab recipe', () => {
  it('writes the run as TRL and Axolotl read it, from the run folder, with the exact examples and settings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recipe-cli-'));
    const run = join(dir, 'run');
    const t = await cliHere('train', '--model', 'builtin', '--data', 'builtin', '--out', run, '--steps', '1', '--batch', '2', '--grad-accum', '1',
      '--cutoff', '96', '--max-records', '24', '--rank', '4', '--targets', 'q_proj,v_proj,down_proj', '--val-fraction', '0.25', '--json');
    expect(t.code, t.stderr).toBe(0);

    const out = join(dir, 'recipe');
    const r = await cliHere('recipe', '--from', run, '--out', out, '--gpus', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const summary = jsonLines(r.stdout).at(-1);
    expect(summary).toMatchObject({ type: 'recipe', out, gpus: 2 });
    for (const f of ['README.md', 'train_trl.py', 'axolotl.yaml', 'run.json', 'data/train.jsonl', 'data/validation.jsonl', 'accelerate/zero2.yaml']) expect(existsSync(join(out, f)), f).toBe(true);

    // The examples the run trained on, made here from the same model, data and checkpoint settings.
    const { checkpoint } = await readCheckpointFiles(new NodeDirFiles('cp', join(run, 'checkpoint')));
    const model = new NodeDirFiles('demo', new URL('../../public/models/demo/', import.meta.url).pathname);
    const configs = await loadConfig(model);
    const tok = await TextTokenizer.fromFiles(model, configs.tokenizer);
    const records = await parseDataset(new Uint8Array(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url))), 'x.json');
    const ours = buildExamples(tok, tok.eosTokenIds[0], { name: 'x', records, format: 'alpaca', config: {}, baseModel: null, maxRecords: 24 }, checkpoint.config);
    expect([summary.train, summary.validation]).toEqual([ours.train.length, ours.validation.length]);
    expect(ours.validation.length).toBe(6);
    const rows = (f: string) => readFileSync(join(out, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows('data/train.jsonl').map((x) => x.input_ids)).toEqual(ours.train.map((e) => e.ids));
    expect(rows('data/validation.jsonl').map((x) => x.input_ids)).toEqual(ours.validation.map((e) => e.ids));

    const s = readTrlSettings(readFileSync(join(out, 'train_trl.py'), 'utf8'));
    expect(s.lora).toMatchObject({ r: 4, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    expect(s.training).toMatchObject({ max_steps: 1, per_device_train_batch_size: 2, gradient_accumulation_steps: 1 });
    expect(s.sft.max_length).toBe(96);
    expect(parse(readFileSync(join(out, 'accelerate/ddp.yaml'), 'utf8')).num_processes).toBe(2);

    // Made again over itself: replaced whole.
    expect((await cliHere('recipe', '--from', run, '--out', out, '--json')).code).toBe(0);
  });

  it('refuses a data file other than the run\'s, and a folder without a checkpoint, before writing anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recipe-cli-'));
    const run = join(dir, 'run');
    expect((await cliHere('train', '--model', 'builtin', '--data', 'builtin', '--out', run, '--steps', '1', '--batch', '1', '--grad-accum', '1', '--cutoff', '72', '--max-records', '4', '--json')).code).toBe(0);
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify([{ instruction: 'a', input: '', output: 'b' }]));
    const bad = await cliHere('recipe', '--from', run, '--out', join(dir, 'r1'), '--data', other);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is not the file this run was trained on/);
    const none = await cliHere('recipe', '--from', dir, '--out', join(dir, 'r2'));
    expect(none.stderr).toMatch(/there is no checkpoint in this folder/);
    for (const f of ['r1', 'r2']) expect(existsSync(join(dir, f))).toBe(false);
  });
});
