// Float64 reference of the LLaMA-family forward pass, written as plain loops (llama2.c's run.c in TypeScript), with
// Qwen2's q/k/v biases, Qwen3's per-head q/k norms (transformers' modeling_qwen3), SmolLM3's layers without RoPE and
// Gemma 2's and 3's layer (transformers' modeling_gemma2 and modeling_gemma3: (1 + w) norms, scaled embeddings,
// sandwich norms, GeGLU, local and global layers, Gemma 2's soft-capped attention scores and logits).
// It is the ground truth every GPU kernel and the whole GPU model are compared against. Letters: T tokens,
// D hidden, F intermediate, H heads, Hkv kv heads, Dh head dim, V vocab.

import { ropeInvFreq, type RefConfig as ModelConfig } from './config.js';

export type Weights = Map<string, { shape: number[]; data: ArrayLike<number> }>;

function get(w: Weights, name: string): ArrayLike<number> {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t.data;
}

/** out (N) = W (N, K) @ x (K) [+ b] */
export function matvec(w: ArrayLike<number>, x: ArrayLike<number>, n: number, k: number, b?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b ? b[i] : 0;
    for (let j = 0; j < k; j++) s += w[i * k + j] * x[j];
    out[i] = s;
  }
  return out;
}

/** y = x / sqrt(mean(x^2) + eps) * g */
export function rmsnorm(x: ArrayLike<number>, g: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const r = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * r * g[i];
  return out;
}

/** Rotates one head (Dh) in place at position pos: pairs (i, i + Dh/2); the angle rounded to f32, as transformers has it. */
export function rope(v: Float64Array, off: number, dh: number, pos: number, invFreq: ArrayLike<number>, scale = 1): void {
  const half = dh / 2;
  for (let i = 0; i < half; i++) {
    const a = v[off + i];
    const b = v[off + i + half];
    const ang = Math.fround(pos * invFreq[i]);
    const c = scale * Math.cos(ang);
    const s = scale * Math.sin(ang);
    v[off + i] = a * c - b * s;
    v[off + i + half] = b * c + a * s;
  }
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** transformers' gelu_pytorch_tanh: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** A layer's attention window (0: none) and RoPE inverse frequencies (Gemma 3's sliding layers have their own base). */
export function layerAttention(cfg: ModelConfig, l: number, invFreqF32 = true, context = 0): { window: number; inv: Float64Array } {
  const sliding = !!cfg.slidingWindow && (cfg.slidingLayers?.[l] ?? true);
  const local = sliding && cfg.localRopeTheta != null ? { ...cfg, ropeTheta: cfg.localRopeTheta, ropeScaling: null } : cfg;
  const inv = ropeInvFreq(local, context);
  return { window: sliding ? cfg.slidingWindow! : 0, inv: invFreqF32 ? Float64Array.from(new Float32Array(inv)) : inv };
}

/** A norm's gain as the layer applies it: Gemma's checkpoints store w of (1 + w). */
export function gainOf(cfg: ModelConfig, w: ArrayLike<number>): ArrayLike<number> {
  return cfg.sandwichNorms ? Float64Array.from(w, (v) => Math.fround(1 + v)) : w;
}

/**
 * Logits (T, V) for tokens at positions 0..T-1 of one sequence, full recomputation (no cache).
 * `invFreqF32` rounds the RoPE frequencies to f32 as the GPU and transformers do; `context` is the context the model
 * runs with (LongRoPE's long factors past the original one).
 */
export function referenceForward(cfg: ModelConfig, w: Weights, tokens: number[], invFreqF32 = true, context = 0): Float64Array[] {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
  const T = tokens.length;
  const emb = get(w, 'model.embed_tokens.weight');
  const gemma = cfg.sandwichNorms === true;
  const g = (name: string) => gainOf(cfg, get(w, name));
  // Gemma3TextScaledWordEmbedding: times sqrt(hidden_size) in the weights' dtype (f32 here).
  const embScale = gemma ? Math.fround(Math.sqrt(D)) : 1;
  const x: Float64Array[] = tokens.map((t) => Float64Array.from({ length: D }, (_, i) => emb[t * D + i] * embScale)); // (T, D)
  const scale = cfg.attentionScale ?? 1 / Math.sqrt(Dh);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const { window, inv } = layerAttention(cfg, l, invFreqF32, context);
    const bias = (n: string) => (cfg.qkvBias ? get(w, `${p}self_attn.${n}_proj.bias`) : undefined);
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const xn = rmsnorm(x[t], g(`${p}input_layernorm.weight`), cfg.rmsNormEps);
      const q = matvec(get(w, `${p}self_attn.q_proj.weight`), xn, H * Dh, D, bias('q')); // (H Dh)
      const k = matvec(get(w, `${p}self_attn.k_proj.weight`), xn, Hkv * Dh, D, bias('k')); // (Hkv Dh)
      const v = matvec(get(w, `${p}self_attn.v_proj.weight`), xn, Hkv * Dh, D, bias('v'));
      if (cfg.qkNorm) {
        // transformers' Qwen3Attention: q_norm(q_proj(x).view(..., head_dim)), k_norm likewise, then RoPE.
        for (let h = 0; h < H; h++) q.set(rmsnorm(q.subarray(h * Dh, (h + 1) * Dh), g(`${p}self_attn.q_norm.weight`), cfg.rmsNormEps), h * Dh);
        for (let h = 0; h < Hkv; h++) k.set(rmsnorm(k.subarray(h * Dh, (h + 1) * Dh), g(`${p}self_attn.k_norm.weight`), cfg.rmsNormEps), h * Dh);
      }
      if (cfg.ropeLayers?.[l] !== false) { // SmolLM3's NoPE layers attend without positions
        const af = cfg.ropeScaling?.attentionFactor ?? 1; // LongRoPE scales cos and sin
        // Phi3: q_rot, q_pass = q[..., :rotary_dim], q[..., rotary_dim:]; only q_rot turns (its halves paired).
        const R = cfg.rotaryDim ?? Dh;
        for (let h = 0; h < H; h++) rope(q, h * Dh, R, t, inv, af);
        for (let h = 0; h < Hkv; h++) rope(k, h * Dh, R, t, inv, af);
      }
      qs.push(q); ks.push(k); vs.push(v);
    }
    for (let t = 0; t < T; t++) {
      const att = new Float64Array(H * Dh); // (H Dh)
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / (H / Hkv));
        const first = window ? Math.max(0, t - window + 1) : 0; // keys outside the window: none
        const scores = new Float64Array(t + 1).fill(-Infinity);
        let mx = -Infinity;
        for (let j = first; j <= t; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += qs[t][h * Dh + d] * ks[j][kh * Dh + d];
          scores[j] = cfg.attnSoftcap ? cfg.attnSoftcap * Math.tanh((s * scale) / cfg.attnSoftcap) : s * scale;
          mx = Math.max(mx, scores[j]);
        }
        let sum = 0;
        for (let j = first; j <= t; j++) { scores[j] = Math.exp(scores[j] - mx); sum += scores[j]; }
        for (let j = first; j <= t; j++) {
          for (let d = 0; d < Dh; d++) att[h * Dh + d] += (scores[j] / sum) * vs[j][kh * Dh + d];
        }
      }
      let o = matvec(get(w, `${p}self_attn.o_proj.weight`), att, D, H * Dh);
      if (gemma) o = rmsnorm(o, g(`${p}post_attention_layernorm.weight`), cfg.rmsNormEps);
      for (let i = 0; i < D; i++) x[t][i] += o[i];
      const xn = rmsnorm(x[t], g(`${p}${gemma ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`), cfg.rmsNormEps);
      const gt = matvec(get(w, `${p}mlp.gate_proj.weight`), xn, F, D);
      const u = matvec(get(w, `${p}mlp.up_proj.weight`), xn, F, D);
      const hdn = gt.map((gi, i) => (gemma ? geluTanh(gi) : silu(gi)) * u[i]); // (F)
      let down = matvec(get(w, `${p}mlp.down_proj.weight`), hdn, D, F);
      if (gemma) down = rmsnorm(down, g(`${p}post_feedforward_layernorm.weight`), cfg.rmsNormEps);
      for (let i = 0; i < D; i++) x[t][i] += down[i];
    }
  }
  const head = get(w, cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  const cap = cfg.finalSoftcap;
  return x.map((xt) => matvec(head, rmsnorm(xt, g('model.norm.weight'), cfg.rmsNormEps), V, D).map((z) => (cap ? cap * Math.tanh(z / cap) : z)));
}

/** Greedy decoding with the reference (full recomputation each step). */
export function referenceGreedy(cfg: ModelConfig, w: Weights, prompt: number[], n: number, context = 0): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = referenceForward(cfg, w, seq, true, context);
    const last = logits[logits.length - 1];
    let best = 0;
    for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
    out.push(best);
    seq.push(best);
  }
  return out;
}
