// The precision a model's weights are stored in, chosen at load: asked for by name, or `auto`, which keeps float
// weights while they fit a tab comfortably and quantizes bigger models (8-bit first, 4-bit when even that is big).

import { InvalidArgumentError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { isQuantized, rowLayout, type WeightFormat } from './blocks.js';

export type Precision = 'auto' | WeightFormat;

export const PRECISIONS: readonly Precision[] = ['auto', 'f32', 'f16', 'q8', 'q4'];

/** What each choice means, for pickers and help. */
export const PRECISION_LABELS: Record<Precision, string> = {
  auto: 'auto (float if it fits 1 GiB, else 8-bit, else 4-bit)',
  f32: 'f32 (exact, 4 bytes per weight)',
  f16: 'f16 (2 bytes per weight, rounded to f16)',
  q8: 'q8 (8-bit blocks, about 1.06 bytes per weight)',
  q4: 'q4 (4-bit blocks, about 0.56 bytes per weight)',
};

/** Weights up to this many bytes stay float under `auto` (browsers give one tab a few GiB of GPU memory at best). */
export const AUTO_FLOAT_MAX_BYTES = 1 << 30;

export type WeightShape = Pick<ModelConfig, 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize' | 'tieWordEmbeddings' | 'qkvBias'>;

/** Bytes of one (n, k) matrix as the loader stores it (rows padded to 4 elements, or whole blocks plus scales). */
export function matrixBytes(n: number, k: number, format: WeightFormat): number {
  if (isQuantized(format)) return n * rowLayout(format, k).words * 4;
  return n * Math.ceil(k / 4) * 4 * (format === 'f16' ? 2 : 4);
}

/**
 * GPU bytes of a model's weights at `format`, by the loader's rules (model/weights.ts): the layers' matrices at
 * `format`; the embedding and an untied lm_head at q8 under q8/q4, else float (f16 unless f32 was asked for or
 * forced); norms and biases f32. Before loading, this is the memory estimate; after, it equals ModelInfo.weightBytes.
 */
export function weightBytes(c: WeightShape, format: WeightFormat, f16: boolean): number {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = c;
  const table: WeightFormat = isQuantized(format) ? 'q8' : f16 && format !== 'f32' ? 'f16' : 'f32';
  const qkvRows = (H + 2 * Hkv) * Dh;
  const layer = matrixBytes(qkvRows, D, format) + matrixBytes(D, H * Dh, format) + 2 * matrixBytes(F, D, format) + matrixBytes(D, F, format)
    + 4 * (2 * D + (c.qkvBias ? qkvRows : 0));
  return c.numLayers * layer + matrixBytes(V, D, table) * (c.tieWordEmbeddings ? 1 : 2) + 4 * D;
}

export function isPrecision(s: unknown): s is Precision {
  return typeof s === 'string' && (PRECISIONS as readonly string[]).includes(s);
}

/** The storage format for a model; `f16` false: this session keeps float weights f32 (`--f32`, `forceF32`). */
export function choosePrecision(requested: Precision, c: WeightShape, f16: boolean): WeightFormat {
  if (!isPrecision(requested)) throw new InvalidArgumentError(`Precision ${JSON.stringify(requested)} is not one of ${PRECISIONS.join(', ')}.`, { field: 'precision' });
  if (requested === 'f16' && !f16) {
    throw new InvalidArgumentError('This session was started with f32 weights forced (--f32), so weights cannot be kept as f16: choose f32, q8 or q4, or start without --f32.', { field: 'precision' });
  }
  if (requested !== 'auto') return requested;
  const float: WeightFormat = f16 ? 'f16' : 'f32';
  if (weightBytes(c, float, f16) <= AUTO_FLOAT_MAX_BYTES) return float;
  return weightBytes(c, 'q8', f16) <= AUTO_FLOAT_MAX_BYTES ? 'q8' : 'q4';
}
