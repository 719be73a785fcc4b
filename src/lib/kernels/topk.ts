// Top-k selection on the GPU so a decode step reads back a few hundred bytes instead of the vocabulary.
// Stage 1: each workgroup takes a chunk of 1024 logits of one row, applies the repetition penalty to tokens already
//          seen (a bitmask), sorts the chunk (bitonic, in workgroup memory) and keeps its best TOPK, plus the
//          chunk's max and sum of exp(logit / temperature) for the row's log-sum-exp.
// Stage 2: one workgroup per row merges the chunks' candidates (TOPK kept, 1024 - TOPK new per round) and writes
//          [lse, count, (logit, id) x TOPK]. Ordering is by logit, then lower id first, like torch.argmax.

import { need, type Kernel } from '../gpu/program.js';
import { ROW_INFO, SHARED, STEP, STEP_STRUCT } from './common.js';

export const TOPK = 64;
export const TOPK_CHUNK = 1024;
/** u32 words per row of the stage-2 output. */
export const TOPK_ROW_WORDS = 2 + 2 * TOPK;

/** Both stages share one uniform block (the runner writes penalty and 1 / temperature per generation). */
export const TOPK_PARAMS = { V: 'u32', chunks: 'u32', penalty: 'f32', invTemp: 'f32' } as const;

/** 256 threads sort a chunk of 1024 candidates, 4 each. */
const THREADS = 256;
const CONSTANTS = { ...SHARED, TOPK, CHUNK: TOPK_CHUNK, ROW_WORDS: TOPK_ROW_WORDS };

const SORT = /* wgsl */ `
var<workgroup> sv: array<f32, CHUNK>;
var<workgroup> si: array<u32, CHUNK>;

// a ranks before b: larger logit, then smaller id.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

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
    source: /* wgsl */ `${SORT}
var<workgroup> part: array<f32, WG>;

fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let chunk = wid.x;
  let row = wid.y;
  if (row >= S.seqs) { return; }
  let words = (P.V + 31u) / 32u;
  let slot = rowInfo[RI * (row * S.lastStride + S.lastOffset)];
  for (var t = 0u; t < CHUNK / WG; t++) {
    let i = tid + t * WG;
    let g = chunk * CHUNK + i;
    var v = NEG_BIG;
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
      result: { type: 'array<u32>', access: 'read_write', shape: '(S, ROW_WORDS): lse, count, (logit, id) x TOPK' },
    },
    source: /* wgsl */ `${SORT}

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
  let out = row * ROW_WORDS;
  if (tid < TOPK) {
    result[out + 2u + 2u * tid] = bitcast<u32>(sv[tid]);
    result[out + 3u + 2u * tid] = si[tid];
  }
  if (tid == 0u) {
    var gmax = NEG_BIG;
    for (var c = 0u; c < P.chunks; c++) { gmax = max(gmax, stats[(row * P.chunks + c) * 2u]); }
    var sum = 0.0;
    for (var c = 0u; c < P.chunks; c++) {
      let at = (row * P.chunks + c) * 2u;
      sum += stats[at + 1u] * exp(stats[at] - gmax);
    }
    result[out] = bitcast<u32>(gmax + log(sum));
    result[out + 1u] = TOPK;
  }
}`,
  };
}
