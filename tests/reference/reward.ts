// Float64 reference of the tiny ONNX reward model (scripts/reward/make-test-model.py), as plain loops: token and
// position embeddings, pre-LayerNorm blocks of causal attention and an exact-GELU MLP, a final LayerNorm, the score
// head at the last token. Weights are (in, out) row-major, as the script writes them. Letters: T tokens, D hidden,
// F MLP width, H heads, Dh head dim.

import { readF32Safetensors } from './config.js';

export interface RewardConfig { hidden_size: number; num_attention_heads: number; num_hidden_layers: number; ffn_dim: number; layer_norm_eps: number }

export const readF32Weights = readF32Safetensors;

/** y (T, O) = x (T, I) @ W (I, O) + b */
function linear(x: Float64Array[], w: Float64Array, b: Float64Array): Float64Array[] {
  const o = b.length;
  const i = w.length / o;
  return x.map((row) => {
    const y = Float64Array.from(b);
    for (let a = 0; a < i; a++) for (let c = 0; c < o; c++) y[c] += row[a] * w[a * o + c];
    return y;
  });
}

function layerNorm(x: Float64Array[], g: Float64Array, b: Float64Array, eps: number): Float64Array[] {
  return x.map((row) => {
    const mean = row.reduce((s, v) => s + v, 0) / row.length;
    const varc = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(varc + eps)) * g[i] + b[i]);
  });
}

/** erf by its Maclaurin series (|x| < 3) or the continued fraction tail: float64-exact for this purpose. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f);
}

const add = (a: Float64Array[], b: Float64Array[]) => a.map((r, t) => r.map((v, i) => v + b[t][i]));

/** The score (logit) of one sequence. */
export function rewardReference(w: Map<string, Float64Array>, c: RewardConfig, ids: number[]): number {
  const D = c.hidden_size;
  const H = c.num_attention_heads;
  const Dh = D / H;
  const g = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`reference: missing ${n}`);
    return t;
  };
  let h = ids.map((id, t) => Float64Array.from({ length: D }, (_, i) => g('embed_tokens')[id * D + i] + g('embed_positions')[t * D + i]));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `layers.${l}.`;
    const a = layerNorm(h, g(p + 'ln1.weight'), g(p + 'ln1.bias'), c.layer_norm_eps);
    const [q, k, v] = ['q', 'k', 'v'].map((n) => linear(a, g(p + n + '.weight'), g(p + n + '.bias')));
    const att = ids.map(() => new Float64Array(D));
    for (let hh = 0; hh < H; hh++) {
      for (let t = 0; t < ids.length; t++) {
        const s = Array.from({ length: t + 1 }, (_, u) => {
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += q[t][hh * Dh + d] * k[u][hh * Dh + d];
          return dot / Math.sqrt(Dh);
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let u = 0; u <= t; u++) for (let d = 0; d < Dh; d++) att[t][hh * Dh + d] += (e[u] / z) * v[u][hh * Dh + d];
      }
    }
    h = add(h, linear(att, g(p + 'o.weight'), g(p + 'o.bias')));
    const m = linear(layerNorm(h, g(p + 'ln2.weight'), g(p + 'ln2.bias'), c.layer_norm_eps), g(p + 'fc1.weight'), g(p + 'fc1.bias'));
    const gelu = m.map((r) => r.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2))));
    h = add(h, linear(gelu, g(p + 'fc2.weight'), g(p + 'fc2.bias')));
  }
  const f = layerNorm(h, g('final_ln.weight'), g('final_ln.bias'), c.layer_norm_eps);
  return linear([f[f.length - 1]], g('score.weight'), g('score.bias'))[0][0];
}
