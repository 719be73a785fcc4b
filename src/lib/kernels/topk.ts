// Top-k selection on the GPU so a decode step reads back a few hundred bytes instead of the vocabulary.
// Stage 1: each workgroup takes a chunk of 1024 logits of one row, applies the repetition penalty to tokens already
//          seen (a bitmask), sorts the chunk (bitonic, in workgroup memory) and keeps its best TOPK, plus the
//          chunk's max and sum of exp(logit / temperature) for the row's log-sum-exp.
// Stage 2: one workgroup per row merges the chunks' candidates (TOPK kept, 1024 - TOPK new per round) and writes
//          [lse, count, (logit, id) x TOPK]. Ordering is by logit, then lower id first, like torch.argmax.
// Greedy decoding needs only the best token: `top1Stage1Kernel` / `top1Stage2Kernel` write the same row layout with
// count 1 (the other TOPK - 1 entries empty) from a reduction instead of a sort: on a software GPU the sort's 55
// barrier-separated passes over each chunk cost as much as a layer's matmuls.

import { need, type Kernel } from '../gpu/program.js';
import { layout, offsetConstants, recordWords } from '../gpu/layout.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT } from './common.js';

export const TOPK = 64;
export const TOPK_CHUNK = 1024;
/**
 * A row of the stage-2 output: the log-sum-exp, how many candidates are real, then (logit, id) per candidate, best
 * first. WGSL writes it through the ROW_* word offsets; the runner reads it with readRecord.
 */
export const TOPK_ROW_LAYOUT = layout('ROW', { lse: 'f32', count: 'u32' }, { fields: { logit: 'f32', id: 'u32' }, count: TOPK });
/** u32 words per row of the stage-2 output. */
export const TOPK_ROW_WORDS = recordWords(TOPK_ROW_LAYOUT);

/** Both stages share one uniform block (the runner writes penalty and 1 / temperature per generation). */
export const TOPK_PARAMS = { V: 'u32', chunks: 'u32', penalty: 'f32', invTemp: 'f32' } as const;

/** 256 threads sort a chunk of 1024 candidates, 4 each. */
const THREADS = 256;
const CONSTANTS = { ...SHARED, TOPK, CHUNK: TOPK_CHUNK, ...offsetConstants(TOPK_ROW_LAYOUT) };

/** The logit of token g in sequence row `row`, divided (or, if negative, multiplied) by the penalty when seen. */
const PENALIZED = /* wgsl */ `
fn penalized(row: u32, slot: u32, g: u32) -> f32 {
  let words = (P.V + 31u) / 32u;
  let v = logits[row * P.V + g];
  if ((seen[slot * words + g / 32u] & (1u << (g % 32u))) != 0u) {
    return select(v / P.penalty, v * P.penalty, v < 0.0);
  }
  return v;
}`;

const BEFORE = /* wgsl */ `
// a ranks before b: larger logit, then smaller id.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}`;

const SORT = /* wgsl */ `
var<workgroup> sv: array<f32, CHUNK>;
var<workgroup> si: array<u32, CHUNK>;

// Bitonic sort of sv/si (descending by 'before'); WG threads, CHUNK / WG elements each.
fn sortShared(tid: u32) {
  for (var k = 2u; k <= CHUNK; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var t = 0u; t < CHUNK / WG; t++) {
        let i = tid + t * WG;
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

/** Grid (chunks, S): one workgroup per 1024 logits of one sequence's row. */
export function topkStage1Kernel(): Kernel {
  return {
    name: 'topk_stage1', workgroupSize: THREADS, structs: STEP_STRUCT, constants: CONSTANTS,
    grid: (s) => { const { V, seqs } = need('topk_stage1', s); return [Math.ceil(V / TOPK_CHUNK), seqs, 1]; },
    params: TOPK_PARAMS,
    buffers: {
      S: STEP,
      logits: { type: 'array<f32>', access: 'read', shape: '(S, V)' },
      seen: { type: 'array<u32>', access: 'read', shape: '(slots, ceil(V / 32)) bitmask' },
      rowInfo: ROW_INFO,
      cand: { type: 'array<u32>', access: 'read_write', shape: '(S, chunks, TOPK, 2)' },
      stats: { type: 'array<f32>', access: 'read_write', shape: '(S, chunks, 2): max, sum exp' },
    },
    source: /* wgsl */ `${BEFORE}
${PENALIZED}
${SORT}
var<workgroup> part: array<f32, WG>;

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let chunk = wid.x;
  let row = wid.y;
  if (row >= S.seqs) { return; }
  let slot = rowInfo[RI * (row * S.lastStride + S.lastOffset) + RI_SLOT];
  for (var t = 0u; t < CHUNK / WG; t++) {
    let i = tid + t * WG;
    let g = chunk * CHUNK + i;
    var v = NEG_BIG;
    var id = NONE;
    if (g < P.V) {
      v = penalized(row, slot, g);
      id = g;
    }
    sv[i] = v;
    si[i] = id;
  }
  workgroupBarrier();
  sortShared(tid);
  let mx = sv[0] * P.invTemp;
  var s = 0.0;
  for (var t = 0u; t < CHUNK / WG; t++) {
    let i = tid + t * WG;
    if (si[i] != NONE) { s += exp(sv[i] * P.invTemp - mx); }
  }
  part[tid] = s;
  workgroupBarrier();
  let base = (row * P.chunks + chunk);
  if (tid < TOPK) {
    cand[(base * TOPK + tid) * 2u] = bitcast<u32>(sv[tid]);
    cand[(base * TOPK + tid) * 2u + 1u] = si[tid];
  }
  if (tid == 0u) {
    var total = 0.0;
    for (var t = 0u; t < WG; t++) { total += part[t]; }
    stats[base * 2u] = mx;
    stats[base * 2u + 1u] = total;
  }
}`,
  };
}

/** Grid (S): one workgroup per sequence merges its chunks' candidates. */
export function topkStage2Kernel(): Kernel {
  return {
    name: 'topk_stage2', workgroupSize: THREADS, structs: STEP_STRUCT, constants: { ...CONSTANTS, FRESH: TOPK_CHUNK - TOPK },
    grid: (s) => [need('topk_stage2', s).seqs, 1, 1],
    params: TOPK_PARAMS,
    buffers: {
      S: STEP,
      cand: { type: 'array<u32>', access: 'read', shape: '(S, chunks, TOPK, 2)' },
      stats: { type: 'array<f32>', access: 'read', shape: '(S, chunks, 2)' },
      result: { type: 'array<u32>', access: 'read_write', shape: '(S, ROW): lse, count, (logit, id) x TOPK' },
    },
    source: /* wgsl */ `${BEFORE}
${SORT}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x;
  if (row >= S.seqs) { return; }
  let total = P.chunks * TOPK;
  if (tid < TOPK) { sv[tid] = NEG_BIG; si[tid] = NONE; }
  for (var base = 0u; base < total; base += FRESH) {
    for (var i = tid; i < FRESH; i += WG) {
      let c = base + i;
      var v = NEG_BIG;
      var id = NONE;
      if (c < total) {
        v = bitcast<f32>(cand[(row * total + c) * 2u]);
        id = cand[(row * total + c) * 2u + 1u];
      }
      sv[TOPK + i] = v;
      si[TOPK + i] = id;
    }
    workgroupBarrier();
    sortShared(tid);
  }
  let out = row * ROW;
  if (tid < TOPK) {
    result[out + ROW_LIST + ROW_ENTRY * tid + ROW_ENTRY_LOGIT] = bitcast<u32>(sv[tid]);
    result[out + ROW_LIST + ROW_ENTRY * tid + ROW_ENTRY_ID] = si[tid];
  }
  if (tid == 0u) {
    var gmax = NEG_BIG;
    for (var c = 0u; c < P.chunks; c++) { gmax = max(gmax, stats[(row * P.chunks + c) * 2u]); }
    var sum = 0.0;
    for (var c = 0u; c < P.chunks; c++) {
      let at = (row * P.chunks + c) * 2u;
      sum += stats[at + 1u] * exp(stats[at] - gmax);
    }
    result[out + ROW_LSE] = bitcast<u32>(gmax + log(sum));
    result[out + ROW_COUNT] = TOPK;
  }
}`,
  };
}

/** Grid (chunks, S), buffers as topk_stage1: each chunk's best token (entry 0 of its candidates) and its stats. */
export function top1Stage1Kernel(): Kernel {
  const k = topkStage1Kernel();
  return {
    ...k, name: 'top1_stage1',
    source: /* wgsl */ `${BEFORE}
${PENALIZED}
var<workgroup> bv: array<f32, WG>;
var<workgroup> bi: array<u32, WG>;
var<workgroup> part: array<f32, WG>;

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let chunk = wid.x;
  let row = wid.y;
  if (row >= S.seqs) { return; }
  let slot = rowInfo[RI * (row * S.lastStride + S.lastOffset) + RI_SLOT];
  var v: array<f32, CHUNK / WG>;
  var best = NEG_BIG;
  var bestId = NONE;
  for (var t = 0u; t < CHUNK / WG; t++) {
    let g = chunk * CHUNK + tid + t * WG;
    v[t] = NEG_BIG;
    if (g < P.V) {
      v[t] = penalized(row, slot, g);
      if (before(v[t], g, best, bestId)) { best = v[t]; bestId = g; }
    }
  }
  bv[tid] = best;
  bi[tid] = bestId;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (tid < half && before(bv[tid + half], bi[tid + half], bv[tid], bi[tid])) {
      bv[tid] = bv[tid + half];
      bi[tid] = bi[tid + half];
    }
    workgroupBarrier();
  }
  let mx = bv[0] * P.invTemp;
  var s = 0.0;
  for (var t = 0u; t < CHUNK / WG; t++) {
    if (chunk * CHUNK + tid + t * WG < P.V) { s += exp(v[t] * P.invTemp - mx); }
  }
  part[tid] = s;
  workgroupBarrier();
  if (tid == 0u) {
    var total = 0.0;
    for (var t = 0u; t < WG; t++) { total += part[t]; }
    let base = row * P.chunks + chunk;
    cand[base * TOPK * 2u] = bitcast<u32>(bv[0]);
    cand[base * TOPK * 2u + 1u] = bi[0];
    stats[base * 2u] = mx;
    stats[base * 2u + 1u] = total;
  }
}`,
  };
}

/** Grid (S), buffers as topk_stage2: the best of the chunks' best, count 1, the other entries empty. */
export function top1Stage2Kernel(): Kernel {
  const k = topkStage2Kernel();
  return {
    ...k, name: 'top1_stage2', workgroupSize: TOPK,
    source: /* wgsl */ `${BEFORE}

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x;
  if (row >= S.seqs) { return; }
  let out = row * ROW;
  if (tid > 0u) {
    result[out + ROW_LIST + ROW_ENTRY * tid + ROW_ENTRY_LOGIT] = bitcast<u32>(NEG_BIG);
    result[out + ROW_LIST + ROW_ENTRY * tid + ROW_ENTRY_ID] = NONE;
    return;
  }
  var best = NEG_BIG;
  var bestId = NONE;
  var gmax = NEG_BIG;
  for (var c = 0u; c < P.chunks; c++) {
    let at = (row * P.chunks + c) * TOPK * 2u;
    let v = bitcast<f32>(cand[at]);
    let id = cand[at + 1u];
    if (before(v, id, best, bestId)) { best = v; bestId = id; }
    gmax = max(gmax, stats[(row * P.chunks + c) * 2u]);
  }
  var sum = 0.0;
  for (var c = 0u; c < P.chunks; c++) {
    let at = (row * P.chunks + c) * 2u;
    sum += stats[at + 1u] * exp(stats[at] - gmax);
  }
  result[out + ROW_LSE] = bitcast<u32>(gmax + log(sum));
  result[out + ROW_COUNT] = 1u;
  result[out + ROW_LIST + ROW_ENTRY_LOGIT] = bitcast<u32>(best);
  result[out + ROW_LIST + ROW_ENTRY_ID] = bestId;
}`,
  };
}
