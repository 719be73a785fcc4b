// Causal attention for many rows at once (prefill, scoring, training) on CPU adapters with fixed-size subgroups: each
// thread one query row of one head (grid (H, rows / 64)), the keys walked in the same order by every lane of a
// subgroup. A key is loaded once per subgroup (lane i loads its vec4s i, i + SG, ...) and handed lane to lane by
// subgroupBroadcast, so each key and value vec4 costs one load per subgroup instead of one per (query, key) pair:
// on these drivers every load whose address differs across lanes is a loop of scalar loads (see kernels/matmul.ts,
// BROADCAST_GEMM). Lanes whose rows read different KV slots (two sequences in one subgroup) take the slots one at a
// time. Same results as kernels/attention.ts (online softmax, sliding window, Gemma 2's soft-cap, the log-sum-exp).

import { need, type BufferDecl, type Kernel } from '../gpu/program.js';
import { TANH_SAFE } from './activation.js';
import { ATTENTION_BUFFERS, ATTENTION_PARAMS } from './attention.js';
import { SHARED, STEP_STRUCT } from './common.js';

/** Query rows per workgroup. */
const ROWS = 64;

/**
 * The walk every many-row attention kernel takes: lanes whose rows belong to different sequences (`key`: a KV slot, or
 * a sequence of the batch) take them in turns, the lowest first. In a turn, `s0` is its sequence, `mine` whether this
 * lane is in it, and [lo, hi) the union of its lanes' ranges [from, to); `body` walks that range (every lane alike:
 * its bounds are subgroup reductions) and keeps what `mine` says is its own.
 */
export function inTurns(key: string, from: string, to: string, body: string): string {
  return /* wgsl */ `var todo = true; // this lane's sequence not yet walked
  loop {
    if (!subgroupAny(todo)) { break; }
    let s0 = subgroupMin(select(NONE, ${key}, todo));
    let mine = todo && ${key} == s0;
    let lo = subgroupMin(select(NONE, ${from}, mine));
    let hi = subgroupMax(select(0u, ${to}, mine));
${body.replace(/\n$/, '')}
    todo = todo && !mine;
  }`;
}

/**
 * Code generation over a head of Dh / 4 vec4s (Dh a multiple of 4) in chunks of SG: vec4 d = c SG + l is lane l's share
 * of chunk c, the last chunk cut at Dh / 4. `load` is the lane's vec4 of chunk c of the head at `base` in `buf` (the
 * last vec4 again past Dh). Heads as vec4s: a fourth of the loads and shuffles of scalars (each per-lane load is a
 * loop over the lanes on these drivers), and kernels that compile in less time.
 */
export function headChunks(kernel: string, dh: number, sg: number) {
  if (dh % 4 !== 0) throw new Error(`${kernel} reads heads as vec4s: Dh must be a multiple of 4, got ${dh}`);
  const dh4 = dh / 4;
  const cs = [...Array(Math.ceil(dh4 / sg)).keys()];
  const lanes = (c: number) => [...Array(Math.min(sg, dh4 - c * sg)).keys()];
  return {
    dh4,
    cs,
    each: (f: (c: number, l: number, d: number) => string, sep = '\n      ') => cs.flatMap((c) => lanes(c).map((l) => f(c, l, c * sg + l))).join(sep),
    load: (buf: string, base: string, c: number) => `${buf}[${base} + min(${c * sg}u + lane, DH4 - 1u)]`,
  };
}

/** A head-sized buffer (its shape ending in Dh) read or written as vec4s. */
export const vec4Heads = (access: 'read' | 'read_write', shape: string): BufferDecl => ({ type: 'array<vec4<f32>>', access, shape: shape.replace('Dh)', 'Dh / 4)') });

export function attentionRowsKernel(dh: number, sg: number): Kernel {
  const { dh4, cs: chunks, each, load } = headChunks('attention_rows', dh, sg);
  const heads = Object.fromEntries((['q', 'kc', 'vc', 'out'] as const).map((n) => [n, vec4Heads(ATTENTION_BUFFERS[n].access as 'read' | 'read_write', ATTENTION_BUFFERS[n].shape!)]));
  return {
    name: `attention_rows${sg}`, workgroupSize: ROWS, structs: STEP_STRUCT, constants: { ...SHARED, DH4: dh4 }, subgroups: true,
    grid: (s) => { const { H, rows } = need('attention_rows', s); return [H, Math.ceil(rows / ROWS), 1]; },
    params: ATTENTION_PARAMS,
    buffers: { ...ATTENTION_BUFFERS, ...heads },
    source: /* wgsl */ `${TANH_SAFE}
// The key loop's bounds come from subgroup reductions: every lane of a subgroup runs it alike (subgroup-uniform).
@diagnostic(off, subgroup_uniformity)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let M = S.rows;
  let h = wid.x;
  let mr = wid.y * WG + tid;
  let m = min(mr, M - 1u);   // rows past M repeat the last one (computed, not written)
  let slot = rowInfo[RI * m + RI_SLOT];
  let pos = rowInfo[RI * m + RI_POS];
  let kvh = h / (P.H / P.Hkv);
  let qb = (m * P.H + h) * DH4;
  ${each((_c, _l, d) => `let q${d} = q[qb + ${d}u] * P.scale;`, ' ')}
  let first = select(0u, pos + 1u - P.window, P.window > 0u && pos + 1u > P.window);
  var mx = NEG_BIG;
  var l = 0.0;
  ${each((_c, _l, d) => `var o${d} = vec4<f32>(0.0);`, ' ')}
  ${inTurns('slot', 'first', 'pos + 1u', /* wgsl */ `
    let kb0 = (s0 * P.Hkv + kvh) * P.C;
    for (var j = lo; j < hi; j++) {
      let kb = (kb0 + j % P.C) * DH4; // a ring of C rows (C past every position when full)
      ${chunks.map((c) => `let k${c} = ${load('kc', 'kb', c)};`).join(' ')}
      var s = 0.0;
      ${each((c, l, d) => `s += dot(q${d}, subgroupBroadcast(k${c}, ${l}u));`)}
      if (P.softcap > 0.0) { s = P.softcap * tanh_safe(s / P.softcap); }
      let valid = mine && j >= first && j <= pos;
      let newMax = select(mx, max(mx, s), valid);
      let corr = exp(mx - newMax);
      let p = select(0.0, exp(s - newMax), valid);
      l = l * corr + p;
      mx = newMax;
      ${chunks.map((c) => `let v${c} = ${load('vc', 'kb', c)};`).join(' ')}
      ${each((c, l, d) => `o${d} = o${d} * corr + p * subgroupBroadcast(v${c}, ${l}u);`)}
    }
`)}
  if (mr < M) {
    let inv = 1.0 / l;
    ${each((_c, _l, d) => `out[qb + ${d}u] = o${d} * inv;`, ' ')}
    lse[m * P.H + h] = mx + log(l);
  }
}`,
  };
}

/** Largest head dimension the many-row kernel takes: its per-lane query and output are unrolled, Dh registers each. */
export const ATTENTION_ROWS_MAX_DH = 128;

/**
 * The many-row attention for this device and head size, or null where the every-device kernel serves (no fixed
 * subgroups, Dh past ATTENTION_ROWS_MAX_DH or not a multiple of 4: every model we know has one that is).
 */
export function manyRowsAttention(dh: number, subgroup: number): Kernel | null {
  return subgroup > 0 && dh <= ATTENTION_ROWS_MAX_DH && dh % 4 === 0 ? attentionRowsKernel(dh, subgroup) : null;
}
