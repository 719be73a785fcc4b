// The model catalog's shapes are those of the real configs (tests/fixtures), and its sizes are the published ones.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CATALOG, catalogParameters, downloadBytes, gpuBytes } from '../../src/lib/hub/model-catalog.js';
import { normalizeConfig, parameterCount } from '../../src/lib/model/config.js';

const fixtures: Record<string, string> = {
  'HuggingFaceTB/SmolLM2-135M-Instruct': 'SmolLM2-135M-Instruct',
  'Qwen/Qwen2.5-0.5B-Instruct': 'Qwen2.5-0.5B-Instruct',
  'TinyLlama/TinyLlama-1.1B-Chat-v1.0': 'TinyLlama-1.1B-Chat-v1.0',
  'meta-llama/Llama-3.2-1B-Instruct': 'Llama-3.2-1B-Instruct',
};

describe('model catalog', () => {
  it.each(Object.entries(fixtures))('%s has the shape of its real config.json', (repo, dir) => {
    const entry = CATALOG.find((m) => m.repo === repo)!;
    const config = normalizeConfig(JSON.parse(readFileSync(new URL(`../fixtures/${dir}/config.json`, import.meta.url), 'utf8')));
    for (const [k, v] of Object.entries(entry.shape)) expect([k, v]).toEqual([k, config[k as keyof typeof config]]);
    expect(catalogParameters(entry)).toBe(parameterCount(config));
  });

  it('sizes match what the hub publishes (bf16 safetensors), and f32 needs about twice the GPU memory of f16', () => {
    const mb = (repo: string) => Math.round(downloadBytes(CATALOG.find((m) => m.repo === repo)!) / 1e6);
    // Published safetensors sizes: 269 MB, 724 MB, 988 MB, 2.2 GB, 2.47 GB.
    expect(mb('HuggingFaceTB/SmolLM2-135M-Instruct')).toBe(269);
    expect(mb('HuggingFaceTB/SmolLM2-360M-Instruct')).toBe(724);
    expect(mb('Qwen/Qwen2.5-0.5B-Instruct')).toBe(988);
    expect(mb('TinyLlama/TinyLlama-1.1B-Chat-v1.0')).toBe(2200);
    expect(mb('meta-llama/Llama-3.2-1B-Instruct')).toBe(2472);
    for (const m of CATALOG) expect(gpuBytes(m, false, 'f32') / gpuBytes(m, true, 'f16')).toBeGreaterThan(1.3);
    // Gemma 3 1B at 8192 tokens: 4 global layers keep every position, 22 sliding ones a ring of 512 + 63 (f32 K and V,
    // 4 slots, 1 KV head of 256).
    const g = CATALOG.find((m) => m.repo === 'google/gemma-3-1b-it')!;
    const perRow = 2 * 4 * 1 * 256 * 4;
    const weights = gpuBytes(g, true, 'q4', 8192) - perRow * (4 * 8192 + 22 * 575);
    expect(gpuBytes(g, true, 'q4', 4096) - weights).toBe(perRow * (4 * 4096 + 22 * 575));
    expect(CATALOG.filter((m) => m.gated).map((m) => m.repo)).toEqual(['google/gemma-3-270m-it', 'google/gemma-3-1b-it', 'google/gemma-3-4b-it', 'google/gemma-2-2b-it', 'meta-llama/Llama-3.2-3B-Instruct', 'meta-llama/Llama-3.2-1B-Instruct']);
  });

  it("lists Qwen3 with its head_dim of 128 (not hidden / heads) and its q/k norms: Qwen's published 0.6B and 0.44B without embeddings", () => {
    const q = CATALOG.find((m) => m.repo === 'Qwen/Qwen3-0.6B')!;
    expect(q.shape).toMatchObject({ hiddenSize: 1024, numHeads: 16, headDim: 128, qkNorm: true, qkvBias: false });
    const all = catalogParameters(q);
    expect(all).toBe(596_049_920);
    expect((all - 151_936 * 1024) / 1e9).toBeCloseTo(0.44, 2);
    // SmolLM3-3B: 3.08 B parameters from the layer shapes of its config.json (the "3B" of its name).
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'HuggingFaceTB/SmolLM3-3B')!)).toBe(3_075_098_624);
    // Gemma 3's model cards: 268,098,176 and 999,885,952 parameters (four norms a layer, q/k norms, tied).
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'google/gemma-3-270m-it')!)).toBe(268_098_176);
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'google/gemma-3-1b-it')!)).toBe(999_885_952);
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'google/gemma-2-2b-it')!)).toBe(2_614_341_888);
    // The ~4B rows: Qwen3-4B and Llama-3.2-3B as published; Gemma 3 4B's text model, its download with the vision tower
    // (4,300,079,472 parameters in all).
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'Qwen/Qwen3-4B')!)).toBe(4_022_468_096);
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'meta-llama/Llama-3.2-3B-Instruct')!)).toBe(3_212_749_824);
    const g4 = CATALOG.find((m) => m.repo === 'google/gemma-3-4b-it')!;
    expect(catalogParameters(g4)).toBe(3_880_263_168);
    expect(downloadBytes(g4)).toBe(2 * 4_300_079_472);
    expect(CATALOG.filter((m) => m.repo.startsWith('google/')).every((m) => m.gated)).toBe(true);
    // Phi-3-mini: the 3.8 B of its model card.
    expect(catalogParameters(CATALOG.find((m) => m.repo === 'microsoft/Phi-3-mini-4k-instruct')!) / 1e9).toBeCloseTo(3.82, 2);
  });
});
