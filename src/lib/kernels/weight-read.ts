// How kernels read a weight matrix W (N, K) in each storage format (quant/blocks.ts describes the quantized layouts).
// Every kernel that reads weights declares its buffer with `weightBuffer` and reads through the functions
// `weightReaders` generates, so a new format is one edit here:
//   fn <name>Vec(n, k4) -> vec4<f32>   elements 4 k4 .. 4 k4 + 3 of row n (dequantized; zero past K)
//   fn <name>At(n, k) -> f32         one element
//   fn <name>Raw(n, k4) -> vec4<f32>   q8/q4: the same four values before their block's scale
//   fn <name>Scale(n, b) -> f32      q8/q4: the scale of block b (elements 32 b .. 32 b + 31)
// For f32/f16, P.ldw is the row stride in elements (a multiple of 4, rows bound as four-element units); for q8/q4 it
// is the row stride in u32 words (rowLayout().words). f16 values are read in pairs from u32 words and widened by
// unpack2x16float, so no kernel needs the shader-f16 feature and four weights cost two loads (one per word), not four:
// on CPU adapters every load is a loop over the lanes. Dequantization happens in registers: no dequantized copy exists.

import type { BufferDecl } from '../gpu/program.js';
import { QBLOCK, WORDS_PER_BLOCK, type WeightFormat } from '../quant/blocks.js';

export function weightBuffer(format: WeightFormat, shape = '(N, ldw)'): BufferDecl {
  const type = format === 'f32' ? 'array<vec4<f32>>' : format === 'f16' ? 'array<vec2<u32>>' : 'array<u32>';
  return { type, access: 'read', shape: `${shape} ${format}` };
}

/** WGSL readers for the weight buffer `buf`, named `<buf>Vec` and `<buf>At`. */
export function weightReaders(format: WeightFormat, buf: string): string {
  if (format === 'f32') {
    return `
fn ${buf}Vec(n: u32, k4: u32) -> vec4<f32> { return ${buf}[n * (P.ldw / 4u) + k4]; }
fn ${buf}At(n: u32, k: u32) -> f32 { return ${buf}[n * (P.ldw / 4u) + k / 4u][k % 4u]; }`;
  }
  if (format === 'f16') {
    return `
fn ${buf}Vec(n: u32, k4: u32) -> vec4<f32> {
  let p = ${buf}[n * (P.ldw / 4u) + k4];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}
fn ${buf}At(n: u32, k: u32) -> f32 {
  let p = ${buf}[n * (P.ldw / 4u) + k / 4u];
  return unpack2x16float(select(p.x, p.y, k % 4u >= 2u))[k % 2u];
}`;
  }
  const wpb = WORDS_PER_BLOCK[format];
  // The scale of block b of row n: f16 pairs after the row's data words.
  const scale = `
fn ${buf}Scale(n: u32, b: u32) -> f32 {
  let dataWords = ((P.K + ${QBLOCK - 1}u) / ${QBLOCK}u) * ${wpb}u;
  return unpack2x16float(${buf}[n * P.ldw + dataWords + b / 2u])[b % 2u];
}`;
  if (format === 'q8') {
    return `${scale}
// Four signed bytes of one word, lowest first (sign-extended by an arithmetic shift).
fn ${buf}Raw(n: u32, k4: u32) -> vec4<f32> {
  let word = ${buf}[n * P.ldw + k4];
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}
fn ${buf}Vec(n: u32, k4: u32) -> vec4<f32> { return ${buf}Raw(n, k4) * ${buf}Scale(n, k4 / 8u); }
fn ${buf}At(n: u32, k: u32) -> f32 {
  let q = bitcast<i32>(${buf}[n * P.ldw + k / 4u] << (24u - 8u * (k % 4u))) >> 24u;
  return f32(q) * ${buf}Scale(n, k / ${QBLOCK}u);
}`;
  }
  return `${scale}
// Four nibbles (q + 8) of the word holding elements 8 (k4 / 2) .. 8 (k4 / 2) + 7: the low or high half.
fn ${buf}Raw(n: u32, k4: u32) -> vec4<f32> {
  let word = ${buf}[n * P.ldw + k4 / 2u] >> (16u * (k4 % 2u));
  return vec4<f32>((vec4<u32>(word) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 8.0;
}
fn ${buf}Vec(n: u32, k4: u32) -> vec4<f32> { return ${buf}Raw(n, k4) * ${buf}Scale(n, k4 / 8u); }
fn ${buf}At(n: u32, k: u32) -> f32 {
  let q = (${buf}[n * P.ldw + k / 8u] >> (4u * (k % 8u))) & 15u;
  return (f32(q) - 8.0) * ${buf}Scale(n, k / ${QBLOCK}u);
}`;
}
