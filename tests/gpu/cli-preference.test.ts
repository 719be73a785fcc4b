// lora-lab train --objective dpo|orpo|simpo: TRL's metric names in --json lines, the adapter and its checkpoint written
// crash-safe to --out (the objective recorded), a SIGINT stop resumed with --resume to the uninterrupted run's
// adapter, and refusals in words.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { TINY_CONFIGS } from '../helpers/models.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { cliHere } from '../helpers/cli.js';

const bin = new URL('../../bin/lora-lab.js', import.meta.url).pathname;

/** Runs lora-lab; `onStdout` may signal the process. */
function run(args: string[], onStdout?: (out: string, kill: (s: NodeJS.Signals) => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [bin, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; onStdout?.(stdout, (s) => child.kill(s)); });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const lines = (out: string) => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'lora-lab-pref-'));
  const spec = TINY_CONFIGS.llamaGqaUntied;
  const m = syntheticModel(spec);
  const model = join(dir, 'model');
  mkdirSync(model);
  writeFileSync(join(model, 'config.json'), JSON.stringify(m.config));
  writeFileSync(join(model, 'model.safetensors'), m.safetensors);
  writeFileSync(join(model, 'tokenizer.json'), tinyTokenizerJson(spec.vocabSize));
  writeFileSync(join(model, 'tokenizer_config.json'), '{}');
  const pairs = Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `question ${i} about ${'abc'[i % 3]}`, chosen: `a good answer ${i}`, rejected: `no ${i}` })).join('\n');
  writeFileSync(join(dir, 'pairs.jsonl'), pairs);
  return { dir, model, data: join(dir, 'pairs.jsonl') };
}

const settings = ['--steps', '4', '--batch', '2', '--lr', '1e-2', '--warmup', '0', '--val-fraction', '0.34', '--eval-every', '2', '--seed', '3', '--checkpoint-every', '2', '--json'];

describe('lora-lab train --objective', () => {
  it("dpo: TRL's metrics per step, the adapter and its checkpoint in --out; a SIGINT stop resumed gives the uninterrupted run's adapter", async () => {
    const { dir, model, data } = setup();
    const args = ['train', '--objective', 'dpo', '--model', model, '--data', data, ...settings];
    const whole = join(dir, 'whole');
    const r = await run([...args, '--out', whole]);
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    const steps = out.filter((l) => l.type === 'step');
    expect(steps).toHaveLength(4);
    for (const k of ['loss', 'rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected']) expect(steps[0]).toHaveProperty([k]);
    expect(Math.abs(steps[0]['rewards/margins'])).toBeLessThan(1e-3); // the fresh adapter is the reference
    expect(out.find((l) => l.type === 'eval')).toHaveProperty(['eval_rewards/accuracies']);
    expect(out.at(-1)).toMatchObject({ type: 'done', objective: 'dpo', pairs: { train: 4, validation: 2 } });
    const state = JSON.parse(readFileSync(join(whole, 'checkpoint', 'trainer_state.json'), 'utf8'));
    expect(state.preference).toMatchObject({ objective: 'dpo', beta: 0.1, referenceAdapter: null });
    expect(JSON.parse(readFileSync(join(whole, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'LORA' });

    const half = join(dir, 'half');
    let sent = false;
    const stopped = await run([...args, '--out', half], (so, kill) => { if (!sent && lines(so).some((l) => l.type === 'step' && l.step === 1)) { sent = true; kill('SIGINT'); } });
    expect(stopped.code).toBe(130);
    const resumed = await run(['train', '--resume', half, '--model', model, '--data', data, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const both = [...lines(stopped.stdout), ...lines(resumed.stdout)].filter((l) => l.type === 'step').map((l) => [l.step, l.loss]);
    expect(both).toEqual(steps.map((l) => [l.step, l.loss]));
    expect(readFileSync(join(half, 'adapter_model.safetensors')).equals(readFileSync(join(whole, 'adapter_model.safetensors')))).toBe(true);
  }, 300_000);

  it('refuses what does not belong to the objective, in words', async () => {
    const { model, data, dir } = setup();
    const orpo = await cliHere('train', '--objective', 'orpo', '--model', model, '--data', data, '--out', join(dir, 'o'), '--ref-adapter', dir);
    expect(orpo.code).not.toBe(0);
    expect(orpo.stderr).toMatch(/--ref-adapter is DPO's reference; orpo has none/);
    const beta = await cliHere('train', '--model', model, '--data', data, '--out', join(dir, 'b'), '--beta', '0.2');
    expect(beta.code).not.toBe(0);
    expect(beta.stderr).toMatch(/are for preference runs: add --objective dpo, orpo or simpo/);
  });
});
