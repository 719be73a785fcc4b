// Phi-3's fused projections in PEFT files. Its checkpoints (and so its adapters) have one qkv_proj (rows q | k | v)
// and one gate_up_proj (rows gate | up), where the engine keeps q, k, v, gate and up as modules of their own.
// Read: a fused LoRA (A shared, B stacked) is the same update as one module per part with A copied and B's rows
// split. Written: the parts go back into one fused module of the summed rank, A stacked and B block-diagonal, every
// module's scaling folded into its B (alpha = r, no rsLoRA, so PEFT scales by 1): the same update, to f32 rounding.

import { AdapterError } from '../errors.js';
import { encodeFromF32, type DType } from '../formats/dtype.js';
import { writeSafetensors } from '../formats/safetensors.js';
import type { ModelConfig } from '../model/config.js';

// What this file needs of peft.ts's types, stated here (peft.ts imports this file).
type LoraModule = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
interface LoraHalf { layer: number; module: LoraModule; half: 'A' | 'B'; shape: number[]; values: Float32Array }
interface Patterns { targetModules: string[] | string; rankPattern: Record<string, number>; alphaPattern: Record<string, number> }
interface Pair { layer: number; rank: number; inFeatures: number; outFeatures: number; a: Float32Array; b: Float32Array; scaling: number }
interface Adapter { config: { taskType: string; baseModelNameOrPath: string | null; loraDropout: number }; modules: Map<string, Pair>; dtype: DType }

export type FusedModule = 'qkv_proj' | 'gate_up_proj';
type Base = Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize'>;

/** The parts of a fused module and their rows in it. */
function parts(module: FusedModule, base: Base): [LoraModule, number, number][] {
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh, intermediateSize: F } = base;
  return module === 'qkv_proj'
    ? [['q_proj', 0, H * Dh], ['k_proj', H * Dh, Hkv * Dh], ['v_proj', (H + Hkv) * Dh, Hkv * Dh]]
    : [['gate_proj', 0, F], ['up_proj', F, F]];
}

/** A fused half read from a file: layer, module, A or B, shape, values. */
export interface FusedHalf { layer: number; module: FusedModule; half: 'A' | 'B'; shape: number[]; values: Float32Array }

/** Fused halves as halves of the parts, and the config's targets and patterns named by the parts. */
export function splitFused<C extends Patterns>(fused: FusedHalf[], config: C, base: Base | undefined, name: string): { halves: LoraHalf[]; config: C } {
  if (!fused.length) return { halves: [], config };
  if (!base) throw new AdapterError(`${name} adapts Phi-3's fused ${fused[0].module}: load its base model first, then add the adapter on the shelf (its rows are split by the base's heads).`, { needsBase: true });
  const halves: LoraHalf[] = [];
  for (const f of fused) {
    const split = parts(f.module, base);
    const [out, r] = f.shape;
    const want = split.reduce((t, p) => t + p[2], 0);
    if (f.half === 'B' && out !== want) throw new AdapterError(`${name}: layer ${f.layer} ${f.module}.lora_B has ${out} rows, but the base's ${f.module} has ${want}: the adapter is for another model.`, { module: f.module });
    for (const [module, row, rows] of split) {
      halves.push(f.half === 'A'
        ? { layer: f.layer, module, half: 'A', shape: f.shape, values: f.values }
        : { layer: f.layer, module, half: 'B', shape: [rows, r], values: f.values.slice(row * r, (row + rows) * r) });
    }
  }
  // A target or pattern key naming a fused module (bare, or a full module name) names its parts instead.
  const rename = (t: string) => {
    for (const [fusedName, names] of [['qkv_proj', ['q_proj', 'k_proj', 'v_proj']], ['gate_up_proj', ['gate_proj', 'up_proj']]] as const) {
      if (t.endsWith(fusedName)) return names.map((n) => t.slice(0, t.length - fusedName.length) + n);
    }
    return [t];
  };
  const pattern = (p: Record<string, number>) => Object.fromEntries(Object.entries(p).flatMap(([k, v]) => rename(k).map((n) => [n, v] as [string, number])));
  const targetModules = Array.isArray(config.targetModules) ? config.targetModules.flatMap(rename) : config.targetModules;
  return { halves, config: { ...config, targetModules, rankPattern: pattern(config.rankPattern), alphaPattern: pattern(config.alphaPattern) } };
}

/** The tensors and config of `a` as a PEFT adapter of a model with fused projections (Phi-3). */
export function fuseForPeft(a: Adapter, base: Base): { config: Record<string, unknown>; tensors: { name: string; shape: number[]; data: Float32Array }[] } {
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  const ranks: Record<string, number> = {};
  const layers = [...new Set([...a.modules.values()].map((m) => m.layer))].sort((x, y) => x - y);
  const put = (layer: number, path: string, module: string, A: Float32Array, B: Float32Array, r: number, inF: number, outF: number) => {
    const name = `model.layers.${layer}.${path}.${module}`;
    tensors.push({ name: `base_model.model.${name}.lora_A.weight`, shape: [r, inF], data: A }, { name: `base_model.model.${name}.lora_B.weight`, shape: [outF, r], data: B });
    ranks[name] = r;
  };
  for (const l of layers) {
    for (const [fusedName, path] of [['qkv_proj', 'self_attn'], ['gate_up_proj', 'mlp']] as [FusedModule, string][]) {
      const ps = parts(fusedName, base).map(([m, row, rows]) => ({ m: a.modules.get(`${l}.${m}`), row, rows }));
      const present = ps.filter((p) => p.m);
      if (!present.length) continue;
      const r = present.reduce((t, p) => t + p.m!.rank, 0);
      const inF = present[0].m!.inFeatures;
      const outF = ps.reduce((t, p) => t + p.rows, 0);
      const A = new Float32Array(r * inF);
      const B = new Float32Array(outF * r);
      let c = 0;
      for (const p of present) {
        const m = p.m!;
        A.set(m.a, c * inF);
        for (let o = 0; o < p.rows; o++) for (let j = 0; j < m.rank; j++) B[(p.row + o) * r + c + j] = m.scaling * m.b[o * m.rank + j];
        c += m.rank;
      }
      put(l, path, fusedName, A, B, r, inF, outF);
    }
    for (const [m, path] of [['o_proj', 'self_attn'], ['down_proj', 'mlp']] as [LoraModule, string][]) {
      const p = a.modules.get(`${l}.${m}`);
      if (p) put(l, path, m, p.a, p.b.map((v) => v * p.scaling), p.rank, p.inFeatures, p.outFeatures);
    }
  }
  const targets = [...new Set(Object.keys(ranks).map((n) => n.split('.').pop()!))];
  const c = a.config;
  return {
    config: {
      peft_type: 'LORA', task_type: c.taskType, base_model_name_or_path: c.baseModelNameOrPath, bias: 'none', fan_in_fan_out: false,
      inference_mode: true, init_lora_weights: true, layers_to_transform: null, lora_dropout: c.loraDropout, modules_to_save: null,
      // Each module's scaling is in its B: alpha = r everywhere, so PEFT scales every update by 1.
      r: Math.max(...Object.values(ranks)), lora_alpha: Math.max(...Object.values(ranks)), use_rslora: false, use_dora: false,
      rank_pattern: ranks, alpha_pattern: { ...ranks },
      target_modules: targets, revision: null,
    },
    tensors,
  };
}

/** adapter_config.json text and adapter_model.safetensors bytes of `a` for a model with fused projections. */
export function writeFusedPeft(a: Adapter, base: Base, dtype: DType = a.dtype): { config: string; safetensors: Uint8Array } {
  const { config, tensors } = fuseForPeft(a, base);
  const list = tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, data: encodeFromF32(t.data, dtype) }));
  return { config: JSON.stringify(config, null, 2) + '\n', safetensors: writeSafetensors(list, { format: 'pt' }) };
}
