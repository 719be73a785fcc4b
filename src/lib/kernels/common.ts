// Declarations shared by the kernels: the per-step uniform block, the per-row info buffer, the weight element type,
// and the constants both WGSL and TypeScript use (interpolated into every kernel from here, never retyped).
// Shapes are uniforms, so one pipeline serves every size; only structural options change the shader text.

import type { BufferDecl } from '../gpu/program.js';
import { layout, offsetConstants, recordWords, structCode } from '../gpu/layout.js';

/**
 * Per-call values written once per forward call (one writeBuffer) and read by every kernel: M token rows in this
 * call, S sequences whose last row is projected to logits, that row being s * lastStride + lastOffset.
 */
export const STEP_LAYOUT = layout('Step', { rows: 'u32', seqs: 'u32', lastStride: 'u32', lastOffset: 'u32' });
export const STEP_STRUCT = structCode(STEP_LAYOUT);

export const STEP: BufferDecl = { type: 'Step', access: 'uniform' };

/**
 * Per-row data every kernel can read from an array<u32>: KV slot, position, LoRA slot (0 = none), LoRA strength.
 * WGSL reads a field as rowInfo[RI * m + RI_POS] (the constants come from this declaration, in SHARED).
 */
export const ROW_INFO_LAYOUT = layout('RI', { slot: 'u32', pos: 'u32', loraSlot: 'u32', loraScale: 'f32' });
export const ROW_INFO_WORDS = recordWords(ROW_INFO_LAYOUT);
export const ROW_INFO: BufferDecl = { type: 'array<u32>', access: 'read', shape: '(M, RI): KV slot, position, LoRA slot, LoRA strength' };

/** Largest negative f32, used as -inf (WGSL has no infinity literal). */
export const NEG_BIG = -3.0e38;

/** A masked label (-100 in transformers) and an empty top-k slot. */
export const NONE = 0xffffffff;

/** Constants most kernels use, for `Kernel.constants`. */
export const SHARED = { ...offsetConstants(ROW_INFO_LAYOUT), NONE, NEG_BIG: { f32: NEG_BIG } } as const;

/** Threads per workgroup of the kernels that do not need another size. */
export const WORKGROUP = 256;

