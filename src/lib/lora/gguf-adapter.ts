// LoRA adapters in GGUF, as llama.cpp's convert_lora_to_gguf.py writes them: general.type "adapter", adapter.type
// "lora", adapter.lora.alpha; per module blk.N.<tensor>.weight.lora_a (ne [in, r]: PEFT's A) and .lora_b (ne [r, out]:
// PEFT's B). The converter permutes the output rows of q and k of LLaMA-family models as it does for base weights,
// which shows in B; that is undone with the base model's head size. The result is the adapter its PEFT twin gives.

import { AdapterError } from '../errors.js';
import { dequantize, ggmlTypeName, isSupportedType, tensorBytes, type GgmlType } from '../formats/gguf-tensors.js';
import type { ModelFiles } from '../model-files.js';
import type { ModelConfig } from '../model/config.js';
import { readGgufHeader, unpermuteRows } from '../model/gguf.js';
import { assembleAdapter, fullModuleName, parsePeftConfig, type LoraAdapter, type LoraHalf, type LoraModule } from './peft.js';

const MODULES: Record<string, LoraModule> = {
  attn_q: 'q_proj', attn_k: 'k_proj', attn_v: 'v_proj', attn_output: 'o_proj', ffn_gate: 'gate_proj', ffn_up: 'up_proj', ffn_down: 'down_proj',
};
// Layer numbers as llama.cpp writes them: no leading zeros (blk.00 would name layer 0 a second way).
const TENSOR = /^blk\.(0|[1-9]\d{0,3})\.(\w+)\.weight\.lora_([ab])$/;
const ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'qwen3', 'smollm3'];

export async function loadGgufAdapter(files: ModelFiles, file: string, name: string, base?: ModelConfig): Promise<LoraAdapter> {
  const h = await readGgufHeader(files, file);
  const m = h.parsed.metadata as unknown as Record<string, unknown>;
  if (m['general.type'] !== 'adapter' || m['adapter.type'] !== 'lora') {
    const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v ?? null));
    throw new AdapterError(`${file} is not a GGUF LoRA adapter (general.type ${shown(m['general.type'])}, adapter.type ${shown(m['adapter.type'])}): load a GGUF model in the model panel, and adapters written by llama.cpp's convert_lora_to_gguf.py here.`, { file });
  }
  const arch = m['general.architecture'];
  if (typeof arch !== 'string' || !ARCHITECTURES.includes(arch)) {
    throw new AdapterError(`${file} is a LoRA adapter for a GGUF "${String(arch)}" model; the engine runs ${ARCHITECTURES.join(', ')}. Use an adapter trained on one of these families.`, { file });
  }
  // llama.cpp names LLaMA and Mistral "llama" (or "mistral"), Qwen2 "qwen2", Qwen3 "qwen3"; the families differ in how
  // q and k rows are ordered in the file (and Qwen3 in its q/k norms), so an adapter goes only over its own family.
  const family = (a: string) => (a === 'mistral' ? 'llama' : a);
  if (base && family(arch) !== family(({ Qwen2ForCausalLM: 'qwen2', Qwen3ForCausalLM: 'qwen3', SmolLM3ForCausalLM: 'smollm3' } as Record<string, string>)[base.architecture] ?? 'llama')) {
    throw new AdapterError(`${file} is a LoRA adapter for a ${arch} model, but the loaded model is ${base.architecture}: load it over a ${arch} model.`, { file });
  }
  const alpha = typeof m['adapter.lora.alpha'] === 'number' ? (m['adapter.lora.alpha'] as number) : NaN;
  const permuted = arch !== 'qwen2' && arch !== 'qwen3';
  if (permuted && !base) throw new AdapterError(`${file}: a GGUF adapter of a ${String(m['general.architecture'])} model needs its base model loaded first.`, { file });
  const halves: LoraHalf[] = [];
  for (const t of [...h.parsed.tensorInfos].sort((x, y) => Number(x.offset - y.offset))) {
    const parts = TENSOR.exec(t.name);
    const module = parts ? MODULES[parts[2]] : undefined;
    if (!parts || !module) throw new AdapterError(`${file}: tensor "${t.name}" is not a LoRA weight of a LLaMA-family attention or MLP projection.`, { tensor: t.name });
    if (!isSupportedType(t.dtype)) throw new AdapterError(`${file}: tensor ${t.name} is ${ggmlTypeName(t.dtype)}; GGUF adapters must be F32, F16, BF16 or Q8_0.`, { tensor: t.name });
    if (base && Number(parts[1]) >= base.numLayers) throw new AdapterError(`${file}: tensor ${t.name} is for layer ${parts[1]}, but the base model has ${base.numLayers} layers (0 to ${base.numLayers - 1}). The adapter is for another model.`, { tensor: t.name });
    if (t.shape.length !== 2) throw new AdapterError(`${file}: tensor ${t.name} has ${t.shape.length} dimension(s) [${t.shape.map(String)}]; a LoRA half is a matrix. The file is damaged.`, { tensor: t.name });
    const [inner, outer] = t.shape.map(Number);
    const start = h.dataOffset + Number(t.offset);
    const bytes = await h.reader.take(start, start + tensorBytes(t.dtype as GgmlType, inner * outer, inner, t.name), true);
    let values = dequantize(t.dtype as GgmlType, bytes, inner * outer);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new AdapterError(`${file}: tensor ${t.name} holds ${values[bad]} at index ${bad}; an adapter's weights must be finite numbers. The training that wrote it diverged: use an earlier checkpoint.`, { tensor: t.name });
    const half = parts[3] === 'a' ? 'A' : 'B';
    if (half === 'B' && permuted && (module === 'q_proj' || module === 'k_proj')) {
      if (outer % base!.headDim !== 0) throw new AdapterError(`${file}: tensor ${t.name} has ${outer} output rows, not a whole number of the base model's heads of ${base!.headDim}. The adapter is for another model.`, { tensor: t.name });
      values = unpermuteRows(values, outer, inner, base!.headDim);
    }
    halves.push({ layer: Number(parts[1]), module, half, shape: [outer, inner], values });
  }
  const r = Math.max(0, ...halves.filter((x) => x.half === 'A').map((x) => x.shape[0]));
  if (!(alpha > 0)) throw new AdapterError(`${file} has no positive adapter.lora.alpha, so its scale is unknown. The file is incomplete.`, { file });
  const config = parsePeftConfig({
    r, lora_alpha: alpha, peft_type: 'LORA', task_type: 'CAUSAL_LM',
    target_modules: [...new Set(halves.map((x) => x.module))],
    // A module whose rank differs from the largest gets its own (llama.cpp scales each by alpha over its own rank).
    rank_pattern: Object.fromEntries(halves.filter((x) => x.half === 'A' && x.shape[0] !== r).map((x) => [fullModuleName(x.layer, x.module).replaceAll('.', '\\.'), x.shape[0]])),
    base_model_name_or_path: typeof m['general.base_model.0.repo_url'] === 'string' ? m['general.base_model.0.repo_url'] : null,
  });
  return assembleAdapter(name, config, halves, 'F32');
}
