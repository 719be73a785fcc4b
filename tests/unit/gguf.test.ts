// GGUF reading: every tensor type's dequantization against a float64 reference written element by element from the
// block layouts (tests/helpers/gguf-writer.ts), the metadata mapped onto a transformers config, the names mapped,
// llama.cpp's q/k permutation undone, and files that are not what they claim refused with typed errors.

import { describe, expect, it } from 'vitest';
import { FileFormatError, UnsupportedModelError } from '../../src/lib/errors.js';
import { loadConfig } from '../../src/lib/model/load.js';
import { dequantize, GGML, type GgmlType } from '../../src/lib/formats/gguf-tensors.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { ggufConfig, hfTensorName, readGgufHeader } from '../../src/lib/model/gguf.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { Rng } from '../../src/lib/util/rng.js';
import { ggufFromSynthetic, permuteRows, randomBlocks, referenceElement, T, writeGguf, type GgufTensor, type KV } from '../helpers/gguf-writer.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { type LoraAdapter } from '../../src/lib/lora/peft.js';
import { tokenizerFromGguf } from '../../src/lib/tokenizer/gguf-tokenizer.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';

describe('GGUF tensor types', () => {
  it.each([['Q8_0', T.Q8_0, 32], ['Q4_0', T.Q4_0, 32], ['Q4_K', T.Q4_K, 256], ['Q6_K', T.Q6_K, 256]] as const)('%s blocks dequantize exactly as the specification says', (_, type, per) => {
    const rng = new Rng(type);
    const blocks = 5;
    const data = randomBlocks(type, blocks, () => rng.next());
    const got = dequantize(type as GgmlType, data, blocks * per);
    for (let e = 0; e < blocks * per; e++) expect(got[e]).toBeCloseTo(referenceElement(type, data, e), 6);
  });

  it('F32, F16 and BF16 read as the values they hold', () => {
    const f32 = new Float32Array([1.5, -2.25, 3e-8]);
    expect([...dequantize(GGML.F32, new Uint8Array(f32.buffer), 3)]).toEqual([...f32]);
    expect([...dequantize(GGML.F16, Uint8Array.of(0x00, 0x3c, 0x00, 0xc0), 2)]).toEqual([1, -2]);
    expect([...dequantize(GGML.BF16, Uint8Array.of(0x80, 0x3f, 0x40, 0xc0), 2)]).toEqual([1, -3]);
  });
});

describe('GGUF models', () => {
  const spec = { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 96, tied: false, seed: 5 };

  it('maps the metadata onto the config the safetensors twin has', async () => {
    const m = syntheticModel(spec);
    const files = new MemoryFiles('tiny.gguf', new Map([['tiny.gguf', ggufFromSynthetic(m)]]));
    expect(files.gguf).toBe('tiny.gguf');
    const header = await readGgufHeader(files, 'tiny.gguf');
    const { raw, generation } = ggufConfig(header, 'tiny.gguf');
    const fromGguf = normalizeConfig(raw, generation);
    const fromJson = normalizeConfig(m.config, {});
    for (const k of ['architecture', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize', 'ropeTheta', 'tieWordEmbeddings', 'qkvBias'] as const) {
      expect(fromGguf[k], k).toEqual(fromJson[k]);
    }
    expect(fromGguf.rmsNormEps).toBeCloseTo(fromJson.rmsNormEps, 9);
  });

  it('names every tensor as transformers does', () => {
    expect(hfTensorName('token_embd.weight')).toBe('model.embed_tokens.weight');
    expect(hfTensorName('blk.3.attn_q.bias')).toBe('model.layers.3.self_attn.q_proj.bias');
    expect(hfTensorName('blk.0.ffn_down.weight')).toBe('model.layers.0.mlp.down_proj.weight');
    expect(hfTensorName('blk.0.attn_output.weight')).toBe('model.layers.0.self_attn.o_proj.weight');
    expect(hfTensorName('output.weight')).toBe('lm_head.weight');
    expect(hfTensorName('blk.0.ffn_gate_inp.weight')).toBeNull(); // a mixture-of-experts router: not ours
  });

  it('refuses what it cannot read, saying what to do', async () => {
    const open = (bytes: Uint8Array) => readGgufHeader(new MemoryFiles('x.gguf', new Map([['x.gguf', bytes]])), 'x.gguf');
    await expect(open(new TextEncoder().encode('not a gguf file at all, just text'))).rejects.toThrow(FileFormatError);
    const phi = writeGguf([['general.architecture', 'str', 'phi2']], []);
    await expect(open(phi).then((h) => ggufConfig(h, 'x.gguf'))).rejects.toThrow(/GGUF "phi2" model; the engine runs llama, mistral, qwen2/);
    const noHeads = writeGguf([['general.architecture', 'str', 'llama'], ['llama.embedding_length', 'u32', 8]], []);
    await expect(open(noHeads).then((h) => ggufConfig(h, 'x.gguf'))).rejects.toThrow(/lacks llama.attention.head_count/);
  });
});

describe('GGUF sources', () => {
  it('a repo id followed by a .gguf file name, a .gguf URL and a folder of picked files each name their GGUF file', async () => {
    const { parseSourceText, resolveSource } = await import('../../src/lib/hub/source.js');
    expect(parseSourceText('bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf')).toEqual({ kind: 'hf', repo: 'bartowski/SmolLM2-135M-Instruct-GGUF', revision: undefined, file: 'SmolLM2-135M-Instruct-Q4_K_M.gguf' });
    expect(parseSourceText('org/repo@v2/sub/m.gguf')).toEqual({ kind: 'hf', repo: 'org/repo', revision: 'v2', file: 'sub/m.gguf' });
    expect(parseSourceText('org/repo@main')).toEqual({ kind: 'hf', repo: 'org/repo', revision: 'main' });
    const env = { builtin: () => { throw new Error('unused'); } };
    expect(resolveSource({ kind: 'url', url: 'https://example.com/models/m-Q8_0.gguf' }, env).gguf).toBe('m-Q8_0.gguf');
    expect(resolveSource({ kind: 'url', url: 'https://example.com/models/m/' }, env).gguf).toBeUndefined();
    const picked = [new File([new Uint8Array(4)], 'm.gguf'), new File(['{}'], 'tokenizer.json')];
    expect(resolveSource({ kind: 'files', files: picked }, env).gguf).toBe('m.gguf');
    // A safetensors folder that also holds a .gguf stays a safetensors model.
    expect(resolveSource({ kind: 'files', files: [...picked, new File(['{}'], 'config.json')] }, env).gguf).toBeUndefined();
  });
});

describe('GGUF LoRA adapters', () => {
  const spec = { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 96, tied: false, seed: 5 };

  /** An adapter as convert_lora_to_gguf.py writes it: A as ne [in, r], B as ne [r, out] with q/k rows permuted. */
  function ggufAdapter(a: LoraAdapter, dh: number, alpha: number): Uint8Array {
    const tensors: GgufTensor[] = [];
    const names: Record<string, string> = { q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output', gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down' };
    for (const p of a.modules.values()) {
      const b = p.module === 'q_proj' || p.module === 'k_proj' ? permuteRows(p.b, p.outFeatures, p.rank, dh) : p.b;
      const bytes = (x: Float32Array) => new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
      tensors.push({ name: `blk.${p.layer}.${names[p.module]}.weight.lora_a`, dims: [p.inFeatures, p.rank], type: T.F32, data: bytes(p.a) });
      tensors.push({ name: `blk.${p.layer}.${names[p.module]}.weight.lora_b`, dims: [p.rank, p.outFeatures], type: T.F32, data: bytes(b) });
    }
    return writeGguf([['general.architecture', 'str', 'llama'], ['general.type', 'str', 'adapter'], ['adapter.type', 'str', 'lora'], ['adapter.lora.alpha', 'f32', alpha]], tensors);
  }

  it('equals its PEFT twin: the same A, B (q/k rows unpermuted) and scale for every module', async () => {
    const config = normalizeConfig(syntheticModel(spec).config, {});
    const peft = syntheticAdapter(config, { name: 'twin', seed: 4, config: { r: 4, lora_alpha: 8, target_modules: 'all-linear' }, bScale: 0.5 });
    const files = new MemoryFiles('adapter.gguf', new Map([['adapter.gguf', ggufAdapter(peft, config.headDim, 8)]]));
    const got = await loadPeftAdapter(files, 'from-gguf', config);
    expect([...got.modules.keys()].sort()).toEqual([...peft.modules.keys()].sort());
    for (const [key, p] of peft.modules) {
      const g = got.modules.get(key)!;
      expect([g.rank, g.inFeatures, g.outFeatures, g.scaling], key).toEqual([p.rank, p.inFeatures, p.outFeatures, p.scaling]);
      expect(g.a, key).toEqual(p.a);
      expect(g.b, key).toEqual(p.b);
    }
  });

  it('a GGUF model given as an adapter, or an adapter without its base, says what to do', async () => {
    const config = normalizeConfig(syntheticModel(spec).config, {});
    const model = new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(syntheticModel(spec))]]));
    await expect(loadPeftAdapter(model, 'm', config)).rejects.toThrow(/is not a GGUF LoRA adapter .*load a GGUF model in the model panel/);
    const peft = syntheticAdapter(config, { name: 'twin', seed: 4, config: { r: 4, lora_alpha: 8, target_modules: ['q_proj'] } });
    const files = new MemoryFiles('a.gguf', new Map([['a.gguf', ggufAdapter(peft, config.headDim, 8)]]));
    await expect(loadPeftAdapter(files, 'a')).rejects.toThrow(/needs its base model loaded first/);
  });
});

describe('GGUF RoPE scaling', () => {
  it('reads rope_freqs into per-pair divisors equal to the llama3 rule to f32 rounding', async () => {
    const { TINY_CONFIGS } = await import('../helpers/models.js');
    const { ropeInvFreq } = await import('../../src/lib/model/config.js');
    const { loadConfig } = await import('../../src/lib/model/load.js');
    const m = syntheticModel(TINY_CONFIGS.llama3Scaling);
    const { config } = await loadConfig(new MemoryFiles('m.gguf', new Map([['m.gguf', ggufFromSynthetic(m)]])));
    expect(config.ropeScaling?.type).toBe('freq_factors');
    const want = ropeInvFreq(normalizeConfig(m.config, {}));
    ropeInvFreq(config).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-7 * want[i]));
    expect(want.some((v, i) => Math.abs(v - ropeInvFreq({ ...config, ropeScaling: null })[i]) > 1e-3 * v)).toBe(true); // the scaling is not a no-op here
  });
});

// Files damaged or made by hand to run the wrong model: each refused in words before any tensor data is read.
describe("GGUF files held to llama.cpp's loader rules", () => {
  const open = (bytes: Uint8Array) => readGgufHeader(new MemoryFiles('x.gguf', new Map([['x.gguf', bytes]])), 'x.gguf');
  const arch: KV[] = [['general.architecture', 'str', 'llama']];
  const f32 = (n: number) => new Uint8Array(4 * n);
  const ok = (name: string, dims: number[]): GgufTensor => ({ name, dims, type: T.F32, data: f32(dims.reduce((a, b) => a * b, 1)) });

  it('a well-formed table reads', async () => {
    await expect(open(writeGguf(arch, [ok('a.weight', [32, 4]), ok('b.weight', [32])]))).resolves.toBeDefined();
  });

  it('general.alignment that is not a power of two', async () => {
    await expect(open(writeGguf([...arch, ['general.alignment', 'u32', 3]], [ok('a.weight', [32, 4])]))).rejects.toThrow(/general.alignment is 3, not a power of two/);
  });

  it('a metadata key listed twice', async () => {
    const file = writeGguf([...arch, ['llama.context_length', 'u32', 2048], ['llama.context_length', 'u32', 4096]], [ok('a.weight', [32, 4])]);
    await expect(open(file)).rejects.toThrow(/its header lists 3 metadata keys but only 2 distinct ones: a key is repeated/);
  });

  it('a name listed twice', async () => {
    await expect(open(writeGguf(arch, [ok('a.weight', [32, 4]), ok('a.weight', [32, 4])]))).rejects.toThrow(/tensor a.weight is listed twice/);
  });

  it('a 3-D weight', async () => {
    await expect(open(writeGguf(arch, [ok('a.weight', [32, 4, 2])]))).rejects.toThrow(/tensor a.weight has 3 dimensions \[32,4,2\]; the engine's weights have 1 or 2/);
  });

  it('a type declared over data of another size: the tensors overlap, named with consistent bytes', async () => {
    // Declared F32 [32, 4] (512 bytes) over 32 bytes of data: the writer placed the next tensor 32 bytes on.
    const file = writeGguf(arch, [{ name: 'a.weight', dims: [32, 4], type: T.F32, data: f32(8) }, ok('b.weight', [32]), ok('c.weight', [32, 8])]);
    const error = await open(file).catch((e: Error) => e);
    expect(error).toBeInstanceOf(FileFormatError);
    const m = /tensor b.weight \(bytes ([\d,]+) to ([\d,]+)\) overlaps a.weight \(bytes ([\d,]+) to ([\d,]+)\)/.exec((error as Error).message);
    expect(m, (error as Error).message).not.toBeNull();
    const [bStart, bEnd, aStart, aEnd] = m!.slice(1).map((x) => Number(x.replaceAll(',', '')));
    expect([bEnd - bStart, aEnd - aStart, bStart - aStart]).toEqual([128, 512, 32]);
  });

  it('a bad dimension is refused from the header, without reading the file it points past', async () => {
    const file = writeGguf(arch, [{ name: 'a.weight', dims: [32, 1e9], type: T.F32, data: f32(32) }]);
    await expect(open(file)).rejects.toThrow(/tensor a.weight \(F32 \[32,1000000000\], 128,000,000,000 bytes from byte [\d,]+\) ends past the end of the file at byte [\d,]+/);
    await expect(open(writeGguf(arch, [{ name: 'a.weight', dims: [0, 4], type: T.F32, data: f32(0) }]))).rejects.toThrow(/dimensions \[0,4\], not positive counts/);
  });

  it('a count in the header that points past the file is refused at once, not read as zeros', async () => {
    // Found by the fuzzer: a tensor count of 8,388,616 in a 62-byte file made the parser read zeros up to its 50 MB cap.
    const file = writeGguf(arch, [ok('a.weight', [32, 4])]).slice(0, 62);
    new DataView(file.buffer).setUint32(8, 0x800008, true); // the u64 tensor count's low half
    const started = performance.now();
    await expect(open(file)).rejects.toThrow(/its header runs past the end of the file \(62 bytes\)/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('a bad value in the metadata is named by its GGUF key, not as a config.json field', async () => {
    const m = syntheticModel({ hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 96, tied: false, seed: 5 });
    const file = ggufFromSynthetic(m);
    const key = new TextEncoder().encode('llama.context_length');
    const at = file.findIndex((_, i) => key.every((b, j) => file[i + j] === b)) + key.length + 4; // past the key and its type id
    new DataView(file.buffer).setUint32(at, 2 ** 31, true);
    const error = await loadConfig(new MemoryFiles('x.gguf', new Map([['x.gguf', file]]))).catch((e: Error) => e);
    expect(error).toBeInstanceOf(UnsupportedModelError);
    expect((error as Error).message).toMatch(/^x.gguf: the GGUF metadata's llama.context_length is 2147483648, over the \d+ of any supported model/);
    expect((error as Error).message).not.toMatch(/config.json/);
  });

  it('rows that are not whole blocks of a quantized type', async () => {
    await expect(open(writeGguf(arch, [{ name: 'a.weight', dims: [40, 2], type: T.Q8_0, data: new Uint8Array(68) }]))).rejects.toThrow(/tensor a.weight is Q8_0 with rows of 40 elements, not a multiple of its block of 32/);
  });
});

describe('GGUF LoRA adapters that do not fit', () => {
  const spec = { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 96, tied: false, seed: 5 };
  const config = normalizeConfig(syntheticModel(spec).config, {});
  const head = (arch: string): KV[] => [['general.architecture', 'str', arch], ['general.type', 'str', 'adapter'], ['adapter.type', 'str', 'lora'], ['adapter.lora.alpha', 'f32', 8]];
  const half = (name: string, dims: number[], fill = 0.01): GgufTensor => ({ name, dims, type: T.F32, data: new Uint8Array(new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill).buffer) });
  const pair = (layer: string): GgufTensor[] => [half(`blk.${layer}.attn_v.weight.lora_a`, [32, 4]), half(`blk.${layer}.attn_v.weight.lora_b`, [4, 16])];
  const load = (kvs: KV[], tensors: GgufTensor[]) => loadPeftAdapter(new MemoryFiles('a.gguf', new Map([['a.gguf', writeGguf(kvs, tensors)]])), 'a', config);

  it('a well-formed one loads', async () => {
    await expect(load(head('llama'), pair('1'))).resolves.toBeDefined();
  });
  it('for another architecture', async () => {
    await expect(load(head('gpt2'), pair('0'))).rejects.toThrow(/adapter for a GGUF "gpt2" model; the engine runs llama, mistral, qwen2/);
  });
  it("for a family other than the base model's (its q and k rows are ordered another way)", async () => {
    // The base is LLaMA: a qwen2 adapter's rows were not permuted by the converter, and would be un-permuted wrongly.
    await expect(load(head('qwen2'), pair('0'))).rejects.toThrow(/a.gguf is a LoRA adapter for a qwen2 model, but the loaded model is LlamaForCausalLM: load it over a qwen2 model/);
  });
  it('a layer written blk.00', async () => {
    await expect(load(head('llama'), pair('00'))).rejects.toThrow(/tensor "blk.00.attn_v.weight.lora_a" is not a LoRA weight/);
  });
  it('a 1-D, 3-D or duplicate lora_a', async () => {
    await expect(load(head('llama'), [half('blk.0.attn_v.weight.lora_a', [128]), pair('0')[1]])).rejects.toThrow(/lora_a has 1 dimension\(s\) \[128\]; a LoRA half is a matrix/);
    await expect(load(head('llama'), [half('blk.0.attn_v.weight.lora_a', [32, 4, 1]), pair('0')[1]])).rejects.toThrow(/has 3 dimensions/);
    await expect(load(head('llama'), [...pair('0'), pair('0')[0]])).rejects.toThrow(/lora_a is listed twice/);
  });
  it('NaN weights are found at load, naming the tensor', async () => {
    const [a, b] = pair('0');
    await expect(load(head('llama'), [a, half(b.name, [4, 16], NaN)])).rejects.toThrow(/tensor blk.0.attn_v.weight.lora_b holds NaN at index 0; an adapter's weights must be finite/);
  });
  it('a layer the base model does not have', async () => {
    await expect(load(head('llama'), pair('7'))).rejects.toThrow(/is for layer 7, but the base model has 2 layers \(0 to 1\)/);
  });
  it('a u64 general.type, or q rows that are not whole heads of the base, says what is wrong', async () => {
    const kvs = head('llama').map((kv): KV => (kv[0] === 'general.type' ? ['general.type', 'u64', 7] : kv));
    await expect(load(kvs, pair('0'))).rejects.toThrow(/is not a GGUF LoRA adapter \(general.type 7, adapter.type "lora"\)/);
    const q = [half('blk.0.attn_q.weight.lora_a', [32, 4]), half('blk.0.attn_q.weight.lora_b', [4, 12])];
    await expect(load(head('llama'), q)).rejects.toThrow(/lora_b has 12 output rows, not a whole number of the base model's heads of 8/);
  });

  it('tokenizer scores written as u64 are refused as not numbers, in words', async () => {
    const meta = { 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': ['a', 'b'], 'tokenizer.ggml.scores': [1n, 2n] };
    expect(() => tokenizerFromGguf(meta, 'x.gguf', 2)).toThrow(/tokenizer.ggml.scores\[0\] is 1, not a number/);
  });
});
