// The precision a model's weights are stored in, chosen at load: asked for by name, or `auto`, which keeps float
// weights while they fit a tab comfortably and quantizes bigger models (8-bit first, 4-bit when even that is big).

import { InvalidArgumentError } from '../errors.js';
import { bytesPerWeight, type WeightFormat } from './blocks.js';

export type Precision = 'auto' | WeightFormat;

export const PRECISIONS: readonly Precision[] = ['auto', 'f32', 'f16', 'q8', 'q4'];

/** What each choice means, for pickers and help. */
export const PRECISION_LABELS: Record<Precision, string> = {
  auto: 'auto (float if it fits 1 GiB, else 8-bit, else 4-bit)',
  f32: 'f32 (exact, 4 bytes per weight)',
  f16: 'f16 (2 bytes per weight; needs shader-f16)',
  q8: 'q8 (8-bit blocks, about 1.06 bytes per weight)',
  q4: 'q4 (4-bit blocks, about 0.56 bytes per weight)',
};

/** Weights up to this many bytes stay float under `auto` (browsers give one tab a few GiB of GPU memory at best). */
export const AUTO_FLOAT_MAX_BYTES = 1 << 30;

export function isPrecision(s: unknown): s is Precision {
  return typeof s === 'string' && (PRECISIONS as readonly string[]).includes(s);
}

/** The storage format for `parameters` weights on a device with (or without) shader-f16. */
export function choosePrecision(requested: Precision, parameters: number, f16: boolean): WeightFormat {
  if (requested === 'f16' && !f16) {
    throw new InvalidArgumentError('This GPU (or this session, started with f32 forced) has no shader-f16, so weights cannot be kept as f16: choose f32, q8 or q4.', { field: 'precision' });
  }
  if (requested !== 'auto') return requested;
  const float: WeightFormat = f16 ? 'f16' : 'f32';
  if (parameters * bytesPerWeight(float) <= AUTO_FLOAT_MAX_BYTES) return float;
  return parameters * bytesPerWeight('q8') <= AUTO_FLOAT_MAX_BYTES ? 'q8' : 'q4';
}
