import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../src/lib/errors.js';
import { encodeFromF32, type DType } from '../../src/lib/formats/dtype.js';
import { readSafetensors, writeSafetensors } from '../../src/lib/formats/safetensors.js';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { checkAdapterFits } from '../../src/lib/lora/fit.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';
import { moduleScaling, parsePeftConfig, readPeftAdapter, targets, writePeftAdapter } from '../../src/lib/lora/peft.js';
import { syntheticAdapter } from '../../src/lib/lora/synthetic.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { Rng } from '../../src/lib/util/rng.js';

const fixture = (dir: string, file: string) => new Uint8Array(readFileSync(new URL(`../fixtures/adapters/${dir}/${file}`, import.meta.url)));
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

const base = normalizeConfig({
  architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50, head_dim: 6,
});
const smol360 = normalizeConfig({
  architectures: ['LlamaForCausalLM'], hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15,
  num_key_value_heads: 5, vocab_size: 49152,
});
const qwen05 = normalizeConfig(JSON.parse(readFileSync(new URL('../fixtures/Qwen2.5-0.5B-Instruct/config.json', import.meta.url), 'utf8')));

/** Writes an adapter file as PEFT would, with optional adapter name in the tensor names. */
function peftFile(cfg: Record<string, unknown>, dtype: DType, withName: boolean, seed = 1) {
  const a = syntheticAdapter(base, { name: 'x', seed, config: cfg });
  const rng = new Rng(seed);
  const tensors = [...a.modules.values()].flatMap((p) => {
    const name = `base_model.model.model.layers.${p.layer}.${['gate_proj', 'up_proj', 'down_proj'].includes(p.module) ? 'mlp' : 'self_attn'}.${p.module}`;
    const sfx = withName ? '.default' : '';
    return [
      { name: `${name}.lora_A${sfx}.weight`, dtype, shape: [p.rank, p.inFeatures], data: encodeFromF32(p.a.map(() => rng.normal()), dtype) },
      { name: `${name}.lora_B${sfx}.weight`, dtype, shape: [p.outFeatures, p.rank], data: encodeFromF32(p.b, dtype) },
    ];
  });
  return writeSafetensors(tensors, { format: 'pt' });
}

describe('PEFT adapter_config.json', () => {
  it('fills the defaults of old configs and ignores unknown keys', () => {
    const c = parsePeftConfig({ r: 4, lora_alpha: 8, some_future_key: { x: 1 } });
    expect(c).toMatchObject({ r: 4, loraAlpha: 8, useRslora: false, targetModules: ['q_proj', 'v_proj'], layersToTransform: null, rankPattern: {} });
  });

  it('computes alpha/r, alpha/sqrt(r) and the rank/alpha patterns per module', () => {
    const c = parsePeftConfig({ r: 8, lora_alpha: 16, rank_pattern: { 'layers\\.1\\.mlp\\.down_proj': 4 }, alpha_pattern: { o_proj: 2 } });
    expect(moduleScaling(c, 0, 'q_proj')).toEqual({ r: 8, alpha: 16, scaling: 2 });
    expect(moduleScaling(c, 1, 'down_proj')).toEqual({ r: 4, alpha: 16, scaling: 4 });
    expect(moduleScaling(c, 0, 'down_proj').r).toBe(8);
    expect(moduleScaling(c, 2, 'o_proj')).toEqual({ r: 8, alpha: 2, scaling: 0.25 });
    const rs = parsePeftConfig({ r: 16, lora_alpha: 8, use_rslora: true });
    expect(moduleScaling(rs, 0, 'q_proj').scaling).toBe(2);
  });

  it('matches target_modules given as a list, a regex string, or all-linear, with layers_to_transform', () => {
    const list = parsePeftConfig({ target_modules: ['q_proj', 'down_proj'] });
    expect(targets(list, 0, 'q_proj') && targets(list, 2, 'down_proj') && !targets(list, 0, 'k_proj')).toBe(true);
    const re = parsePeftConfig({ target_modules: '.*\\.layers\\.[01]\\.self_attn\\.(q|v)_proj' });
    expect([targets(re, 0, 'q_proj'), targets(re, 1, 'v_proj'), targets(re, 2, 'q_proj'), targets(re, 0, 'k_proj')]).toEqual([true, true, false, false]);
    const all = parsePeftConfig({ target_modules: 'all-linear', layers_to_transform: [1] });
    expect([targets(all, 1, 'gate_proj'), targets(all, 0, 'gate_proj')]).toEqual([true, false]);
  });

  it.each([
    [{ use_dora: true }, /DoRA/],
    [{ bias: 'all' }, /bias "all"/],
    [{ peft_type: 'IA3' }, /peft_type "IA3"/],
    [{ modules_to_save: ['lm_head'] }, /lm_head/],
  ])('refuses unsupported options %j', (cfg, msg) => {
    expect(() => parsePeftConfig(cfg)).toThrow(AdapterError);
    expect(() => parsePeftConfig(cfg)).toThrow(msg);
  });
});

describe('PEFT adapter files', () => {
  const variants: [string, Record<string, unknown>][] = [
    ['list targets', { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }],
    ['regex targets', { r: 2, lora_alpha: 4, target_modules: '.*(k_proj|up_proj)' }],
    ['all-linear + rsLoRA + rank_pattern', { r: 4, lora_alpha: 4, target_modules: 'all-linear', use_rslora: true, rank_pattern: { down_proj: 2 } }],
  ];
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    for (const withName of [false, true]) {
      it.each(variants)(`%s, ${dtype}, ${withName ? 'with' : 'without'} .default`, (_n, cfg) => {
        const a = readPeftAdapter('x', cfg, peftFile(cfg, dtype, withName));
        const expected = syntheticAdapter(base, { name: 'x', seed: 1, config: cfg });
        expect([...a.modules.keys()].sort()).toEqual([...expected.modules.keys()].sort());
        for (const [k, p] of a.modules) {
          expect(p.scaling).toBe(expected.modules.get(k)!.scaling);
          expect(p.rank).toBe(expected.modules.get(k)!.rank);
        }
        expect(a.dtype).toBe(dtype);
        checkAdapterFits(a, base);
      });
    }
  }

  it('reads the real SmolLM2-360M and Qwen2.5-0.5B adapters and checks them against their bases', async () => {
    for (const [dir, cfg, layers] of [['smollm2-360m-instruct-r8-qv', smol360, 32], ['qwen25-05b-instruct-r8-qv', qwen05, 24]] as const) {
      const files = new MemoryFiles(dir, new Map([
        ['adapter_config.json', fixture(dir, 'adapter_config.json')],
        ['adapter_model.safetensors', fixture(dir, 'adapter_model.safetensors')],
      ]));
      const a = await loadPeftAdapter(files);
      expect(a.modules.size).toBe(layers * 2);
      expect(a.modules.get('0.q_proj')!.scaling).toBe(2);
      expect(Math.max(...Array.from(a.modules.get('3.v_proj')!.b, Math.abs))).toBeGreaterThan(0); // trained, not init
      checkAdapterFits(a, cfg);
      // The SmolLM2 adapter does not fit Qwen2.5 (different widths): the error names the tensor and both shapes.
      if (dir.startsWith('smollm2')) expect(() => checkAdapterFits(a, qwen05)).toThrow(/lora_A\.weight is \[8, 960\].*must be \[8, 896\]/);
    }
  });

  it('says what to do with adapter_model.bin and other mismatches', async () => {
    const bin = new MemoryFiles('old', new Map([['adapter_config.json', new TextEncoder().encode('{"r": 8}')], ['adapter_model.bin', new Uint8Array(10)]]));
    await expect(loadPeftAdapter(bin)).rejects.toThrow(/adapter_model\.bin.*not supported.*safetensors/);
    const cfg = { r: 4, lora_alpha: 8, target_modules: ['q_proj'] };
    const a = readPeftAdapter('x', cfg, peftFile(cfg, 'F32', false));
    const fewer = normalizeConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 50, head_dim: 6 });
    expect(() => checkAdapterFits(a, fewer)).toThrow(/layer 2, but the base has 2 layers/);
    expect(() => readPeftAdapter('x', { ...cfg, r: 8 }, peftFile(cfg, 'F32', false))).toThrow(/rank 4 in the file but 8/);
    const odd = writeSafetensors([{ name: 'base_model.model.lm_head.lora_A.weight', dtype: 'F32', shape: [1, 1], data: new Uint8Array(4) }]);
    expect(() => readPeftAdapter('x', cfg, odd)).toThrow(/lm_head\.lora_A\.weight.*q\/k\/v\/o\/gate\/up\/down_proj/);
  });
});

describe('PEFT writer', () => {
  it('round-trips: identical tensors, equivalent config, PEFT tensor names and metadata', () => {
    const cfg = { r: 4, lora_alpha: 8, target_modules: 'all-linear', use_rslora: true, rank_pattern: { down_proj: 2 }, lora_dropout: 0.05 };
    const a = syntheticAdapter(base, { name: 'x', seed: 3, config: cfg });
    const { config, safetensors } = writePeftAdapter(a);
    const back = readPeftAdapter('x', JSON.parse(config), safetensors);
    for (const [k, p] of a.modules) {
      expect(back.modules.get(k)!.a).toEqual(p.a);
      expect(back.modules.get(k)!.b).toEqual(p.b);
      expect(back.modules.get(k)!.scaling).toBe(p.scaling);
    }
    const written = JSON.parse(config);
    expect(written).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, use_rslora: true, target_modules: 'all-linear', bias: 'none', fan_in_fan_out: false, rank_pattern: { down_proj: 2 } });
    const { header } = readSafetensors(safetensors);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.tensors[0].name).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(header.tensors.every((t) => /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(t.name))).toBe(true);
  });

  it('re-exports the real fixture with the same tensor names and config keys PEFT wrote', () => {
    const dir = 'qwen25-05b-instruct-r8-qv';
    const original = fixture(dir, 'adapter_model.safetensors');
    const cfg = json(fixture(dir, 'adapter_config.json'));
    const { config, safetensors } = writePeftAdapter(readPeftAdapter('q', cfg, original));
    const a = readSafetensors(original);
    const b = readSafetensors(safetensors);
    expect(b.header.tensors.map((t) => t.name).sort()).toEqual(a.header.tensors.map((t) => t.name).sort());
    // Byte-for-byte (Buffer.equals: toEqual on 2 MB of typed arrays is needlessly slow).
    const same = a.header.tensors.filter((t) => Buffer.from(b.data.get(t.name)!).equals(Buffer.from(a.data.get(t.name)!)));
    expect(same.length).toBe(a.header.tensors.length);
    expect(Object.keys(JSON.parse(config)).sort()).toEqual(Object.keys(cfg).sort());
  });
});
