// Kernel programs, in the spirit of tfjs-backend-webgpu's programs: a kernel declares its uniforms by name and type,
// its buffers by name (type, access, shape comment), its workgroup size and the constants it shares with TypeScript;
// the WGSL declarations are generated from that, and dispatches bind buffers and pack uniforms by name. Nothing is
// positional outside this file, so changing a kernel's parameters is one edit in one place.
//
//   binding 0   var<uniform> P: Params      the declared uniforms, in order (4-byte scalars)
//   binding 1.. the declared buffers, in order
//
// Set LORA_LAB_DEBUG_SHADERS=1 (Node) or ?debug-shaders (browser) to print every generated shader with its key.

export type Scalar = 'u32' | 'f32';

export interface BufferDecl {
  /** WGSL type: `array<f32>`, `array<vec4<f16>>`, or a struct declared in `structs` (uniform). */
  type: string;
  access: 'read' | 'read_write' | 'uniform';
  /** Shape comment, e.g. '(M, H, Dh)'. */
  shape?: string;
}

export interface Kernel {
  /** Names the pipeline; with the options that shape the text it is the shader's key in debug output. */
  name: string;
  /** Uses subgroup builtins (`enable subgroups;`); only made for devices with the feature. */
  subgroups?: boolean;
  params: Record<string, Scalar>;
  buffers: Record<string, BufferDecl>;
  /** Threads per workgroup (x only: every kernel here is one-dimensional inside a workgroup). */
  workgroupSize: number;
  /** Constants shared with TypeScript, interpolated as `const NAME: u32 = ...;` (numbers) or f32 (`{ f32 }`). */
  constants?: Record<string, number | { f32: number }>;
  /** Extra WGSL declarations before the bindings (structs used by uniform buffers). */
  structs?: string;
  /** Helper functions and `fn main(...)`; the generator adds `@compute @workgroup_size(WG)` in front of main. */
  source: string;
  /** Workgroups of a dispatch, from the sizes the kernel names (e.g. `{ rows, D }`); a missing size throws. */
  grid: (sizes: Sizes) => Grid;
}

export type Grid = [number, number, number];

/** Sizes a grid is computed from; reading one that was not given throws, naming it. */
export type Sizes = Record<string, number>;

/** Splits a workgroup count over x and y so neither passes the 65535 per-dimension limit. */
export function grid2d(count: number): Grid {
  if (count <= 65535) return [count, 1, 1];
  const y = Math.ceil(count / 65535);
  return [Math.ceil(count / y), y, 1];
}

/** One thread per element over `n` elements, `wg` threads per workgroup. */
export const threads = (n: number, wg: number): Grid => grid2d(Math.ceil(n / wg));

/** The sizes object with a check on every read, for `Kernel.grid`. */
export function need(k: string, sizes: Sizes): Sizes {
  return new Proxy(sizes, {
    get(target, name) {
      const v = target[name as string];
      if (typeof v !== 'number') throw new Error(`kernel ${k}: its grid needs the size "${String(name)}"`);
      return v;
    },
  });
}

/** The WGSL text of a kernel: generated declarations, then its source. */
export function kernelCode(k: Kernel): string {
  const consts: Record<string, number | { f32: number }> = { WG: k.workgroupSize, ...k.constants };
  const lines: string[] = [];
  if (k.subgroups) lines.push('enable subgroups;');
  if (k.structs) lines.push(k.structs.trim());
  for (const [name, v] of Object.entries(consts)) {
    lines.push(typeof v === 'number' ? `const ${name}: u32 = ${v >>> 0}u;` : `const ${name}: f32 = ${wgslFloat(v.f32)};`);
  }
  const fields = Object.entries(k.params);
  lines.push(`struct Params { ${fields.length ? fields.map(([n, t]) => `${n}: ${t}`).join(', ') : 'unused: u32'} }`);
  lines.push('@group(0) @binding(0) var<uniform> P: Params;');
  Object.entries(k.buffers).forEach(([name, b], i) => {
    const space = b.access === 'uniform' ? 'uniform' : `storage, ${b.access}`;
    lines.push(`@group(0) @binding(${i + 1}) var<${space}> ${name}: ${b.type};${b.shape ? ` // ${b.shape}` : ''}`);
  });
  const main = k.source.indexOf('fn main(');
  if (main < 0 || k.source.indexOf('fn main(', main + 1) >= 0) throw new Error(`kernel ${k.name}: the source must define fn main once`);
  const code = `${lines.join('\n')}\n${k.source.slice(0, main)}@compute @workgroup_size(WG)\n${k.source.slice(main)}`;
  if (debugShaders()) console.log(`--- shader ${k.name} ---\n${code}`);
  return code;
}

/** An f32 literal that WGSL accepts (always with a decimal point or exponent). */
export function wgslFloat(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`WGSL has no literal for ${x}`);
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** Values for a kernel's uniforms, every declared field by name. */
export type ParamValues = Record<string, number>;

/** The uniform bytes of `values` in declaration order, padded to 16 bytes; unknown or missing fields throw. */
export function packParams(k: Kernel, values: ParamValues): ArrayBuffer {
  const fields = Object.entries(k.params);
  for (const name of Object.keys(values)) if (!(name in k.params)) throw new Error(`kernel ${k.name} has no uniform "${name}"`);
  const data = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  fields.forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined) throw new Error(`kernel ${k.name}: uniform "${name}" has no value`);
    if (type === 'f32') f[i] = v;
    else u[i] = v >>> 0;
  });
  return data;
}

/** Byte offset of one uniform field, for fields rewritten per step (a learning rate, a loss weight). */
export function paramOffset(k: Kernel, name: string): number {
  const i = Object.keys(k.params).indexOf(name);
  if (i < 0) throw new Error(`kernel ${k.name} has no uniform "${name}"`);
  return 4 * i;
}

/** Binding index of a named buffer (Params is 0). */
export function bindingIndex(k: Kernel, name: string): number {
  const i = Object.keys(k.buffers).indexOf(name);
  if (i < 0) throw new Error(`kernel ${k.name} has no buffer "${name}"`);
  return i + 1;
}

let debug: boolean | undefined;
function debugShaders(): boolean {
  if (debug === undefined) {
    const g = globalThis as { process?: { env?: Record<string, string | undefined> }; location?: { search?: string } };
    debug = g.process?.env?.LORA_LAB_DEBUG_SHADERS === '1' || /[?&]debug-shaders\b/.test(g.location?.search ?? '');
  }
  return debug;
}
