// A Phi-3 adapter (LoRA on its fused qkv_proj and gate_up_proj) dropped as a .zip is kept as it is (its rows are split
// over its base when it is loaded); a broken adapter is still refused at the door, by the same checks as a load.

import { describe, expect, it } from 'vitest';
import { zipBlob } from '../../src/lib/store/archive.js';
import { writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { storageHandlers } from '../../src/lib/worker/storage.js';
import type { LabStore } from '../../src/lib/store/kept.js';
import type { ModelCache } from '../../src/lib/store/model-cache.js';

const adapterZip = async (tensors: { name: string; shape: number[] }[], config: Record<string, unknown>) => {
  const st = writeSafetensors(tensors.map((t) => ({ ...t, dtype: 'F32' as const, data: new Uint8Array(4 * t.shape[0] * t.shape[1]) })), { format: 'pt' });
  const zip = await zipBlob(new Map([['phi/adapter_config.json', new TextEncoder().encode(JSON.stringify(config))], ['phi/adapter_model.safetensors', st]]));
  return new File([zip], 'phi-adapter.zip');
};

describe('a Phi-3 adapter imported as a .zip', () => {
  const kept: { name: string; baseModel: string | null }[] = [];
  const handlers = storageHandlers({ cache: async () => ({}) as ModelCache, lab: { putAdapter: async (a: { name: string; baseModel: string | null }) => { kept.push(a); } } as unknown as LabStore, estimate: async () => null });
  const config = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['qkv_proj', 'gate_up_proj'], base_model_name_or_path: 'microsoft/Phi-3-mini-4k-instruct' };
  const p = 'base_model.model.model.layers.0.';

  it('is kept, with its base named, to be split over that base when loaded', async () => {
    const file = await adapterZip([
      { name: `${p}self_attn.qkv_proj.lora_A.weight`, shape: [2, 16] }, { name: `${p}self_attn.qkv_proj.lora_B.weight`, shape: [48, 2] },
      { name: `${p}mlp.gate_up_proj.lora_A.weight`, shape: [2, 16] }, { name: `${p}mlp.gate_up_proj.lora_B.weight`, shape: [64, 2] },
    ], config);
    expect(await handlers.importFile({ file })).toEqual({ kind: 'adapter', id: 'phi-adapter' });
    expect(kept.at(-1)).toMatchObject({ name: 'phi-adapter', baseModel: 'microsoft/Phi-3-mini-4k-instruct' });
  });

  it('with a tensor of no LoRA module is refused, as a load refuses it', async () => {
    const file = await adapterZip([{ name: `${p}self_attn.rotary.lora_A.weight`, shape: [2, 16] }], config);
    await expect(handlers.importFile({ file })).rejects.toThrow(/not a LoRA weight/);
  });
});
