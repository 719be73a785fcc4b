// Hugging Face PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors, read and written in the layout PEFT
// uses. Delta W = B A * scaling with A (r, in), B (out, r), scaling = alpha / r, or alpha / sqrt(r) with rsLoRA;
// rank_pattern and alpha_pattern override r and alpha per module (keys matched as PEFT's get_pattern_key does).

import { splitFused, type FusedHalf } from './fused.js';
import type { ModelConfig } from '../model/config.js';
import { RE2JS } from 're2js';
import { AdapterError, NonFiniteError } from '../errors.js';
import { decodeToF32, encodeFromF32, finiteCheck, isDType, nonFinite, type DType } from '../formats/dtype.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../formats/safetensors.js';
import { jsonKind } from '../model-files.js';

export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

export interface PeftConfig {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  useRslora: boolean;
  /** A list of module names, a regex string matched against full module names, or 'all-linear'. */
  targetModules: string[] | string;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  layersToTransform: number[] | null;
  baseModelNameOrPath: string | null;
  taskType: string;
  /** The file's own keys, kept so a re-export loses nothing. */
  raw: Record<string, unknown>;
}

export interface LoraTensorPair {
  layer: number;
  module: LoraModule;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  a: Float32Array; // (r, in)
  b: Float32Array; // (out, r)
  /** alpha / r or alpha / sqrt(r), from the patterns. */
  scaling: number;
}

export interface LoraAdapter {
  name: string;
  config: PeftConfig;
  /** By `${layer}.${module}`. */
  modules: Map<string, LoraTensorPair>;
  /** dtype the tensors were stored in. */
  dtype: DType;
}

export const moduleKey = (layer: number, module: LoraModule) => `${layer}.${module}`;

export function fullModuleName(layer: number, module: LoraModule): string {
  const group = module === 'gate_proj' || module === 'up_proj' || module === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${group}.${module}`;
}

function num(v: unknown, fallback: number, key: string): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new AdapterError(`adapter_config.json: "${key}" is ${JSON.stringify(v)}, expected a finite number.`, { field: key });
  return v;
}

function rankValue(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new AdapterError(`adapter_config.json: "${key}" is ${JSON.stringify(v)}; a LoRA rank is an integer >= 1.`, { field: key });
  }
  return v;
}

const compiled = new Map<string, RE2JS>();

/**
 * Compiles a pattern from the config with RE2 semantics (re2js: linear-time matching, no backtracking), so a crafted
 * pattern such as `(.*)*x` cannot hang the worker or the CLI; a bad one is the adapter's fault, said as such.
 */
function compile(source: string, key: string): RE2JS {
  const hit = compiled.get(source);
  if (hit) return hit;
  try {
    const re = RE2JS.compile(source);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(source, re);
    return re;
  } catch (e) {
    throw new AdapterError(`adapter_config.json: "${key}" holds the regular expression ${JSON.stringify(source)}, which does not compile (${(e as Error).message}). Fix it or list the module names instead.`, { field: key });
  }
}

function numberMap(v: unknown, key: string, check: (x: unknown, where: string) => number): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new AdapterError(`adapter_config.json: "${key}" must map module-name patterns to numbers.`, { field: key });
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    compile(`(^|.*\\.)(${k})$`, `${key}.${k}`);
    out[k] = check(x, `${key}.${k}`);
  }
  return out;
}

/** Normalizes adapter_config.json, filling what older PEFT versions omit with PEFT's defaults (r 8, lora_alpha 8). */
export function parsePeftConfig(raw: unknown): PeftConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new AdapterError(`adapter_config.json holds ${jsonKind(raw)}, not an object: it is not a PEFT adapter config. Use the adapter_config.json that PEFT's save_pretrained wrote.`);
  }
  const cfg = raw as Record<string, unknown>;
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') {
    throw new AdapterError(`adapter_config.json: peft_type ${JSON.stringify(cfg.peft_type)} is not supported; LoRA Lab loads LoRA adapters (peft_type "LORA").`);
  }
  if (cfg.use_dora === true) throw new AdapterError('This adapter uses DoRA (use_dora: true), which LoRA Lab does not support. Use a plain LoRA adapter.');
  if (cfg.bias !== undefined && cfg.bias !== 'none') throw new AdapterError(`adapter_config.json: bias "${cfg.bias}" is not supported; only adapters trained with bias="none" are.`);
  // A reward model (SEQ_CLS) saves its score head whole; any other full module is beyond LoRA.
  const headOnly = cfg.task_type === 'SEQ_CLS' && Array.isArray(cfg.modules_to_save) && cfg.modules_to_save.every((m) => m === 'score');
  if (cfg.modules_to_save && Array.isArray(cfg.modules_to_save) && cfg.modules_to_save.length && !headOnly) {
    throw new AdapterError(`This adapter also saves full modules (${cfg.modules_to_save.join(', ')}), which LoRA Lab does not support.`);
  }
  const tm = cfg.target_modules ?? ['q_proj', 'v_proj'];
  if (!(typeof tm === 'string' || (Array.isArray(tm) && tm.length > 0 && tm.every((t) => typeof t === 'string')))) {
    throw new AdapterError(`adapter_config.json: target_modules ${JSON.stringify(tm)} must be a non-empty list of names, a regex string or "all-linear".`, { field: 'target_modules' });
  }
  if (typeof tm === 'string' && tm !== 'all-linear') compile(`^(?:${tm})$`, 'target_modules');
  const ltt = cfg.layers_to_transform ?? null;
  const layers = typeof ltt === 'number' ? [ltt] : ltt;
  if (layers !== null && !(Array.isArray(layers) && layers.every((l) => Number.isInteger(l) && l >= 0))) {
    throw new AdapterError(`adapter_config.json: layers_to_transform ${JSON.stringify(ltt)} must be a layer index or a list of them (integers >= 0).`, { field: 'layers_to_transform' });
  }
  const dropout = num(cfg.lora_dropout, 0, 'lora_dropout');
  if (!(dropout >= 0 && dropout < 1)) throw new AdapterError(`adapter_config.json: lora_dropout ${dropout} must be in [0, 1).`, { field: 'lora_dropout' });
  return {
    r: cfg.r === undefined || cfg.r === null ? 8 : rankValue(cfg.r, 'r'),
    loraAlpha: num(cfg.lora_alpha, 8, 'lora_alpha'),
    loraDropout: dropout,
    useRslora: cfg.use_rslora === true,
    targetModules: tm as string[] | string,
    rankPattern: numberMap(cfg.rank_pattern, 'rank_pattern', rankValue),
    alphaPattern: numberMap(cfg.alpha_pattern, 'alpha_pattern', (x, where) => num(x, NaN, where)),
    layersToTransform: layers as number[] | null,
    baseModelNameOrPath: typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : null,
    taskType: typeof cfg.task_type === 'string' ? cfg.task_type : 'CAUSAL_LM',
    raw: cfg,
  };
}

/** PEFT's get_pattern_key: the pattern key whose regex matches the end of the module name. */
function patternValue(pattern: Record<string, number>, name: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (compile(`(^|.*\\.)(${key})$`, 'rank_pattern / alpha_pattern').matcher(name).find()) return value;
  }
  return undefined;
}

/** r, alpha and scaling of one module under the config's patterns. */
export function moduleScaling(c: PeftConfig, layer: number, module: LoraModule): { r: number; alpha: number; scaling: number } {
  const name = fullModuleName(layer, module);
  const r = patternValue(c.rankPattern, name) ?? c.r;
  const alpha = patternValue(c.alphaPattern, name) ?? c.loraAlpha;
  return { r, alpha, scaling: c.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** Whether the config targets a module (PEFT's check_target_module_exists, for LLaMA-family names). */
export function targets(c: PeftConfig, layer: number, module: LoraModule): boolean {
  if (c.layersToTransform && !c.layersToTransform.includes(layer)) return false;
  const name = fullModuleName(layer, module);
  if (c.targetModules === 'all-linear') return true;
  if (typeof c.targetModules === 'string') return compile(`^(?:${c.targetModules})$`, 'target_modules').matcher(name).find();
  return c.targetModules.some((t) => name === t || name.endsWith(`.${t}`));
}

/** The largest entry a delta W = scaling B A may reach; beyond f16's range an adapter cannot be meant seriously. */
export const MAX_DELTA = 65504;

function maxAbs(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) { const v = Math.abs(x[i]); if (v > m) m = v; }
  return m;
}

const TENSOR = /^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|qkv_proj|gate_up_proj)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/;

/** One LoRA half, decoded: layer, module, A or B, its shape as PEFT stores it, and its values. */
export interface LoraHalf { layer: number; module: LoraModule; half: 'A' | 'B'; shape: number[]; values: Float32Array }

/**
 * Reads an adapter from its config object and safetensors bytes. Tensors that are not LoRA weights (a reward model's
 * `score` head, saved by PEFT's modules_to_save) are an error, unless `extra` is given to collect them.
 */
export function readPeftAdapter(
  name: string, rawConfig: unknown, safetensors: Uint8Array, extra?: Map<string, { shape: number[]; values: Float32Array }>,
  /** The base model: Phi-3's fused qkv_proj and gate_up_proj are split by its heads (lora/fused.ts). */
  base?: Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize'>,
): LoraAdapter {
  const config = parsePeftConfig(rawConfig);
  if (config.taskType === 'SEQ_CLS' && !extra) {
    throw new AdapterError(`${name} is a reward model (task_type SEQ_CLS: LoRA plus a score head), not an adapter for generation: load it as the reward model in Evaluate, or score with lora-lab score --reward-adapter.`);
  }
  const { header, data } = readSafetensors(safetensors, 'adapter_model.safetensors');
  const list: LoraHalf[] = [];
  const fused: FusedHalf[] = [];
  let dtype: DType = 'F32';
  for (const t of header.tensors) {
    const m = TENSOR.exec(t.name);
    if (!m && extra && isDType(t.dtype)) {
      const check = finiteCheck();
      const values = decodeToF32(data.get(t.name)!, t.dtype, check);
      if (check.index >= 0) throw nonFinite('adapter_model.safetensors', t.name, check);
      extra.set(t.name, { shape: t.shape, values });
      continue;
    }
    if (!m) {
      throw new AdapterError(`adapter_model.safetensors: tensor "${t.name}" is not a LoRA weight of a LLaMA-family attention or MLP projection; LoRA Lab supports LoRA on q/k/v/o/gate/up/down_proj only.`, { tensor: t.name });
    }
    if (!isDType(t.dtype)) throw new AdapterError(`adapter_model.safetensors: tensor "${t.name}" is ${t.dtype}; adapters must be F32, F16 or BF16.`, { tensor: t.name });
    if (t.shape.length !== 2) throw new AdapterError(`adapter_model.safetensors: tensor "${t.name}" has shape [${t.shape}], expected a matrix.`, { tensor: t.name });
    dtype = t.dtype;
    const check = finiteCheck();
    const values = decodeToF32(data.get(t.name)!, t.dtype, check);
    if (check.index >= 0) throw nonFinite('adapter_model.safetensors', t.name, check);
    if (m[2] === 'qkv_proj' || m[2] === 'gate_up_proj') fused.push({ layer: Number(m[1]), module: m[2], half: m[3] as 'A' | 'B', shape: t.shape, values });
    else list.push({ layer: Number(m[1]), module: m[2] as LoraModule, half: m[3] as 'A' | 'B', shape: t.shape, values });
  }
  const split = splitFused(fused, config, base, name);
  return assembleAdapter(name, split.config, [...list, ...split.halves], dtype);
}

/** Pairs decoded halves into modules, checking ranks, targets and scale against the config. */
export function assembleAdapter(name: string, config: PeftConfig, list: LoraHalf[], dtype: DType): LoraAdapter {
  const halves = new Map<string, { a?: Float32Array; b?: Float32Array; aShape?: number[]; bShape?: number[] }>();
  for (const t of list) {
    const key = moduleKey(t.layer, t.module);
    const h = halves.get(key) ?? {};
    if (t.half === 'A') { h.a = t.values; h.aShape = t.shape; } else { h.b = t.values; h.bShape = t.shape; }
    halves.set(key, h);
  }
  const modules = new Map<string, LoraTensorPair>();
  for (const [key, h] of halves) {
    const [layerText, module] = key.split('.') as [string, LoraModule];
    const layer = Number(layerText);
    if (!h.a || !h.b) throw new AdapterError(`adapter_model.safetensors: layer ${layer} ${module} has lora_${h.a ? 'A' : 'B'} but no lora_${h.a ? 'B' : 'A'}.`, { module: key });
    const [r, inFeatures] = h.aShape!;
    const [outFeatures, rb] = h.bShape!;
    if (rb !== r) throw new AdapterError(`adapter_model.safetensors: layer ${layer} ${module}: lora_A is [${h.aShape}] but lora_B is [${h.bShape}]; their ranks differ.`, { module: key });
    if (!targets(config, layer, module)) {
      throw new AdapterError(`adapter_model.safetensors has tensors for layer ${layer} ${module}, which adapter_config.json does not target (target_modules ${JSON.stringify(config.targetModules)}, layers_to_transform ${JSON.stringify(config.layersToTransform)}). The config and weights do not belong together.`, { module: key });
    }
    const s = moduleScaling(config, layer, module);
    if (s.r !== r) throw new AdapterError(`layer ${layer} ${module} has rank ${r} in the file but ${s.r} in adapter_config.json (r / rank_pattern).`, { module: key });
    const bound = Math.abs(s.scaling) * r * maxAbs(h.a) * maxAbs(h.b);
    if (!(bound <= MAX_DELTA)) {
      throw new NonFiniteError(`layer ${layer} ${module}: lora_alpha ${s.alpha} (scaling ${s.scaling}) with these weights can change a base weight by up to ${bound.toExponential(2)}, beyond ±${MAX_DELTA}; the generation would overflow. Check lora_alpha in adapter_config.json.`, { module: key, scaling: s.scaling });
    }
    modules.set(key, { layer, module, rank: r, inFeatures, outFeatures, a: h.a, b: h.b, scaling: s.scaling });
  }
  if (modules.size === 0) throw new AdapterError('adapter_model.safetensors holds no LoRA tensors.');
  return { name, config, modules, dtype };
}

/** The config PEFT would write for this adapter: the file's own keys first, then the ones PEFT always writes. */
export function peftConfigJson(a: LoraAdapter): Record<string, unknown> {
  const c = a.config;
  return {
    alpha_pattern: c.alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: c.layersToTransform,
    loftq_config: {},
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: c.rankPattern,
    revision: null,
    target_modules: c.targetModules,
    task_type: c.taskType,
    use_dora: false,
    use_rslora: c.useRslora,
    ...Object.fromEntries(Object.entries(c.raw).filter(([k]) => !KNOWN_KEYS.has(k))),
  };
}

const KNOWN_KEYS = new Set(['alpha_pattern', 'base_model_name_or_path', 'bias', 'fan_in_fan_out', 'inference_mode', 'layers_to_transform',
  'lora_alpha', 'lora_dropout', 'peft_type', 'r', 'rank_pattern', 'target_modules', 'task_type', 'use_dora', 'use_rslora',
  'modules_to_save', 'auto_mapping', 'init_lora_weights', 'layers_pattern', 'loftq_config', 'megatron_config', 'megatron_core', 'revision']);

/**
 * adapter_config.json text and adapter_model.safetensors bytes, as PEFT's save_pretrained writes them; `extra` tensors
 * (a reward model's score head, saved by modules_to_save) follow the LoRA weights.
 */
export function writePeftAdapter(a: LoraAdapter, dtype: DType = a.dtype, extra: TensorToWrite[] = []): { config: string; safetensors: Uint8Array } {
  const tensors: TensorToWrite[] = [];
  const keys = [...a.modules.values()].sort((x, y) => x.layer - y.layer || LORA_MODULES.indexOf(x.module) - LORA_MODULES.indexOf(y.module));
  for (const p of keys) {
    const base = `base_model.model.${fullModuleName(p.layer, p.module)}`;
    tensors.push({ name: `${base}.lora_A.weight`, dtype, shape: [p.rank, p.inFeatures], data: encodeFromF32(p.a, dtype) });
    tensors.push({ name: `${base}.lora_B.weight`, dtype, shape: [p.outFeatures, p.rank], data: encodeFromF32(p.b, dtype) });
  }
  return { config: JSON.stringify(peftConfigJson(a), null, 2) + '\n', safetensors: writeSafetensors([...tensors, ...extra], { format: 'pt' }) };
}
