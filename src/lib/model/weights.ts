// The model's weights on the GPU and how checkpoint tensors land there.
// Matrices keep the checkpoint layout (N, K) with rows padded to a multiple of 4 elements (4-byte aligned f16 rows)
// and are split into row shards when bigger than one storage binding (a 128k x 2048 embedding is 1 GB in f32).
// q/k/v are concatenated into one (H + 2 Hkv) Dh x D matrix so one dispatch computes all three.
// Precision (chosen at load): the layers' matrices are stored as f32, f16, or quantized to q8/q4 blocks while they
// stream in (quant/blocks.ts). Under q8 and q4 the embedding (and so a tied lm_head) and an untied lm_head are q8: the
// logits are the most sensitive projection (llama.cpp's Q4_K_M keeps them at 6 bits), and a 150k-token vocabulary in
// f16 alone would take a 1.5B model past 1.2 GB.

import { WeightMismatchError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { decodeToF16, decodeToF32, finiteCheck, nonFinite, type DType, type FiniteCheck } from '../formats/dtype.js';
import { isQuantized, quantizeRows, rowLayout, type WeightFormat } from '../quant/blocks.js';
import type { ModelConfig } from './config.js';

export interface Shard {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

/** A (N, K) matrix, possibly in several row shards. */
export interface Matrix {
  label: string;
  n: number;
  k: number;
  format: WeightFormat;
  /** Row stride: elements for f32/f16 (K rounded up to 4), u32 words for q8/q4 (rowLayout().words). */
  ldw: number;
  shards: Shard[];
}

export interface LayerWeights {
  attnNorm: GPUBuffer;     // (D) f32
  qkv: Matrix;             // ((H + 2 Hkv) Dh, D)
  qkvBias: GPUBuffer | null; // ((H + 2 Hkv) Dh) f32
  qkNorm: GPUBuffer | null;  // (2, Dh) f32: q_norm's gain, then k_norm's (Qwen3, Gemma 3)
  o: Matrix;               // (D, H Dh)
  postAttnNorm: GPUBuffer | null; // (D) f32: Gemma's norm of the attention output
  mlpNorm: GPUBuffer;      // (D) f32
  postMlpNorm: GPUBuffer | null;  // (D) f32: Gemma's norm of the MLP output
  gate: Matrix;            // (F, D)
  up: Matrix;              // (F, D), sharded like gate
  down: Matrix;            // (D, F)
}

export interface ModelWeights {
  embed: Matrix;           // (V, D)
  layers: LayerWeights[];
  finalNorm: GPUBuffer;    // (D) f32
  lmHead: Matrix;          // (V, D); the embedding itself when tied
  /** Bytes of weight buffers on the GPU. */
  bytes: number;
}

/** Where one checkpoint tensor goes: rows [rowOffset, rowOffset + shape[0]) of a matrix, or a span of an f32 vector. */
/** Rows of a checkpoint tensor that go to rows of a matrix (a fused tensor, Phi-3's gate_up_proj, spans two). */
interface Span { matrix: Matrix; rowOffset: number; rows: number }

type Target =
  | { kind: 'matrix'; spans: Span[]; shape: [number, number] }
  /** `shift` is added to each value: Gemma's norm gains are stored as w and applied as 1 + w. */
  | { kind: 'vector'; buffer: GPUBuffer; offset: number; length: number; shift: number };

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** Frees every buffer of a model's weights (a tied lm_head is the embedding: freed once). */
export function destroyWeights(gpu: Gpu, w: ModelWeights): void {
  const matrices = new Set<Matrix>([w.embed, w.lmHead, ...w.layers.flatMap((l) => [l.qkv, l.o, l.gate, l.up, l.down])]);
  for (const m of matrices) for (const s of m.shards) gpu.destroyBuffer(s.buffer);
  for (const l of w.layers) for (const b of [l.attnNorm, l.mlpNorm, l.qkvBias, l.qkNorm, l.postAttnNorm, l.postMlpNorm]) if (b) gpu.destroyBuffer(b);
  gpu.destroyBuffer(w.finalNorm);
}

export class WeightLoader {
  readonly weights: ModelWeights;
  readonly #targets = new Map<string, Target>();
  readonly #loaded = new Set<string>();

  /**
   * `precision`: how the layers' matrices are stored (f16 on any device: read as u32 pairs). `gainsShifted`: the
   * norm gains arrive with Gemma's 1 already added (llama.cpp's converter adds it), so it is not added again.
   */
  constructor(private readonly gpu: Gpu, private readonly cfg: ModelConfig, readonly precision: WeightFormat = gpu.f16 ? 'f16' : 'f32', gainsShifted = false) {
    const shift = gainsShifted ? 0 : cfg.normOffset;
    const gainOf = (buffer: GPUBuffer, offset = 0, length = cfg.hiddenSize): Target => ({ kind: 'vector', buffer, offset, length, shift });
    const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
    const qkvRows = (H + 2 * Hkv) * Dh;
    let bytes = 0;
    const float: WeightFormat = gpu.f16 && precision !== 'f32' ? 'f16' : 'f32';
    const matrix = (label: string, n: number, k: number, alignWith?: Matrix, format: WeightFormat = precision): Matrix => {
      const m = allocMatrix(gpu, label, n, k, format, alignWith);
      bytes += m.shards.reduce((a, s) => a + s.buffer.size, 0);
      return m;
    };
    const vector = (label: string, n: number): GPUBuffer => {
      const b = gpu.createBuffer(label, n * 4, USAGE());
      bytes += b.size;
      return b;
    };
    const table: WeightFormat = isQuantized(precision) ? 'q8' : float;
    const embed = matrix('embed_tokens', V, D, undefined, table);
    this.#route('model.embed_tokens.weight', { kind: 'matrix', spans: [{ matrix: embed, rowOffset: 0, rows: V }], shape: [V, D] });
    const layers: LayerWeights[] = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const gate = matrix(`L${i}.gate`, F, D);
      const l: LayerWeights = {
        attnNorm: vector(`L${i}.attn_norm`, D),
        qkv: matrix(`L${i}.qkv`, qkvRows, D),
        qkvBias: cfg.qkvBias ? vector(`L${i}.qkv_bias`, qkvRows) : null,
        qkNorm: cfg.qkNorm ? vector(`L${i}.qk_norm`, 2 * Dh) : null,
        o: matrix(`L${i}.o`, D, H * Dh),
        postAttnNorm: cfg.sandwichNorms ? vector(`L${i}.post_attn_norm`, D) : null,
        mlpNorm: vector(`L${i}.mlp_norm`, D),
        postMlpNorm: cfg.sandwichNorms ? vector(`L${i}.post_mlp_norm`, D) : null,
        gate,
        up: matrix(`L${i}.up`, F, D, gate),
        down: matrix(`L${i}.down`, D, F),
      };
      this.#route(`${p}input_layernorm.weight`, gainOf(l.attnNorm));
      if (l.postAttnNorm && l.postMlpNorm) {
        // Gemma: post_attention_layernorm normalizes the attention output; the MLP's input norm is pre_feedforward.
        this.#route(`${p}post_attention_layernorm.weight`, gainOf(l.postAttnNorm));
        this.#route(`${p}pre_feedforward_layernorm.weight`, gainOf(l.mlpNorm));
        this.#route(`${p}post_feedforward_layernorm.weight`, gainOf(l.postMlpNorm));
      } else this.#route(`${p}post_attention_layernorm.weight`, gainOf(l.mlpNorm));
      const parts: [string, number, number][] = [['q', 0, H * Dh], ['k', H * Dh, Hkv * Dh], ['v', (H + Hkv) * Dh, Hkv * Dh]];
      if (cfg.fusedProjections) {
        // Phi-3: qkv_proj rows are [q; k; v] as the engine keeps them; gate_up_proj rows [gate; up] go to two matrices.
        this.#route(`${p}self_attn.qkv_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.qkv, rowOffset: 0, rows: qkvRows }], shape: [qkvRows, D] });
        this.#route(`${p}mlp.gate_up_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.gate, rowOffset: 0, rows: F }, { matrix: l.up, rowOffset: 0, rows: F }], shape: [2 * F, D] });
      }
      for (const [name, off, rows] of cfg.fusedProjections ? [] : parts) {
        this.#route(`${p}self_attn.${name}_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.qkv, rowOffset: off, rows: rows }], shape: [rows, D] });
        if (l.qkvBias) this.#route(`${p}self_attn.${name}_proj.bias`, { kind: 'vector', buffer: l.qkvBias, offset: off, length: rows, shift: 0 });
      }
      if (l.qkNorm) {
        this.#route(`${p}self_attn.q_norm.weight`, gainOf(l.qkNorm, 0, Dh));
        this.#route(`${p}self_attn.k_norm.weight`, gainOf(l.qkNorm, Dh, Dh));
      }
      this.#route(`${p}self_attn.o_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.o, rowOffset: 0, rows: D }], shape: [D, H * Dh] });
      if (!cfg.fusedProjections) {
        this.#route(`${p}mlp.gate_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.gate, rowOffset: 0, rows: F }], shape: [F, D] });
        this.#route(`${p}mlp.up_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.up, rowOffset: 0, rows: F }], shape: [F, D] });
      }
      this.#route(`${p}mlp.down_proj.weight`, { kind: 'matrix', spans: [{ matrix: l.down, rowOffset: 0, rows: D }], shape: [D, F] });
      layers.push(l);
    }
    const finalNorm = vector('final_norm', D);
    this.#route('model.norm.weight', gainOf(finalNorm));
    let lmHead = embed;
    if (!cfg.tieWordEmbeddings) {
      lmHead = matrix('lm_head', V, D, undefined, table);
      this.#route('lm_head.weight', { kind: 'matrix', spans: [{ matrix: lmHead, rowOffset: 0, rows: V }], shape: [V, D] });
    }
    this.weights = { embed, layers, finalNorm, lmHead, bytes };
  }

  #route(name: string, t: Target): void {
    this.#targets.set(name, t);
  }

  /** Whether the checkpoint tensor `name` is one the model uses (others, like rotary caches, are skipped). */
  wants(name: string): boolean {
    return this.#targets.has(this.#canonical(name));
  }

  /** A tensor of the checkpoint the model does not read: a Gemma 3 vision tower's (or its projector's). */
  skips(name: string): boolean {
    return this.cfg.visionTower && /^(model\.)?(vision_tower|multi_modal_projector)\./.test(name);
  }

  /** The name a tensor is routed by: a Gemma 3 with a vision tower keeps its text model under a prefix. */
  #canonical(name: string): string {
    if (!this.cfg.visionTower) return name;
    return name.replace(/^(language_model\.model|model\.language_model)\./, 'model.').replace(/^language_model\.lm_head\./, 'lm_head.');
  }

  /**
   * Uploads one checkpoint tensor of `file`, converting to the storage type. A NaN or infinite value (or one that
   * overflows f16 storage) is refused, naming the file, tensor and first bad index.
   */
  upload(name: string, dtype: string, shape: number[], bytes: Uint8Array, file = 'model.safetensors'): void {
    name = this.#canonical(name);
    const t = this.#targets.get(name);
    if (!t) return;
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
      throw new WeightMismatchError(`${name} has dtype ${dtype}; the engine loads F32, F16 and BF16 checkpoints. Convert the model (e.g. save it with torch_dtype=bfloat16).`, { tensor: name });
    }
    const expected = t.kind === 'matrix' ? t.shape : [t.length];
    if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
      throw new WeightMismatchError(
        `${name} has shape [${shape}] but config.json implies [${expected}]. The weights do not belong to this config: check that all files come from the same model.`,
        { tensor: name, actual: shape, expected },
      );
    }
    const check = finiteCheck();
    if (t.kind === 'vector') {
      const f = decodeToF32(bytes, dtype, check);
      if (t.shift !== 0) for (let i = 0; i < f.length; i++) f[i] += t.shift;
      if (check.index < 0) this.gpu.device.queue.writeBuffer(t.buffer, t.offset * 4, f.buffer, f.byteOffset, f.byteLength);
    } else {
      const rowBytes = shape[1] * (dtype === 'F32' ? 4 : 2);
      let r0 = 0;
      for (const sp of t.spans) {
        const part = finiteCheck();
        writeRows(this.gpu, sp.matrix, sp.rowOffset, sp.rows, bytes.subarray(r0 * rowBytes, (r0 + sp.rows) * rowBytes), dtype, part);
        if (part.index >= 0 && check.index < 0) Object.assign(check, { index: r0 * shape[1] + part.index, value: part.value });
        r0 += sp.rows;
      }
    }
    if (check.index >= 0) throw nonFinite(file, name, check, t.kind === 'matrix' && t.spans[0].matrix.format === 'f16');
    this.#loaded.add(name);
  }

  /**
   * Uploads rows [rowStart, rowStart + f32.length / K) of the matrix tensor `name` of full shape `shape`, given as f32
   * (a GGUF tensor dequantized a slice at a time, so a large one is never held whole as f32). The tensor counts as
   * loaded when its last row arrives.
   */
  uploadRows(name: string, shape: number[], rowStart: number, f32: Float32Array, file: string): void {
    name = this.#canonical(name);
    const t = this.#targets.get(name);
    if (!t) return;
    if (t.kind !== 'matrix') {
      this.upload(name, 'F32', shape, new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength), file);
      return;
    }
    if (shape.length !== 2 || shape[0] !== t.shape[0] || shape[1] !== t.shape[1]) {
      throw new WeightMismatchError(
        `${name} has shape [${shape}] but the model's metadata implies [${t.shape}]. The file is inconsistent: download it again.`,
        { tensor: name, actual: shape, expected: t.shape },
      );
    }
    const rows = f32.length / shape[1];
    const K = shape[1];
    let r0 = 0;
    for (const sp of t.spans) {
      // The part of this slice (tensor rows rowStart .. rowStart + rows) that falls in this span.
      const a = Math.max(rowStart, r0), b = Math.min(rowStart + rows, r0 + sp.rows);
      if (a < b) {
        const check = finiteCheck();
        const part = f32.subarray((a - rowStart) * K, (b - rowStart) * K);
        writeRows(this.gpu, sp.matrix, sp.rowOffset + a - r0, b - a, new Uint8Array(part.buffer, part.byteOffset, part.byteLength), 'F32', check);
        if (check.index >= 0) throw nonFinite(file, name, { ...check, index: a * K + check.index }, sp.matrix.format === 'f16');
      }
      r0 += sp.rows;
    }
    if (rowStart + rows === shape[0]) this.#loaded.add(name);
  }

  /** Throws naming the first tensor that never arrived. */
  finish(): ModelWeights {
    const missing = [...this.#targets.keys()].filter((n) => !this.#loaded.has(n));
    if (missing.length) {
      throw new WeightMismatchError(
        `The checkpoint lacks ${missing.length} tensor(s) the config needs, first "${missing[0]}". Check that the weights are complete and belong to this config.`,
        { missing },
      );
    }
    return this.weights;
  }
}

function allocMatrix(gpu: Gpu, label: string, n: number, k: number, format: WeightFormat, alignWith?: Matrix): Matrix {
  const ldw = isQuantized(format) ? rowLayout(format, k).words : Math.ceil(k / 4) * 4;
  const rowBytes = ldw * (format === 'f16' ? 2 : 4);
  const maxRows = Math.max(1, Math.floor(Math.min(gpu.maxBinding, gpu.maxBufferSize) / rowBytes));
  const shards: Shard[] = [];
  const starts = alignWith ? alignWith.shards.map((s) => [s.rowStart, s.rows]) : [];
  if (!alignWith) for (let r = 0; r < n; r += maxRows) starts.push([r, Math.min(maxRows, n - r)]);
  for (const [rowStart, rows] of starts) {
    const buffer = gpu.createBuffer(`${label}[${rowStart}:${rowStart + rows}]`, rows * rowBytes, USAGE());
    shards.push({ buffer, rowStart, rows });
  }
  return { label, n, k, format, ldw, shards };
}

/** Writes `rows` rows (K elements each, row-major `dtype` bytes) at matrix row `row0`, in slices of ~8 MB. */
function writeRows(gpu: Gpu, m: Matrix, row0: number, rows: number, bytes: Uint8Array, dtype: DType, check: FiniteCheck): void {
  const srcRow = m.k * (dtype === 'F32' ? 4 : 2);
  const f16 = m.format === 'f16';
  const elem = f16 ? 2 : 4;
  const sliceRows = Math.max(1, Math.floor((8 << 20) / (m.ldw * elem)));
  for (let r = 0; r < rows; ) {
    const global = row0 + r;
    const shard = m.shards.find((s) => global >= s.rowStart && global < s.rowStart + s.rows)!;
    const n = Math.min(sliceRows, rows - r, shard.rowStart + shard.rows - global);
    const src = bytes.subarray(r * srcRow, (r + n) * srcRow);
    const slice = finiteCheck();
    const decoded = f16 ? decodeToF16(src, dtype, slice) : decodeToF32(src, dtype, slice);
    if (slice.index >= 0) {
      check.index = r * m.k + slice.index;
      check.value = slice.value;
      return;
    }
    let data: Uint16Array | Float32Array | Uint32Array = decoded;
    if (isQuantized(m.format)) {
      data = quantizeRows(decoded as Float32Array, n, m.k, m.format);
    } else if (m.ldw !== m.k) {
      const padded = f16 ? new Uint16Array(n * m.ldw) : new Float32Array(n * m.ldw);
      for (let i = 0; i < n; i++) padded.set(decoded.subarray(i * m.k, (i + 1) * m.k), i * m.ldw);
      data = padded;
    }
    gpu.device.queue.writeBuffer(shard.buffer, (global - shard.rowStart) * m.ldw * elem, data.buffer, data.byteOffset, data.byteLength);
    r += n;
  }
}
