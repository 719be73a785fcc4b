// The attention backward of kernels/train/attention-backward.ts for CPU adapters with fixed-size subgroups: the same
// sums, each lane one row (dq: a query row of one head; dK/dV: a key row of one KV head), and the rows on the other
// side walked in the same order by every lane of a subgroup, each loaded once per subgroup (lane i loads its vec4s
// i, i + SG, ...: heads are read as vec4s, Dh a multiple of 4) and handed lane to lane by subgroupBroadcast (see
// kernels/attention-rows.ts). Lanes of two sequences (a subgroup across a sequence boundary) take them in turns.
// Rows are B sequences of T positions (row = b T + t); K/V in the cache layout (B, Hkv, T, Dh).
// Grids: dq (H, M / 64); dK/dV (Hkv, M / 64).

import { need, type BufferDecl, type Kernel } from '../../gpu/program.js';
import { BACKWARD_INPUTS, BACKWARD_PARAMS, PROBS } from './attention-backward.js';
import { NONE } from '../common.js';
import { headChunks, inTurns, vec4Heads } from '../attention-rows.js';

const ROWS = 64;

function kernel(name: string, dh: number, sg: number, outputs: Record<string, BufferDecl>, heads: 'H' | 'Hkv', source: string): Kernel {
  const heads4 = Object.fromEntries(['q', 'kc', 'vc', 'o', 'dout'].map((n) => [n, vec4Heads('read', BACKWARD_INPUTS[n].shape!)]));
  return {
    name: `${name}${sg}`, workgroupSize: ROWS, constants: { DH4: dh / 4, NONE }, subgroups: true,
    grid: (s) => { const n = need(name, s); return [n[heads], Math.ceil(n.M / ROWS), 1]; },
    params: BACKWARD_PARAMS, buffers: { ...BACKWARD_INPUTS, ...heads4, ...outputs },
    source: `${PROBS}
${source}`,
  };
}

/** dq_i = scale sum_j ds_ij k_j for each query row i of head h. */
export function attentionBackwardDqRowsKernel(dh: number, sg: number): Kernel {
  const { cs, each, load } = headChunks('attention_backward_dq_rows', dh, sg);
  return kernel('attention_backward_dq_rows', dh, sg, { dq: vec4Heads('read_write', '(M, H, Dh)') }, 'H', /* wgsl */ `
// The key loop's bounds come from subgroup reductions: every lane of a subgroup runs it alike (subgroup-uniform).
@diagnostic(off, subgroup_uniformity)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let h = wid.x;
  let mr = wid.y * WG + tid;
  let m = min(mr, P.M - 1u);   // rows past M repeat the last one (computed, not written)
  let b = m / P.T;
  let t = m % P.T;
  let kvh = h / (P.H / P.Hkv);
  let qi = (m * P.H + h) * DH4;
  ${each((_c, _l, d) => `let q${d} = q[qi + ${d}u]; let g${d} = dout[qi + ${d}u]; var a${d} = vec4<f32>(0.0);`)}
  var Di = 0.0;
  ${each((_c, _l, d) => `Di += dot(g${d}, o[qi + ${d}u]);`, ' ')}
  let l = lse[m * P.H + h];
  let first = select(0u, t + 1u - P.window, P.window > 0u && t + 1u > P.window);
  ${inTurns('b', 'first', 't + 1u', /* wgsl */ `
    for (var j = lo; j < hi; j++) {
      let kj = ((s0 * P.Hkv + kvh) * P.T + j) * DH4;
      ${cs.map((c) => `let k${c} = ${load('kc', 'kj', c)}; let v${c} = ${load('vc', 'kj', c)};`).join(' ')}
      var s = 0.0;
      var dv = 0.0;
      ${each((c, ln, d) => `s += dot(q${d}, subgroupBroadcast(k${c}, ${ln}u)); dv += dot(g${d}, subgroupBroadcast(v${c}, ${ln}u));`)}
      let pg = probs(s * P.scale, l);
      let ds = select(0.0, pg.x * (dv - Di) * pg.y * P.scale, mine && j >= first && j <= t);
      ${each((c, ln, d) => `a${d} += ds * subgroupBroadcast(k${c}, ${ln}u);`)}
    }
`)}
  if (mr < P.M) {
    ${each((_c, _l, d) => `dq[qi + ${d}u] = a${d};`, ' ')}
  }
}`);
}

/** dk_j = scale sum_{i, h in group} ds_ij q_i and dv_j = sum p_ij do_i for each key row j of KV head kvh. */
export function attentionBackwardDkvRowsKernel(dh: number, sg: number): Kernel {
  const { cs, each, load } = headChunks('attention_backward_dkv_rows', dh, sg);
  return kernel('attention_backward_dkv_rows', dh, sg, { dk: vec4Heads('read_write', '(B, Hkv, T, Dh)'), dv: vec4Heads('read_write', '(B, Hkv, T, Dh)') }, 'Hkv', /* wgsl */ `
// The query loop's bounds come from subgroup reductions: every lane of a subgroup runs it alike (subgroup-uniform).
@diagnostic(off, subgroup_uniformity)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let kvh = wid.x;
  let mr = wid.y * WG + tid;
  let key = min(mr, P.M - 1u);   // b T + j; rows past M repeat the last one (computed, not written)
  let b = key / P.T;
  let j = key % P.T;
  let group = P.H / P.Hkv;
  let kj = ((b * P.Hkv + kvh) * P.T + j) * DH4;
  ${each((_c, _l, d) => `let k${d} = kc[kj + ${d}u]; let v${d} = vc[kj + ${d}u]; var ak${d} = vec4<f32>(0.0); var av${d} = vec4<f32>(0.0);`)}
  // The queries that see key j: j to T - 1, or to j + W - 1 under a sliding window of W.
  let last = select(P.T, min(P.T, j + P.window), P.window > 0u);
  ${inTurns('b', 'j', 'last', /* wgsl */ `
    for (var i = lo; i < hi; i++) {
      let m = s0 * P.T + i;
      let ok = mine && i >= j && i < last;
      for (var hh = 0u; hh < group; hh++) {
        let h = kvh * group + hh;
        let qi = (m * P.H + h) * DH4;
        ${cs.map((c) => `let q${c} = ${load('q', 'qi', c)}; let g${c} = ${load('dout', 'qi', c)};`).join(' ')}
        var di = 0.0;
        ${cs.map((c) => `di += select(0.0, dot(g${c}, ${load('o', 'qi', c)}), ${c * sg}u + lane < DH4);`).join(' ')}
        // Each lane summed its vec4s of do . o; the subgroup's total is the query's D_i.
        let Di = subgroupAdd(di);
        var s = 0.0;
        var dvd = 0.0;
        ${each((c, ln, d) => `s += dot(k${d}, subgroupBroadcast(q${c}, ${ln}u)); dvd += dot(v${d}, subgroupBroadcast(g${c}, ${ln}u));`)}
        let pg = probs(s * P.scale, lse[m * P.H + h]);
        let p = select(0.0, pg.x, ok);
        let ds = select(0.0, pg.x * (dvd - Di) * pg.y * P.scale, ok);
        ${each((c, ln, d) => `ak${d} += ds * subgroupBroadcast(q${c}, ${ln}u); av${d} += p * subgroupBroadcast(g${c}, ${ln}u);`)}
      }
    }
`)}
  if (mr < P.M) {
    ${each((_c, _l, d) => `dk[kj + ${d}u] = ak${d}; dv[kj + ${d}u] = av${d};`, ' ')}
  }
}`);
}
