// The kernel-program layer: declarations become WGSL, uniforms are packed by name (a field the kernel does not
// declare, or one left out, is an error), and the debug switch prints every generated shader.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { bindingIndex, kernelCode, need, packParams, paramOffset, threads, type Kernel } from '../../src/lib/gpu/program.js';
import { matmulProgram, MATMUL_PARAMS } from '../../src/lib/kernels/matmul.js';
import { NEG_BIG, ROW_INFO_WORDS } from '../../src/lib/kernels/common.js';
import { attentionKernel } from '../../src/lib/kernels/attention.js';

const toy: Kernel = {
  name: 'toy', workgroupSize: 64, constants: { N4: 4, HALF: { f32: 0.5 } },
  params: { n: 'u32', scale: 'f32', offset: 'u32' },
  buffers: { x: { type: 'array<f32>', access: 'read', shape: '(n)' }, y: { type: 'array<f32>', access: 'read_write' } },
  source: 'fn helper() {}\nfn main(@builtin(global_invocation_id) gid: vec3u) { y[gid.x] = x[gid.x] * P.scale * HALF; }',
  grid: (s) => threads(need('toy', s).n, 64),
};

describe('kernel programs', () => {
  it('generates the uniform struct, the bindings by declaration order, the constants and the entry attribute', () => {
    const code = kernelCode(toy);
    expect(code).toContain('const WG: u32 = 64u;');
    expect(code).toContain('const N4: u32 = 4u;');
    expect(code).toContain('const HALF: f32 = 0.5;');
    expect(code).toContain('struct Params { n: u32, scale: f32, offset: u32 }');
    expect(code).toContain('@group(0) @binding(0) var<uniform> P: Params;');
    expect(code).toContain('@group(0) @binding(1) var<storage, read> x: array<f32>; // (n)');
    expect(code).toContain('@group(0) @binding(2) var<storage, read_write> y: array<f32>;');
    expect(code).toMatch(/fn helper\(\) \{\}\n@compute @workgroup_size\(WG\)\nfn main\(/);
    expect(bindingIndex(toy, 'y')).toBe(2);
    expect(() => bindingIndex(toy, 'z')).toThrow(/no buffer "z"/);
    expect(toy.grid({ n: 65 * 64 })).toEqual([65, 1, 1]);
    expect(toy.grid({ n: 64 * 70000 })).toEqual([35000, 2, 1]); // past 65535 workgroups the grid folds into y
    expect(() => toy.grid({})).toThrow(/its grid needs the size "n"/);
  });

  it('packs uniforms by name into 16-byte blocks and refuses unknown or missing fields', () => {
    const data = packParams(toy, { n: 7, scale: 1.5, offset: 0xffffffff });
    expect(data.byteLength).toBe(16);
    expect(new Uint32Array(data)[0]).toBe(7);
    expect(new Float32Array(data)[1]).toBe(1.5);
    expect(new Uint32Array(data)[2]).toBe(0xffffffff);
    expect(paramOffset(toy, 'offset')).toBe(8);
    expect(() => packParams(toy, { n: 1, scale: 1 })).toThrow(/"offset" has no value/);
    expect(() => packParams(toy, { n: 1, scale: 1, offset: 0, extra: 2 })).toThrow(/no uniform "extra"/);
  });

  it('shares constants with TypeScript instead of literals, and declares every matmul uniform once', () => {
    const code = kernelCode(matmulProgram('gemm', { format: 'f16', norm: true, bias: false, swiglu: false, residual: true, last: false, lora: true }, 300));
    expect(code).toContain(`const RI: u32 = ${ROW_INFO_WORDS}u;`);
    expect(code).toContain(`const NEG_BIG: f32 = ${String(NEG_BIG)};`);
    expect(code).toContain(`struct Params { ${Object.entries(MATMUL_PARAMS).map(([n, t]) => `${n}: ${t}`).join(', ')} }`);
    expect(code).not.toContain('enable f16;'); // f16 weights are read as u32 pairs (weight-read.ts): no shader-f16 needed
    // Outside the generated constants, no magic numbers: WG, NONE, RI and NEG_BIG are named.
    const body = code.split('\n').filter((l) => !l.startsWith('const '));
    expect(body.join('\n')).not.toMatch(/\b256u\b|0xffffffffu|4u \* m\b|3\.0e38/);
    expect(kernelCode(attentionKernel(64))).toContain('const WG: u32 = 48u;');
  });

  it('LORA_LAB_DEBUG_SHADERS=1 prints each generated shader with its name', async () => {
    const run = promisify(execFile);
    const script = "import { kernelCode } from './src/lib/gpu/program.ts'; kernelCode({ name: 'dbg', workgroupSize: 1, params: {}, buffers: {}, source: 'fn main() {}', grid: () => [1, 1, 1] });";
    const { stdout } = await run('npx', ['tsx', '-e', script], { env: { ...process.env, LORA_LAB_DEBUG_SHADERS: '1' }, cwd: new URL('../../', import.meta.url).pathname });
    expect(stdout).toMatch(/--- shader dbg ---\nconst WG: u32 = 1u;/);
  });
});
