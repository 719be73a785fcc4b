// lora-lab export as a user runs it: the built-in model with demo-zh merged in, as a Q8_0 GGUF file that generate
// runs as the same model (its greedy answer is the adapter's, in Chinese); the adapter alone as a GGUF LoRA file that
// loads back as demo-zh; misuse refused before any model loads.

import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { cli, cliHere, jsonLines } from '../helpers/cli.js';

const demoZh = new URL('../../public/adapters/demo-zh/', import.meta.url).pathname;
const tmp = () => mkdtempSync(join(tmpdir(), 'lora-lab-export-'));

describe('lora-lab export', { timeout: 180_000 }, () => {
  it('a merged model as Q8_0 GGUF runs in generate as the adapter does; the adapter alone loads back', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'merged'));
    const merged = await cli('export', '--model', 'builtin', '--adapter', 'builtin:demo-zh', '--gguf', '--type', 'q8_0', '--out', join(dir, 'merged', 'demo-zh.gguf'), '--json');
    expect(merged.code, merged.stderr).toBe(0);
    expect(jsonLines(merged.stdout)[0]).toMatchObject({ type: 'q8_0', adapter: 'demo-zh', adapterOnly: false });
    const ask = ['--prompt', 'Give three tips for staying healthy.', '--max-new-tokens', '8', '--temperature', '0', '--json'];
    const fromGguf = jsonLines((await cliHere('generate', '--model', join(dir, 'merged'), ...ask)).stdout).at(-1);
    const withAdapter = jsonLines((await cliHere('generate', '--model', 'builtin', '--adapter', 'builtin:demo-zh', ...ask)).stdout).at(-1);
    expect(fromGguf.text).toMatch(/\p{Script=Han}/u);
    // Q8_0 keeps every greedy step of this answer: the same text as the adapter over the f32 base.
    expect(fromGguf.text).toBe(withAdapter.text);
    console.log(`merged Q8_0 GGUF: ${JSON.stringify(fromGguf.text)}; base + adapter: ${JSON.stringify(withAdapter.text)}`);

    const lora = await cliHere('export', '--model', 'builtin', '--adapter', 'builtin:demo-zh', '--gguf', '--adapter-only', '--out', join(dir, 'demo-zh-lora.gguf'));
    expect(lora.code, lora.stderr).toBe(0);
    expect(lora.stdout).toMatch(/wrote adapter demo-zh \(GGUF LoRA, f32\) to .*demo-zh-lora\.gguf/);
    const peft = await loadPeftAdapter(new NodeDirFiles('zh', demoZh), 'zh');
    const back = await loadPeftAdapter(new MemoryFiles('a.gguf', new Map([['a.gguf', new Uint8Array(readFileSync(join(dir, 'demo-zh-lora.gguf')))]])), 'a', (await import('../../src/lib/model/config.js')).normalizeConfig(JSON.parse(readFileSync(new URL('../../public/models/demo/config.json', import.meta.url), 'utf8'))));
    expect([...back.modules.keys()].sort()).toEqual([...peft.modules.keys()].sort());
  });

  it.each([
    [['--model', 'builtin', '--out', '/tmp/x.gguf'], /Give --gguf/],
    [['--model', 'builtin', '--gguf', '--adapter-only', '--out', '/tmp/x.gguf'], /--adapter-only exports an adapter: give --adapter too/],
    [['--model', 'builtin', '--gguf', '--type', 'q5_k_m', '--out', '/tmp/x.gguf'], /--type "q5_k_m" is not one of f16, q8_0, q4_k_m/],
    [['--model', 'builtin', '--gguf', '--out', '/no/such/folder/x.gguf'], /--out \/no\/such\/folder\/x\.gguf: the folder \/no\/such\/folder does not exist/],
    [['--model', 'builtin', '--gguf', '--strength', '0.5', '--out', '/tmp/x.gguf'], /--strength applies to an adapter merged into the model/],
  ])('%j is refused before the model loads', async (args, message) => {
    const r = await cliHere('export', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/loaded/);
  });
});
