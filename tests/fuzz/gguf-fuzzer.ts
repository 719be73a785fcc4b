// Mutation fuzzer of the GGUF reader: a small model (F32 and Q8_0 weights, gpt2-style tokenizer metadata) and a LoRA
// adapter, written by the test writer (tests/helpers/gguf-writer.ts), mutated as bytes (mostly in the header) or as
// structure (dimensions, types, names, layers, alignment, tokenizer arrays). Each case reads the header, maps the
// config, rebuilds the tokenizer and reads every tensor's data as the loader does; an adapter is loaded whole.
// The oracle: an accepted model's tensors are unique, 1-D or 2-D, aligned, inside the file and disjoint (sizes from
// ggml's block table, written here), on layers the metadata has, with one token per embedding row; an accepted
// adapter's halves are finite, on the base model's layers.

import { dequantize, isSupportedType, type GgmlType } from '../../src/lib/formats/gguf-tensors.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { normalizeConfig, type ModelConfig } from '../../src/lib/model/config.js';
import { ggufConfig, readGgufHeader } from '../../src/lib/model/gguf.js';
import { syntheticModel } from '../../src/lib/model/synthetic.js';
import { tokenizerFromGguf } from '../../src/lib/tokenizer/gguf-tokenizer.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import type { Rng } from '../../src/lib/util/rng.js';
import { ggufFromSynthetic, T, writeGguf, type GgufTensor, type KV } from '../helpers/gguf-writer.js';

/** ggml's [elements per block, bytes per block] of the types the sources use (ggml.c's type_traits). */
const BLOCK: Record<number, [number, number]> = { [T.F32]: [1, 4], [T.F16]: [1, 2], [T.Q8_0]: [32, 34], [T.Q4_0]: [32, 18] };

export class GgufFuzzFailure extends Error {
  override name = 'FuzzFailure';
}

interface Source {
  kvs: KV[];
  tensors: GgufTensor[];
  bytes: Uint8Array;
}

const SPEC = { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 64, tied: false, seed: 3 };
let sources: { model: Source[]; adapter: Source; config: ModelConfig } | undefined;

function tokenizerKvs(vocab: number): KV[] {
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: vocab - 3 }, (_, i) => String.fromCharCode(0x61 + i))];
  return [
    ['tokenizer.ggml.model', 'str', 'gpt2'], ['tokenizer.ggml.pre', 'str', 'gpt2'], ['tokenizer.ggml.tokens', 'str[]', tokens],
    ['tokenizer.ggml.merges', 'str[]', ['a b', 'c d']], ['tokenizer.ggml.bos_token_id', 'u32', 1], ['tokenizer.ggml.eos_token_id', 'u32', 2],
  ];
}

/** The sources: a model at F32 and at Q8_0, and an adapter of its shapes marked qwen2 (no q/k permutation to undo). */
function makeSources() {
  const m = syntheticModel(SPEC);
  const config = normalizeConfig(m.config, {});
  const model = (['F32', 'Q8_0'] as const).map((type): Source => {
    const bytes = ggufFromSynthetic(m, type, tokenizerKvs(SPEC.vocabSize));
    return { ...readTable(bytes), bytes };
  });
  const peft = syntheticAdapter(config, { name: 'fuzz', seed: 8, config: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }, bScale: 0.5 });
  const names: Record<string, string> = { q_proj: 'attn_q', v_proj: 'attn_v' };
  const f32 = (x: Float32Array) => new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
  const tensors = [...peft.modules.values()].flatMap((p) => [
    { name: `blk.${p.layer}.${names[p.module]}.weight.lora_a`, dims: [p.inFeatures, p.rank], type: T.F32, data: f32(p.a) },
    { name: `blk.${p.layer}.${names[p.module]}.weight.lora_b`, dims: [p.rank, p.outFeatures], type: T.F32, data: f32(p.b) },
  ]);
  const kvs: KV[] = [['general.architecture', 'str', 'qwen2'], ['general.type', 'str', 'adapter'], ['adapter.type', 'str', 'lora'], ['adapter.lora.alpha', 'f32', 8]];
  return { model, adapter: { kvs, tensors, bytes: writeGguf(kvs, tensors) }, config };
}

/** The writer's own layout read back (GGUF v3, the key types the writer writes): for structured mutations only. */
function readTable(f: Uint8Array): { kvs: KV[]; tensors: GgufTensor[] } {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  let o = 8;
  const u32 = () => { const x = v.getUint32(o, true); o += 4; return x; };
  const u64 = () => { const x = v.getUint32(o, true) + v.getUint32(o + 4, true) * 2 ** 32; o += 8; return x; };
  const str = () => { const n = u64(); const s = new TextDecoder().decode(f.subarray(o, o + n)); o += n; return s; };
  const nt = u64(), nk = u64();
  const kvs: KV[] = [];
  for (let i = 0; i < nk; i++) {
    const key = str();
    const type = u32();
    if (type === 4) kvs.push([key, 'u32', u32()]);
    else if (type === 6) { kvs.push([key, 'f32', v.getFloat32(o, true)]); o += 4; }
    else if (type === 7) { kvs.push([key, 'bool', f[o] === 1]); o += 1; }
    else if (type === 8) kvs.push([key, 'str', str()]);
    else { u32(); const n = u64(); kvs.push([key, 'str[]', Array.from({ length: n }, str)]); }
  }
  const infos = Array.from({ length: nt }, () => { const name = str(); const nd = u32(); const dims = Array.from({ length: nd }, u64); return { name, dims, type: u32(), offset: u64() }; });
  const data = Math.ceil(o / 32) * 32;
  const tensors = infos.map((t) => {
    const [per, bytes] = BLOCK[t.type];
    const size = (t.dims.reduce((a, b) => a * b, 1) / per) * bytes;
    return { name: t.name, dims: t.dims, type: t.type, data: f.slice(data + t.offset, data + t.offset + size) };
  });
  return { kvs, tensors };
}

const pick = <X>(rng: Rng, items: readonly X[]): X => items[rng.int(items.length)];

/** One structural change to the key/values or the tensor table, then written as a valid GGUF. */
function mutateStructure(rng: Rng, s: Source): Uint8Array {
  const kvs = s.kvs.map((kv) => [...kv] as KV);
  let tensors = s.tensors.map((t) => ({ ...t, dims: [...t.dims] }));
  const t = pick(rng, tensors);
  const kind = rng.int(12);
  if (kind === 0) t.dims[rng.int(t.dims.length)] += pick(rng, [-1, 1, 32, -32, 1e9]);
  else if (kind === 1) t.dims = rng.next() < 0.5 ? [...t.dims, pick(rng, [1, 2])] : t.dims.slice(0, 1);
  else if (kind === 2) t.type = pick(rng, [T.F32, T.F16, T.Q8_0, T.Q4_0, T.Q5_0, T.Q6_K, 16, 99]);
  else if (kind === 3) tensors.push({ ...t });
  else if (kind === 4) tensors = tensors.filter((x) => x !== t);
  else if (kind === 5) t.name = t.name.replace(/^blk\.\d+/, pick(rng, ['blk.99', 'blk.00', 'blk.-1', 'blk.2', 'blk.1']));
  else if (kind === 6) kvs.push(['general.alignment', 'u32', pick(rng, [0, 1, 3, 16, 64, 2 ** 31])]);
  else if (kind === 7) t.data = t.data.subarray(0, rng.int(t.data.byteLength + 1));
  else if (kind === 8) {
    const kv = pick(rng, kvs.filter(([, type]) => type === 'u32'));
    if (kv) kv[2] = pick(rng, [0, 1, 3, 2 ** 32 - 1, (kv[2] as number) + 1, (kv[2] as number) - 1]);
  } else if (kind === 9) {
    const kv = kvs.find(([k]) => k === 'tokenizer.ggml.tokens');
    if (kv) {
      const tokens = [...(kv[2] as string[])];
      const how = rng.int(4);
      if (how === 0) tokens.length = rng.int(tokens.length);
      else if (how === 1) tokens[rng.int(tokens.length)] = tokens[rng.int(tokens.length)];
      else if (how === 2) tokens.push('zz');
      else tokens.fill('a');
      kv[2] = tokens;
    }
  } else if (kind === 10) {
    const kv = kvs.find(([k]) => k === 'tokenizer.ggml.merges');
    if (kv) kv[2] = pick(rng, [['ab'], ['a  b'], ['zz qq'], [''], ['a b c']]);
  } else {
    const kv = pick(rng, kvs);
    kv[1] = pick(rng, ['u32', 'u64', 'f32', 'str', 'bool', 'u64[]'] as const);
    kv[2] = kv[1] === 'str' ? pick(rng, ['', 'gpt2', 'x'.repeat(300)]) : kv[1] === 'bool' ? true : kv[1] === 'u64[]' ? [1, 2, 3] : pick(rng, [0, 1, 7, 1e6]);
  }
  return writeGguf(kvs, tensors);
}

function mutateBytes(rng: Rng, src: Uint8Array, region: number): Uint8Array {
  const f = src.slice();
  for (let e = 1 + rng.int(4); e > 0; e--) {
    const at = rng.int(Math.max(1, Math.min(region, f.byteLength)));
    f[at] = rng.next() < 0.5 ? rng.int(256) : pick(rng, [0, 1, 2, 0x7f, 0x80, 0xff]);
  }
  return rng.next() < 0.1 ? f.subarray(0, rng.int(f.byteLength + 1)) : f;
}

/** Reads a model as the engine does (header, config, tokenizer, every tensor's data) and checks what it accepted. */
async function readModel(f: Uint8Array): Promise<void> {
  const files = new MemoryFiles('m.gguf', new Map([['m.gguf', f]]));
  const h = await readGgufHeader(files, 'm.gguf');
  const { raw } = ggufConfig(h, 'm.gguf');
  const config = normalizeConfig(raw, {});
  const meta = h.parsed.metadata as unknown as Record<string, unknown>;
  const rebuilt = tokenizerFromGguf(meta, 'm.gguf', config.vocabSize);
  new TextTokenizer(rebuilt.json, rebuilt.config, null).encode('abc');
  const alignment = Number(meta['general.alignment'] ?? 32);
  const extents: [number, number, string][] = [];
  const names = new Set<string>();
  for (const t of h.parsed.tensorInfos) {
    const dims = t.shape.map(Number);
    if (names.has(t.name)) throw new GgufFuzzFailure(`accepted ${t.name} twice`);
    names.add(t.name);
    if (dims.length < 1 || dims.length > 2) throw new GgufFuzzFailure(`accepted ${t.name} with ${dims.length} dimensions`);
    const layer = /^blk\.(\d+)\./.exec(t.name);
    if (layer && Number(layer[1]) >= config.numLayers) throw new GgufFuzzFailure(`accepted ${t.name} beyond ${config.numLayers} layers`);
    if (!BLOCK[t.dtype]) continue; // other types: refused by name when loaded (the loader's job, with a GPU)
    const [per, bytes] = BLOCK[t.dtype];
    const start = h.dataOffset + Number(t.offset);
    const end = start + (dims.reduce((a, b) => a * b, 1) / per) * bytes;
    if (start % alignment !== 0 || end > f.byteLength || !Number.isInteger(end)) throw new GgufFuzzFailure(`accepted ${t.name} at bytes ${start} to ${end} of ${f.byteLength}`);
    extents.push([start, end, t.name]);
  }
  extents.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < extents.length; i++) if (extents[i][0] < extents[i - 1][1]) throw new GgufFuzzFailure(`accepted ${extents[i][2]} overlapping ${extents[i - 1][2]}`);
  const embd = h.parsed.tensorInfos.find((t) => t.name === 'token_embd.weight');
  const tokens = meta['tokenizer.ggml.tokens'] as unknown[];
  if (embd && Number(embd.shape[1]) !== tokens.length) throw new GgufFuzzFailure(`accepted ${tokens.length} tokens for ${Number(embd.shape[1])} embedding rows`);
  // The data, as the loader streams it: in file order, each tensor dequantized.
  for (const t of [...h.parsed.tensorInfos].sort((a, b) => Number(a.offset - b.offset))) {
    if (!isSupportedType(t.dtype) || !BLOCK[t.dtype]) continue;
    const count = t.shape.map(Number).reduce((a, b) => a * b, 1);
    const start = h.dataOffset + Number(t.offset);
    const [per, bytes] = BLOCK[t.dtype];
    dequantize(t.dtype as GgmlType, await h.reader.take(start, start + (count / per) * bytes, true), count);
  }
}

async function readAdapter(f: Uint8Array, base: ModelConfig): Promise<void> {
  const adapter = await loadPeftAdapter(new MemoryFiles('a.gguf', new Map([['a.gguf', f]])), 'a', base);
  for (const p of adapter.modules.values()) {
    if (p.layer >= base.numLayers) throw new GgufFuzzFailure(`accepted an adapter module on layer ${p.layer}`);
    if (p.a.length !== p.rank * p.inFeatures || p.b.length !== p.outFeatures * p.rank) throw new GgufFuzzFailure(`accepted wrong sizes at ${p.layer}.${p.module}`);
    if (!Number.isFinite(p.scaling) || p.a.some((x) => !Number.isFinite(x)) || p.b.some((x) => !Number.isFinite(x))) throw new GgufFuzzFailure(`accepted non-finite values at ${p.layer}.${p.module}`);
  }
}

/** The last case's file, to write out and replay when a case fails. */
export const lastCase = { file: new Uint8Array(0), adapter: false };

/** One case: a mutated model or adapter, read; the caller counts typed errors and fails on anything else. */
export async function ggufCase(rng: Rng): Promise<void> {
  sources ??= makeSources();
  const adapter = rng.next() < 0.3;
  const s = adapter ? sources.adapter : pick(rng, sources.model);
  const header = s.bytes.byteLength - s.tensors.reduce((a, t) => a + t.data.byteLength, 0);
  const r = rng.next();
  const f = r < 0.5 ? mutateStructure(rng, s) : mutateBytes(rng, s.bytes, r < 0.9 ? header : s.bytes.byteLength);
  Object.assign(lastCase, { file: f, adapter });
  if (adapter) await readAdapter(f, sources.config);
  else await readModel(f);
}
