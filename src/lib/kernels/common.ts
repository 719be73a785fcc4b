// Pieces of WGSL shared by every kernel: the per-step uniform block and the weight element type.
// Shapes are uniforms, so one pipeline serves every size; only structural options change the shader text.

/** Per-step values written once per forward call (one writeBuffer) and read by every kernel. */
export const STEP_STRUCT = /* wgsl */ `
struct Step {
  rows: u32,        // M: token rows in this call
  seqs: u32,        // S: sequences whose last row is projected to logits
  lastStride: u32,  // row of sequence s's last token = s * lastStride + lastOffset
  lastOffset: u32,
}`;

/** Largest negative f32 used as -inf (WGSL has no infinity literal). */
export const NEG_BIG = '-3.0e38';

export function enableF16(f16: boolean): string {
  return f16 ? 'enable f16;\n' : '';
}

export function weightType(f16: boolean): string {
  return f16 ? 'f16' : 'f32';
}

/**
 * Per-row data every kernel can read (u32 words): KV slot, position, LoRA slot (0 = none), LoRA strength (f32 bits).
 */
export const ROW_INFO_WORDS = 4;
