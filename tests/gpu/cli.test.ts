// The lora-lab command as a user runs it: generate (text and --prompt-ids, --json), adapters and --compare, a model
// served over HTTP with the Hugging Face layout, and errors that say what to do.

import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { cliHere } from '../helpers/cli.js';
import { ggufFromSynthetic } from '../helpers/gguf-writer.js';
import { readSafetensors } from '../../src/lib/formats/safetensors.js';
import { decodeToF32, finiteCheck, type DType } from '../../src/lib/formats/dtype.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { TINY_CONFIGS } from '../helpers/models.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { referenceGreedy } from '../reference/llama.js';

const run = promisify(execFile);
// Downloads go to a cache folder of this test file's own, never the user's ~/.cache.
process.env.LORA_LAB_CACHE = mkdtempSync(join(tmpdir(), 'lora-lab-cli-cache-'));
const bin = new URL('../../bin/lora-lab.js', import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run('node', [bin, ...args], { env: process.env, maxBuffer: 1 << 24 });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);

describe('lora-lab generate', () => {
  let server: HfServer;
  beforeAll(async () => {
    const dir = new URL('../../public/models/demo/', import.meta.url);
    const files = new Map(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
      .map((f) => [f, new Uint8Array(readFileSync(new URL(f, dir)))]));
    server = await startHfServer({ 'lora-lab/demo': { files } });
  });
  afterAll(() => server.close());

  it('--prompt-ids with --temperature 0 and --json prints the greedy tokens and timings on the last line', async () => {
    const r = await cli('generate', '--model', 'builtin', '--prompt-ids', '1,2,3', '--temperature', '0', '--max-new-tokens', '6', '--json');
    expect(r.code).toBe(0);
    const out = lastJson(r.stdout);
    expect(out.tokens).toHaveLength(6);
    expect(typeof out.text).toBe('string');
    expect(out.prefillMs).toBeGreaterThan(0);
    expect(out.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(out.readbackBytesPerToken).toBeLessThanOrEqual(1024);
    // The same model downloaded from a Hugging Face-style server gives the same tokens.
    const hf = await cli('generate', '--model', 'lora-lab/demo', '--hf-endpoint', server.endpoint, '--prompt-ids', '1,2,3', '--temperature', '0', '--max-new-tokens', '6', '--json');
    expect(lastJson(hf.stdout).tokens).toEqual(out.tokens);
    // --precision q4 keeps the layers' weights as 4-bit blocks: fewer bytes, and still a model that runs.
    expect(['f16', 'f32']).toContain(out.precision);
    const q4 = lastJson((await cli('generate', '--model', 'builtin', '--prompt-ids', '1,2,3', '--temperature', '0', '--max-new-tokens', '6', '--precision', 'q4', '--json')).stdout);
    expect(q4.precision).toBe('q4');
    expect(q4.weightBytes).toBeLessThan(out.weightBytes);
    expect(q4.tokens).toHaveLength(6);
  });

  it('a .gguf path loads the same model: the built-in model written as llama.cpp writes GGUF gives the same greedy tokens', async () => {
    const demo = new URL('../../public/models/demo/', import.meta.url);
    const { header, data } = readSafetensors(new Uint8Array(readFileSync(new URL('model.safetensors', demo))));
    const tensors = new Map(header.tensors.map((t) => [t.name, { shape: t.shape, data: decodeToF32(data.get(t.name)!, t.dtype as DType, finiteCheck()) }]));
    const config = JSON.parse(readFileSync(new URL('config.json', demo), 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), 'lora-lab-gguf-'));
    writeFileSync(join(dir, 'demo-F32.gguf'), ggufFromSynthetic({ config, tensors, safetensors: new Uint8Array(0) }, 'F32', [['tokenizer.ggml.bos_token_id', 'u32', 1], ['tokenizer.ggml.eos_token_id', 'u32', 4]]));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(new URL(f, demo), join(dir, f));
    const args = ['--prompt', 'Give three tips for staying healthy.', '--temperature', '0', '--max-new-tokens', '8', '--json'];
    const ref = lastJson((await cli('generate', '--model', 'builtin', ...args)).stdout);
    const got = await cli('generate', '--model', join(dir, 'demo-F32.gguf'), ...args);
    expect(got.code).toBe(0);
    expect(lastJson(got.stdout).tokens).toEqual(ref.tokens);
    expect(lastJson(got.stdout).text).toBe(ref.text);
  });

  it.each([
    ['Qwen3 (q/k norms, head_dim apart from the hidden size)', 'qwen3QkNorm'], ['SmolLM3 (layers without RoPE)', 'smollm3NoRope'],
    ['Phi-3 (fused projections, a sliding window)', 'phi3Fused'], ['Gemma 2 (soft-capping)', 'gemma2'], ['Gemma 3 (local and global layers)', 'gemma3'],
  ])('a %s folder generates the float64 reference greedy tokens', async (_what, key) => {
    const spec = TINY_CONFIGS[key];
    const m = syntheticModel(spec);
    const eos = spec.vocabSize - 1;
    const dir = mkdtempSync(join(tmpdir(), `lora-lab-${key}-`));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...m.config, eos_token_id: eos }));
    writeFileSync(join(dir, 'model.safetensors'), m.safetensors);
    writeFileSync(join(dir, 'tokenizer.json'), tinyTokenizerJson(spec.vocabSize));
    writeFileSync(join(dir, 'tokenizer_config.json'), '{}');
    const got = await cli('generate', '--model', dir, '--prompt-ids', '7,3,11,2,5', '--temperature', '0', '--max-new-tokens', '12', '--json');
    expect(got.code, got.stderr).toBe(0);
    const tokens = lastJson(got.stdout).tokens as number[];
    const ref = referenceGreedy(normalizeConfig(m.config), m.tensors, [7, 3, 11, 2, 5], 12);
    // Greedy up to the end-of-sequence token, if the model picks it.
    const end = ref.indexOf(eos);
    expect(tokens).toEqual(end < 0 ? ref : ref.slice(0, end + 1));
    expect(tokens.length).toBeGreaterThan(3);
  });

  it('a text prompt streams to stdout; the same seed gives the same text', async () => {
    const a = await cli('generate', '--model', 'builtin', '--prompt', 'Hello', '--seed', '5', '--max-new-tokens', '8');
    const b = await cli('generate', '--model', 'builtin', '--prompt', 'Hello', '--seed', '5', '--max-new-tokens', '8');
    expect(a.code).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(5);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stderr).toMatch(/tokens\/s/);
  });

  it('--adapter applies one adapter; --compare prints one JSON object per column, base first', async () => {
    // demo-zh: a strong effect even at 0.7 on a raw three-token prompt (demo-short's first tokens are the base's).
    const adapter = new URL('../../public/adapters/demo-zh/', import.meta.url).pathname;
    const args = ['--model', 'builtin', '--prompt-ids', '5,6,7', '--temperature', '0', '--max-new-tokens', '5', '--json'];
    const base = lastJson((await cli('generate', ...args)).stdout);
    const one = lastJson((await cli('generate', ...args, '--adapter', adapter, '--adapter-scale', '0.7')).stdout);
    expect(one.adapter).toBe(adapter);
    const cmp = await cli('generate', ...args, '--compare', '--adapter', adapter, '--adapter-scale', '0.7', '--adapter', 'builtin:demo-short');
    expect(cmp.code).toBe(0);
    const cols = cmp.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(cols.map((c) => c.adapter)).toEqual([null, adapter, 'demo-short']);
    expect(cols[0].tokens).toEqual(base.tokens);
    expect(cols[1].tokens).toEqual(one.tokens);
    expect(cols[1].tokens).not.toEqual(cols[0].tokens);
  });

  it('errors say what to do and exit non-zero', async () => {
    // The command itself once; the other refusals through the same main() in this process (no start-up each).
    const none = await cli('generate', '--prompt', 'x');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Give --model/);
    const missing = await cliHere('generate', '--model', 'lora-lab/missing', '--hf-endpoint', server.endpoint, '--prompt', 'x');
    expect(missing.stderr).toMatch(/DownloadError: lora-lab\/missing@main was not found on the hub\. Check the repo id/);
    const long = await cliHere('generate', '--model', 'builtin', '--prompt', 'x', '--max-new-tokens', '5000');
    expect(long.stderr).toMatch(/ContextOverflowError: .*at most \d+ new tokens/);
    const badTopP = await cliHere('generate', '--model', 'builtin', '--prompt', 'x', '--top-p', '2');
    expect(badTopP.stderr).toMatch(/--top-p 2 is out of range: give a number in \[0.01, 1\]/);
    const badPrecision = await cliHere('generate', '--model', 'builtin', '--prompt', 'x', '--precision', 'q3');
    expect(badPrecision.stderr).toMatch(/--precision "q3" is not one of auto, f32, f16, q8, q4/);
  });
});
