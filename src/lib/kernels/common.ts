// Declarations shared by the kernels: the per-step uniform block, the per-row info buffer, the weight element type,
// and the constants both WGSL and TypeScript use (interpolated into every kernel from here, never retyped).
// Shapes are uniforms, so one pipeline serves every size; only structural options change the shader text.

import type { BufferDecl } from '../gpu/program.js';

/** Per-step values written once per forward call (one writeBuffer) and read by every kernel. */
export const STEP_STRUCT = /* wgsl */ `
struct Step {
  rows: u32,        // M: token rows in this call
  seqs: u32,        // S: sequences whose last row is projected to logits
  lastStride: u32,  // row of sequence s's last token = s * lastStride + lastOffset
  lastOffset: u32,
}`;

export const STEP: BufferDecl = { type: 'Step', access: 'uniform' };

/**
 * Per-row data every kernel can read (u32 words): KV slot, position, LoRA slot (0 = none), LoRA strength (f32 bits).
 */
export const ROW_INFO_WORDS = 4;
export const ROW_INFO: BufferDecl = { type: 'array<u32>', access: 'read', shape: '(M, RI): KV slot, position, LoRA slot, LoRA strength' };

/** Largest negative f32, used as -inf (WGSL has no infinity literal). */
export const NEG_BIG = -3.0e38;

/** A masked label (-100 in transformers) and an empty top-k slot. */
export const NONE = 0xffffffff;

/** Constants most kernels use, for `Kernel.constants`. */
export const SHARED = { RI: ROW_INFO_WORDS, NONE, NEG_BIG: { f32: NEG_BIG } } as const;

/** Threads per workgroup of the kernels that do not need another size. */
export const WORKGROUP = 256;

