// Merging an adapter into a copy of the base weights, W' = W + strength * scaling * B A, and writing the result as a
// full Hugging Face checkpoint. The base weights are read back from the GPU (the copy that runs), so the export works
// whatever the source was; the running model is not changed.

import { encodeFromF32, f16ToF32, type DType } from '../formats/dtype.js';
import { writeSafetensors, type TensorToWrite } from '../formats/safetensors.js';
import type { Gpu } from '../gpu/device.js';
import { readBuffer } from '../gpu/readback.js';
import type { ModelConfig } from '../model/config.js';
import type { Matrix, ModelWeights } from '../model/weights.js';
import { dequantizeRows, isQuantized } from '../quant/blocks.js';
import { fullModuleName, moduleKey, type LoraAdapter, type LoraModule } from './peft.js';

/** A whole matrix (N, K) as f32, without row padding (quantized matrices dequantized: the values that run). */
export async function readMatrix(gpu: Gpu, m: Matrix): Promise<Float32Array> {
  const out = new Float32Array(m.n * m.k);
  for (const s of m.shards) {
    const raw = await readBuffer(gpu, s.buffer, s.rows * m.ldw * (m.format === 'f16' ? 2 : 4));
    if (isQuantized(m.format)) {
      out.set(dequantizeRows(new Uint32Array(raw), s.rows, m.k, m.format), s.rowStart * m.k);
      continue;
    }
    const src = m.format === 'f16' ? new Uint16Array(raw) : new Float32Array(raw);
    for (let r = 0; r < s.rows; r++) {
      for (let c = 0; c < m.k; c++) {
        const v = src[r * m.ldw + c];
        out[(s.rowStart + r) * m.k + c] = m.format === 'f16' ? f16ToF32(v) : v;
      }
    }
  }
  return out;
}

async function readVector(gpu: Gpu, b: GPUBuffer, n: number, offset = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, b, (offset + n) * 4)).slice(offset, offset + n);
}

/** model.safetensors of the base with `adapter` merged in at `strength` (null adapter: the base itself). */
export async function mergedCheckpoint(
  gpu: Gpu, cfg: ModelConfig, w: ModelWeights, adapter: LoraAdapter | null, strength: number, dtype: DType = gpu.f16 ? 'F16' : 'F32',
): Promise<Uint8Array> {
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: Dh } = cfg;
  const tensors: TensorToWrite[] = [];
  const put = (name: string, shape: number[], data: Float32Array) => tensors.push({ name, dtype, shape, data: encodeFromF32(data, dtype) });
  const merge = (layer: number, module: LoraModule, data: Float32Array, outF: number, inF: number) => {
    const p = adapter?.modules.get(moduleKey(layer, module));
    if (!p) return data;
    const s = strength * p.scaling;
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let acc = 0;
        for (let j = 0; j < p.rank; j++) acc += p.b[o * p.rank + j] * p.a[j * inF + i];
        data[o * inF + i] += s * acc;
      }
    }
    return data;
  };
  // A norm gain as the checkpoint stores it: Gemma's without the 1 the engine added when loading (g = 1 + w).
  const gain = async (b: GPUBuffer, n = D, offset = 0) => (await readVector(gpu, b, n, offset)).map((g) => g - cfg.normOffset);
  put('model.embed_tokens.weight', [cfg.vocabSize, D], await readMatrix(gpu, w.embed));
  for (let l = 0; l < cfg.numLayers; l++) {
    const lw = w.layers[l];
    const p = `model.layers.${l}.`;
    put(`${p}input_layernorm.weight`, [D], await gain(lw.attnNorm));
    const qkv = await readMatrix(gpu, lw.qkv);
    const parts: [LoraModule, number, number][] = [['q_proj', 0, H * Dh], ['k_proj', H * Dh, Hkv * Dh], ['v_proj', (H + Hkv) * Dh, Hkv * Dh]];
    for (const [module, row, rows] of parts) {
      const merged = merge(l, module, qkv.slice(row * D, (row + rows) * D), rows, D);
      if (cfg.fusedProjections) qkv.set(merged, row * D);
      else put(`${fullModuleName(l, module)}.weight`, [rows, D], merged);
      if (lw.qkvBias) put(`${fullModuleName(l, module)}.bias`, [rows], await readVector(gpu, lw.qkvBias, rows, row));
    }
    // Phi-3 keeps q, k, v stacked in one qkv_proj, as the engine does.
    if (cfg.fusedProjections) put(`${p}self_attn.qkv_proj.weight`, [(H + 2 * Hkv) * Dh, D], qkv);
    if (lw.qkNorm) {
      put(`${p}self_attn.q_norm.weight`, [Dh], await gain(lw.qkNorm, Dh, 0));
      put(`${p}self_attn.k_norm.weight`, [Dh], await gain(lw.qkNorm, Dh, Dh));
    }
    put(`${p}self_attn.o_proj.weight`, [D, H * Dh], merge(l, 'o_proj', await readMatrix(gpu, lw.o), D, H * Dh));
    if (lw.postAttnNorm && lw.postMlpNorm) {
      // Gemma's names: post_attention_layernorm is the attention output's norm, pre_feedforward the MLP input's.
      put(`${p}post_attention_layernorm.weight`, [D], await gain(lw.postAttnNorm));
      put(`${p}pre_feedforward_layernorm.weight`, [D], await gain(lw.mlpNorm));
      put(`${p}post_feedforward_layernorm.weight`, [D], await gain(lw.postMlpNorm));
    } else put(`${p}post_attention_layernorm.weight`, [D], await gain(lw.mlpNorm));
    const F = cfg.intermediateSize;
    const gate = merge(l, 'gate_proj', await readMatrix(gpu, lw.gate), F, D);
    const up = merge(l, 'up_proj', await readMatrix(gpu, lw.up), F, D);
    if (cfg.fusedProjections) {
      const gateUp = new Float32Array(2 * F * D);
      gateUp.set(gate);
      gateUp.set(up, F * D);
      put(`${p}mlp.gate_up_proj.weight`, [2 * F, D], gateUp); // gate rows first, as Phi3MLP chunks them
    } else {
      put(`${p}mlp.gate_proj.weight`, [F, D], gate);
      put(`${p}mlp.up_proj.weight`, [F, D], up);
    }
    put(`${p}mlp.down_proj.weight`, [D, F], merge(l, 'down_proj', await readMatrix(gpu, lw.down), D, F));
  }
  put('model.norm.weight', [D], await gain(w.finalNorm));
  if (!cfg.tieWordEmbeddings) put('lm_head.weight', [cfg.vocabSize, D], await readMatrix(gpu, w.lmHead));
  return writeSafetensors(tensors, { format: 'pt' });
}
