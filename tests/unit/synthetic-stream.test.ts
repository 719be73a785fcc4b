// The streamed synthetic checkpoint (what `npm run bench -- --only big` loads at 3-4B parameters without holding the
// model in memory) is the eager one: the same bytes, or for Phi-3 (its fused tensors in draw order) the same tensors.
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/lib/formats/safetensors.js';
import { streamedSyntheticModel, syntheticModel } from '../../src/lib/model/synthetic.js';
import { TINY_CONFIGS } from '../helpers/models.js';

async function streamed(spec: Parameters<typeof syntheticModel>[0]): Promise<Uint8Array> {
  const s = streamedSyntheticModel(spec);
  const chunks: Uint8Array[] = [];
  for await (const c of s.open()) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((t, c) => t + c.byteLength, 0));
  chunks.reduce((at, c) => { out.set(c, at); return at + c.byteLength; }, 0);
  expect(out.byteLength).toBe(s.size);
  expect(s.config).toEqual(syntheticModel(spec).config);
  return out;
}

describe('streamed synthetic checkpoints', () => {
  it.each(['llamaGqaUntied', 'qwen2BiasTied', 'gemma3', 'gemma2'])('%s: the bytes of the eager file, in F32 and BF16', async (key) => {
    for (const dtype of ['F32', 'BF16'] as const) {
      const spec = { ...TINY_CONFIGS[key], dtype };
      expect(Buffer.from(await streamed(spec)).equals(Buffer.from(syntheticModel(spec).safetensors))).toBe(true);
    }
  });

  it("phi3: the eager file's tensors, fused qkv_proj and gate_up_proj included", async () => {
    const spec = { ...TINY_CONFIGS.phi3Fused, dtype: 'BF16' as const };
    const a = readSafetensors(await streamed(spec));
    const b = readSafetensors(syntheticModel(spec).safetensors);
    expect([...a.data.keys()].sort()).toEqual([...b.data.keys()].sort());
    for (const [name, bytes] of b.data) expect(Buffer.from(a.data.get(name)!).equals(Buffer.from(bytes)), name).toBe(true);
  });
});
