// Bad input, each case reproduced from a report: files that are subtly wrong, configs that contradict their
// tensors, values that would overflow, huge records, paths that leave their folder. Each gets a typed error that
// names what is wrong (or, for valid edge cases, is accepted), and nothing else is thrown.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodePrefix, toExample } from '../../src/lib/data/examples.js';
import { AdapterError, FileFormatError, NonFiniteError, SafetensorsError, UnsafePathError, UnsupportedModelError } from '../../src/lib/errors.js';
import { decodeToF16, decodeToF32, encodeFromF32, finiteCheck } from '../../src/lib/formats/dtype.js';
import { readSafetensors, streamSafetensors, writeSafetensors, type TensorToWrite } from '../../src/lib/formats/safetensors.js';
import { MemoryFiles, readJson } from '../../src/lib/model-files.js';
import { safeRelativeName } from '../../src/lib/hub/paths.js';
import { checkAdapterFits } from '../../src/lib/lora/fit.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { fullModuleName, parsePeftConfig, readPeftAdapter, writePeftAdapter, type LoraAdapter } from '../../src/lib/lora/peft.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

const base = normalizeConfig({
  architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50, head_dim: 6,
});

async function streamAll(file: Uint8Array, chunk: number): Promise<Map<string, Uint8Array>> {
  const got = new Map<string, Uint8Array>();
  await streamSafetensors((async function* () {
    for (let o = 0; o < file.byteLength; o += chunk) yield file.subarray(o, o + chunk);
  })(), file.byteLength, () => {}, (t, b) => { got.set(t.name, b.slice()); });
  return got;
}

const reason = (f: () => unknown) => {
  try { f(); return 'none'; } catch (e) { return e instanceof SafetensorsError ? e.details.reason : `other: ${e}`; }
};

describe('safetensors is as strict as the reference implementation', () => {
  const tensors: TensorToWrite[] = [
    { name: 'a', dtype: 'F32', shape: [3], data: encodeFromF32([1, 2, 3], 'F32') },
    { name: 'b', dtype: 'F16', shape: [2, 2], data: encodeFromF32([4, 5, 6, 7], 'F16') },
  ];

  it('refuses a header-length prefix one byte short when the header ends in padding (the data area shifts)', () => {
    // Metadata sized so the writer pads the header with spaces (it pads to a multiple of 8).
    const good = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => writeSafetensors(tensors, { format: 'pt', note: 'x'.repeat(k) }))
      .find((f) => f[8 + new DataView(f.buffer).getUint32(0, true) - 1] === 0x20)!;
    const n = new DataView(good.buffer).getUint32(0, true);
    expect(readSafetensors(good).data.get('a')).toEqual(tensors[0].data);
    const shifted = good.slice();
    new DataView(shifted.buffer).setUint32(0, n - 1, true);
    expect(reason(() => readSafetensors(shifted))).toBe('data-length');
  });

  it('refuses a data area longer than the tensors, and holes between tensors', () => {
    const good = writeSafetensors(tensors);
    const longer = new Uint8Array(good.byteLength + 4);
    longer.set(good);
    expect(reason(() => readSafetensors(longer))).toBe('data-length');
    const header = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } });
    const holed = new Uint8Array(8 + header.length + 12);
    new DataView(holed.buffer).setUint32(0, header.length, true);
    holed.set(new TextEncoder().encode(header), 8);
    expect(reason(() => readSafetensors(holed))).toBe('offsets-gap');
  });

  it('accepts zero-size tensors anywhere, including at the very end, in both readers', async () => {
    for (const order of [['empty', 'a', 'b'], ['a', 'empty', 'b'], ['a', 'b', 'empty'], ['empty', 'empty2']]) {
      const all: Record<string, TensorToWrite> = {
        ...Object.fromEntries(tensors.map((t) => [t.name, t])),
        empty: { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array(0) },
        empty2: { name: 'empty2', dtype: 'BF16', shape: [0], data: new Uint8Array(0) },
      };
      const file = writeSafetensors(order.map((n) => all[n]));
      const { data } = readSafetensors(file);
      expect([...data.keys()].sort()).toEqual([...order].sort());
      for (const chunk of [1, 5, 1 << 20]) {
        const got = await streamAll(file, chunk);
        expect([...got.keys()].sort()).toEqual([...order].sort());
        for (const n of order) expect(got.get(n)).toEqual(all[n].data);
      }
    }
  });
});

describe('non-finite values are found while decoding', () => {
  it('reports the first NaN or Inf of F32, F16 and BF16 data, and f16 overflow', () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const values = [0.5, -1, 2, bad, 3, NaN];
        const check = finiteCheck();
        decodeToF32(encodeFromF32(values, dtype), dtype, check);
        expect(check.index).toBe(3);
        const check16 = finiteCheck();
        decodeToF16(encodeFromF32(values, dtype), dtype, check16);
        expect(check16.index).toBe(3);
      }
      const clean = finiteCheck();
      decodeToF32(encodeFromF32([0, -0, 65504, -1e-8], dtype), dtype, clean);
      expect(clean.index).toBe(-1);
    }
    const over = finiteCheck();
    decodeToF16(encodeFromF32([1, 70000], 'F32'), 'F32', over);
    expect(over).toEqual({ index: 1, value: 70000 });
  });
});

describe('model configs are checked by range', () => {
  const ok = { architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 50 };
  it.each([
    ['null', null, /holds null, not an object/],
    ['a list', [], /holds a list/],
    ['rms_norm_eps -1', { ...ok, rms_norm_eps: -1 }, /"rms_norm_eps" is -1, expected a positive finite number/],
    ['rope_theta 0', { ...ok, rope_theta: 0 }, /"rope_theta" is 0/],
    ['llama3 factor 0', { ...ok, rope_scaling: { rope_type: 'llama3', factor: 0, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, /"factor" is 0/],
    ['linear factor 0.5', { ...ok, rope_scaling: { type: 'linear', factor: 0.5 } }, /factor is at least 1/],
    ['llama3 high <= low', { ...ok, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 4 } }, /must be greater than low_freq_factor/],
  ])('%s', (_name, cfg, message) => {
    expect(() => normalizeConfig(cfg)).toThrow(UnsupportedModelError);
    expect(() => normalizeConfig(cfg)).toThrow(message);
  });

  it('JSON side files must hold objects', async () => {
    for (const text of ['null', '[]', '3', '"x"']) {
      const files = new MemoryFiles('m', new Map([['config.json', new TextEncoder().encode(text)]]));
      await expect(readJson(files, 'config.json')).rejects.toThrow(FileFormatError);
    }
  });
});

/** PEFT files for `a`, with `edit` applied to the config first. */
function files(a: LoraAdapter, edit: (c: Record<string, unknown>) => unknown = (c) => c, tensors?: Uint8Array) {
  const peft = writePeftAdapter(a);
  const cfg = edit(JSON.parse(peft.config));
  return new MemoryFiles('adapter', new Map([
    ['adapter_config.json', new TextEncoder().encode(JSON.stringify(cfg))],
    ['adapter_model.safetensors', tensors ?? peft.safetensors],
  ]));
}

describe('PEFT configs must agree with their tensors', () => {
  const qv = syntheticAdapter(base, { name: 'qv', seed: 1, config: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] } });

  it('parsePeftConfig refuses configs that are not objects', () => {
    for (const c of [[], null, 3, 'x']) expect(() => parsePeftConfig(c)).toThrow(AdapterError);
  });

  it('a valid adapter loads and fits', async () => {
    const a = await loadPeftAdapter(files(qv));
    expect(a.modules.size).toBe(6);
    checkAdapterFits(a, base);
  });

  it.each([
    ['config [] (not an object)', () => [], /holds a list/],
    ['config null', () => null, /holds null/],
    ['rank 0', (c: Record<string, unknown>) => ({ ...c, r: 0 }), /"r" is 0; a LoRA rank is an integer >= 1/],
    ['rank 2.5', (c: Record<string, unknown>) => ({ ...c, r: 2.5 }), /a LoRA rank is an integer/],
    ['rank contradicts the tensors', (c: Record<string, unknown>) => ({ ...c, r: 8 }), /rank 4 in the file but 8 in adapter_config\.json/],
    ['rank_pattern contradicts the tensors', (c: Record<string, unknown>) => ({ ...c, rank_pattern: { q_proj: 2 } }), /rank 4 in the file but 2/],
    ['rank_pattern not a rank', (c: Record<string, unknown>) => ({ ...c, rank_pattern: { q_proj: 0 } }), /"rank_pattern\.q_proj" is 0/],
    ['invalid regex in rank_pattern', (c: Record<string, unknown>) => ({ ...c, rank_pattern: { 'q_proj(': 4 } }), /"rank_pattern\.q_proj\(" holds the regular expression .* which does not compile/],
    ['invalid regex in target_modules', (c: Record<string, unknown>) => ({ ...c, target_modules: '.*(q_proj' }), /"target_modules" holds the regular expression/],
    ['target_modules not covering the tensors', (c: Record<string, unknown>) => ({ ...c, target_modules: ['q_proj'] }), /tensors for layer 0 v_proj, which adapter_config\.json does not target/],
    ['layers_to_transform not covering the tensors', (c: Record<string, unknown>) => ({ ...c, layers_to_transform: [0, 1] }), /tensors for layer 2 q_proj, which adapter_config\.json does not target/],
    ['layers_to_transform not integers', (c: Record<string, unknown>) => ({ ...c, layers_to_transform: ['a'] }), /layers_to_transform \["a"\] must be a layer index/],
    ['lora_alpha not a number', (c: Record<string, unknown>) => ({ ...c, lora_alpha: 'big' }), /"lora_alpha" is "big", expected a finite number/],
    ['lora_dropout 1', (c: Record<string, unknown>) => ({ ...c, lora_dropout: 1 }), /lora_dropout 1 must be in \[0, 1\)/],
  ])('%s is refused', async (_name, edit, message) => {
    const err = await loadPeftAdapter(files(qv, edit)).catch((e) => e);
    // A config that is not an object is refused when the JSON is read (FileFormatError), the rest by the PEFT rules.
    expect(err instanceof AdapterError || err instanceof FileFormatError).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('patterns are matched in linear time: a catastrophic-backtracking regex cannot hang the loader', async () => {
    const t0 = performance.now();
    const a = await loadPeftAdapter(files(qv, (c) => ({ ...c, rank_pattern: { '(.*)*x': 2, '(\\w+\\.?)*z': 2 }, alpha_pattern: { '(a|a)*b': 1 } })));
    expect(a.modules.size).toBe(6);
    const re = syntheticAdapter(base, { name: 're', seed: 1, config: { r: 4, lora_alpha: 8, target_modules: '(.*q_proj|(\\w+\\.?)*x)' } });
    expect(re.modules.size).toBe(3);
    expect(performance.now() - t0).toBeLessThan(5000); // a backtracking engine takes hours on these
  });

  it('lora_alpha 1e30 is refused before it can overflow', async () => {
    const err = await loadPeftAdapter(files(qv, (c) => ({ ...c, lora_alpha: 1e30 }))).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toMatch(/beyond ±65504/);
  });

  it('a NaN or Inf in an adapter tensor is refused, naming the tensor and index', async () => {
    for (const bad of [NaN, Infinity]) {
      const poisoned = syntheticAdapter(base, { name: 'p', seed: 2, config: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] } });
      poisoned.modules.get('1.v_proj')!.b[5] = bad;
      const err = await loadPeftAdapter(files(poisoned)).catch((e) => e);
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err.details).toMatchObject({ tensor: `base_model.model.${fullModuleName(1, 'v_proj')}.lora_B.weight`, index: 5 });
    }
  });

  it('a targeted module without tensors, or layers past the base, do not fit the base', () => {
    const sub = syntheticAdapter(base, { name: 's', seed: 3, config: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] } });
    sub.modules.delete('2.q_proj');
    const peft = writePeftAdapter(sub);
    const a = readPeftAdapter('s', JSON.parse(peft.config), peft.safetensors);
    expect(() => checkAdapterFits(a, base)).toThrow(/targets model\.layers\.2\.self_attn\.q_proj .* has no lora_A\/lora_B for it/);
    const only = syntheticAdapter(base, { name: 'o', seed: 3, config: { r: 4, lora_alpha: 8, target_modules: ['q_proj'], layers_to_transform: [0, 7] } });
    expect(() => checkAdapterFits(only, base)).toThrow(/layers_to_transform names layer 7, but the base has 3 layers/);
  });
});

describe('dataset records are tokenized with bounded work', () => {
  const tokenizers = ['SmolLM2-135M-Instruct', 'TinyLlama-1.1B-Chat-v1.0'].map((dir) => new TextTokenizer(
    JSON.parse(readFileSync(new URL(`../fixtures/${dir}/tokenizer.json`, import.meta.url), 'utf8')),
    JSON.parse(readFileSync(new URL(`../fixtures/${dir}/tokenizer_config.json`, import.meta.url), 'utf8')), null,
  ));
  const sample = JSON.parse(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url), 'utf8')) as { instruction: string; input: string; output: string }[];

  it('the first n tokens of a prefix encoding equal those of the full encoding (real records, both tokenizers)', () => {
    for (const tok of tokenizers) {
      for (const r of sample.slice(0, 60)) {
        const text = `${r.instruction}\n${r.input}\n${r.output}`.repeat(3);
        const full = tok.encode(text, false);
        for (const need of [1, 7, 40, 130]) expect(encodePrefix(tok, text, false, need).slice(0, need)).toEqual(full.slice(0, need));
      }
    }
  });

  it('a record over the cutoff by 10^7 characters gives the tokens of its prefix, quickly and in bounded memory', () => {
    const tok = tokenizers[0];
    const r = sample[3];
    const heap0 = process.memoryUsage().heapUsed;
    for (const field of ['output', 'instruction'] as const) {
      const huge = { kind: 'alpaca' as const, instruction: r.instruction, input: r.input, output: r.output, [field]: r[field] + ' lorem ipsum dolor'.repeat(10_000_000 / 18) };
      const small = { ...huge, [field]: huge[field].slice(0, 20_000) };
      for (const trainOnInputs of [false, true]) {
        const o = { format: 'alpaca' as const, cutoff: 256, trainOnInputs, eosId: 2 };
        const a = toExample(tok, huge, o);
        expect(a).toEqual(toExample(tok, small, o));
        expect(a.ids).toHaveLength(256);
      }
    }
    // Tokenizing 10^7 characters whole takes gigabytes; the prefix encoding needs a few MB beyond the strings.
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(400 << 20);
  });
});

describe('file size caps', () => {
  it('a dataset file over the cap is refused before it is decoded', async () => {
    const { parseDataset } = await import('../../src/lib/data/records.js');
    const { DatasetError } = await import('../../src/lib/errors.js');
    const bytes = new TextEncoder().encode(JSON.stringify([{ instruction: 'a', output: 'b' }]));
    await expect(parseDataset(bytes, 'd.json', 16)).rejects.toThrow(DatasetError);
    await expect(parseDataset(bytes, 'd.json', 16)).rejects.toThrow(/over the 0 MiB a dataset file can be: split it/);
    await expect(parseDataset(bytes, 'd.json')).resolves.toHaveLength(1);
  });
});

describe('file names from files stay inside their folder', () => {
  it.each(['../../x.safetensors', '/etc/passwd', 'a/../../b', 'https://evil.example/x', 'C:\\x', 'a\\..\\b', '', './x', 'a//b', 'file:x', 'x\u0000'])('refuses %j', (name) => {
    expect(() => safeRelativeName(name, 'index')).toThrow(UnsafePathError);
  });
  it.each(['model-00001-of-00002.safetensors', 'sub/model.safetensors', 'a..b.safetensors'])('accepts %j', (name) => {
    expect(safeRelativeName(name, 'index')).toBe(name);
  });
});

describe('command-line numbers', () => {
  it('take decimal syntax only: 0x10, 0b1, 0o7, 1e2 (for an integer), Infinity and blanks are refused by name', async () => {
    const { parseNumber } = await import('../../src/cli/args.js');
    const int = { min: 0, max: 2 ** 32, integer: true };
    for (const bad of ['0x10', '0b1', '0o7', '1e2', 'Infinity', ' ', '1_000', '+-1']) {
      expect(() => parseNumber('--seed', bad, int), bad).toThrow(/--seed .* is not an integer/);
    }
    expect(parseNumber('--seed', '16', int)).toBe(16);
    expect(parseNumber('--seed', ' 42 ', int)).toBe(42);
    const real = { min: 0, max: 10 };
    expect(parseNumber('--temperature', '1e-1', real)).toBe(0.1);
    expect(parseNumber('--temperature', '.5', real)).toBe(0.5);
    for (const bad of ['0x1', 'Infinity', '1.2.3', 'NaN']) expect(() => parseNumber('--temperature', bad, real), bad).toThrow(/is not a number/);
  });
});

describe('optimizer state of a checkpoint', () => {
  it('is refused for a layer the model does not have, a weight of 1e30 or a negative or huge second moment', async () => {
    const { checkStateFits } = await import('../../src/lib/training/step.js');
    const { normalizeConfig } = await import('../../src/lib/model/config.js');
    const { syntheticAdapter } = await import('../../src/lib/lora/synthetic.js');
    const cfg = normalizeConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, vocab_size: 32, rms_norm_eps: 1e-5 }, {});
    const adapter = syntheticAdapter(cfg, { name: 'x', seed: 1, config: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] } });
    // qkv of layer 0: A (3 modules x r 2 x K 8), B (q 8 + k 8 + v 8 rows x r 2).
    const tensor = (key: string) => ({ key, a: new Float32Array(48), b: new Float32Array(48), mA: new Float32Array(48), vA: new Float32Array(48), mB: new Float32Array(48), vB: new Float32Array(48) });
    expect(() => checkStateFits({ tensors: [tensor('0.qkv')] }, adapter, cfg, 2)).not.toThrow();
    expect(() => checkStateFits({ tensors: [tensor('0.qkv'), tensor('99.qkv')] }, adapter, cfg, 2)).toThrow(/optimizer state for 99\.qkv, which this run does not train \(this model has 1 layers\)/);
    const big = tensor('0.qkv');
    big.a[3] = 1e30;
    expect(() => checkStateFits({ tensors: [big] }, adapter, cfg, 2)).toThrow(/a at layer 0 qkv holds 1\.0000000150474662e\+30 at index 3, beyond 10000/);
    const moments = tensor('0.qkv');
    moments.vB[0] = 1e38;
    expect(() => checkStateFits({ tensors: [moments] }, adapter, cfg, 2)).toThrow(/vB at layer 0 qkv .* beyond 100000000/);
    moments.vB[0] = -1;
    expect(() => checkStateFits({ tensors: [moments] }, adapter, cfg, 2)).toThrow(/a negative second moment/);
  });
});

describe('model folders on disk', () => {
  it('refuse a folder link on a file\'s way that leads outside, and read file links (a Hugging Face cache snapshot)', async () => {
    const { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { NodeDirFiles } = await import('../../src/lib/hub/node-files.js');
    const root = mkdtempSync(join(tmpdir(), 'lora-lab-links-'));
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.safetensors'), 'not yours');
    const model = join(root, 'model');
    mkdirSync(model);
    symlinkSync(outside, join(model, 'sub'));
    const files = new NodeDirFiles('model', model);
    await expect(files.bytes('sub/secret.safetensors')).rejects.toThrow(/goes through a folder link that leads outside the model folder/);
    await expect(files.open('sub/secret.safetensors')).rejects.toThrow(/folder link/);
    // A snapshot whose files link to blobs elsewhere (huggingface_hub's cache layout) still reads.
    const blobs = join(root, 'blobs');
    mkdirSync(blobs);
    writeFileSync(join(blobs, 'abc123'), '{"hidden_size": 8}');
    symlinkSync(join(blobs, 'abc123'), join(model, 'config.json'));
    expect(new TextDecoder().decode((await files.bytes('config.json'))!)).toBe('{"hidden_size": 8}');
  });
});
