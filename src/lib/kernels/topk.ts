// Top-k selection on the GPU so a decode step reads back a few hundred bytes instead of the vocabulary.
// Stage 1: each workgroup takes a chunk of 1024 logits of one row, applies the repetition penalty to tokens already
//          seen (a bitmask), sorts the chunk (bitonic, in workgroup memory) and keeps its best TOPK, plus the
//          chunk's max and sum of exp(logit / temperature) for the row's log-sum-exp.
// Stage 2: one workgroup per row merges the chunks' candidates (TOPK kept, 1024 - TOPK new per round) and writes
//          [lse, count, (logit, id) x TOPK]. Ordering is by logit, then lower id first, like torch.argmax.

import { NEG_BIG, STEP_STRUCT } from './common.js';

export const TOPK = 64;
export const TOPK_CHUNK = 1024;
/** u32 words per row of the stage-2 output. */
export const TOPK_ROW_WORDS = 2 + 2 * TOPK;

const SORT = /* wgsl */ `
const NONE: u32 = 0xffffffffu;
var<workgroup> sv: array<f32, ${TOPK_CHUNK}>;
var<workgroup> si: array<u32, ${TOPK_CHUNK}>;

// a ranks before b: larger logit, then smaller id.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

// Bitonic sort of sv/si (descending by 'before'); 256 threads, 4 elements each.
fn sortShared(tid: u32) {
  for (var k = 2u; k <= ${TOPK_CHUNK}u; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var t = 0u; t < 4u; t++) {
        let i = tid + t * 256u;
        let l = i ^ j;
        if (l > i) {
          let firstBlock = (i & k) == 0u;
          let swap = select(before(sv[i], si[i], sv[l], si[l]), before(sv[l], si[l], sv[i], si[i]), firstBlock);
          if (swap) {
            let v = sv[i]; sv[i] = sv[l]; sv[l] = v;
            let x = si[i]; si[i] = si[l]; si[l] = x;
          }
        }
      }
      workgroupBarrier();
    }
  }
}`;

export function topkStage1Shader(): string {
  return /* wgsl */ `
${STEP_STRUCT}
struct Params { V: u32, chunks: u32, penalty: f32, invTemp: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;          // (S, V)
@group(0) @binding(3) var<storage, read> seen: array<u32>;            // (slots, ceil(V / 32)) bitmask
@group(0) @binding(4) var<storage, read> rowInfo: array<u32>;         // (M, 4): slot, position, lora slot, lora scale
@group(0) @binding(5) var<storage, read_write> cand: array<u32>;      // (S, chunks, TOPK, 2)
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;     // (S, chunks, 2): max, sum exp
${SORT}
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let chunk = wid.x;
  let row = wid.y;
  if (row >= S.seqs) { return; }
  let words = (P.V + 31u) / 32u;
  let slot = rowInfo[4u * (row * S.lastStride + S.lastOffset)];
  for (var t = 0u; t < 4u; t++) {
    let i = tid + t * 256u;
    let g = chunk * ${TOPK_CHUNK}u + i;
    var v = ${NEG_BIG};
    var id = NONE;
    if (g < P.V) {
      v = logits[row * P.V + g];
      if ((seen[slot * words + g / 32u] & (1u << (g % 32u))) != 0u) {
        v = select(v / P.penalty, v * P.penalty, v < 0.0);
      }
      id = g;
    }
    sv[i] = v;
    si[i] = id;
  }
  workgroupBarrier();
  sortShared(tid);
  let mx = sv[0] * P.invTemp;
  var s = 0.0;
  for (var t = 0u; t < 4u; t++) {
    let i = tid + t * 256u;
    if (si[i] != NONE) { s += exp(sv[i] * P.invTemp - mx); }
  }
  part[tid] = s;
  workgroupBarrier();
  let base = (row * P.chunks + chunk);
  if (tid < ${TOPK}u) {
    cand[(base * ${TOPK}u + tid) * 2u] = bitcast<u32>(sv[tid]);
    cand[(base * ${TOPK}u + tid) * 2u + 1u] = si[tid];
  }
  if (tid == 0u) {
    var total = 0.0;
    for (var t = 0u; t < 256u; t++) { total += part[t]; }
    stats[base * 2u] = mx;
    stats[base * 2u + 1u] = total;
  }
}`;
}

export function topkStage2Shader(): string {
  const fresh = TOPK_CHUNK - TOPK;
  return /* wgsl */ `
${STEP_STRUCT}
struct Params { V: u32, chunks: u32, penalty: f32, invTemp: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> cand: array<u32>;            // (S, chunks, TOPK, 2)
@group(0) @binding(3) var<storage, read> stats: array<f32>;           // (S, chunks, 2)
@group(0) @binding(4) var<storage, read_write> result: array<u32>;    // (S, ${TOPK_ROW_WORDS})
${SORT}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x;
  if (row >= S.seqs) { return; }
  let total = P.chunks * ${TOPK}u;
  if (tid < ${TOPK}u) { sv[tid] = ${NEG_BIG}; si[tid] = NONE; }
  for (var base = 0u; base < total; base += ${fresh}u) {
    for (var i = tid; i < ${fresh}u; i += 256u) {
      let c = base + i;
      var v = ${NEG_BIG};
      var id = NONE;
      if (c < total) {
        v = bitcast<f32>(cand[(row * total + c) * 2u]);
        id = cand[(row * total + c) * 2u + 1u];
      }
      sv[${TOPK}u + i] = v;
      si[${TOPK}u + i] = id;
    }
    workgroupBarrier();
    sortShared(tid);
  }
  let out = row * ${TOPK_ROW_WORDS}u;
  if (tid < ${TOPK}u) {
    result[out + 2u + 2u * tid] = bitcast<u32>(sv[tid]);
    result[out + 3u + 2u * tid] = si[tid];
  }
  if (tid == 0u) {
    var gmax = ${NEG_BIG};
    for (var c = 0u; c < P.chunks; c++) { gmax = max(gmax, stats[(row * P.chunks + c) * 2u]); }
    var sum = 0.0;
    for (var c = 0u; c < P.chunks; c++) {
      let at = (row * P.chunks + c) * 2u;
      sum += stats[at + 1u] * exp(stats[at] - gmax);
    }
    result[out] = bitcast<u32>(gmax + log(sum));
    result[out + 1u] = ${TOPK}u;
  }
}`;
}
