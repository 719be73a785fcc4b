// Copy and fill, as compute dispatches so a training step stays one compute pass. Grid: one thread per element.

import { need, threads, type Kernel } from '../../gpu/program.js';
import { WORKGROUP } from '../common.js';

export function copyKernel(): Kernel {
  return {
    name: 'copy', workgroupSize: WORKGROUP, params: { n: 'u32' }, grid: (s) => threads(need('copy', s).n, WORKGROUP),
    buffers: { src: { type: 'array<f32>', access: 'read' }, dst: { type: 'array<f32>', access: 'read_write' } },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < P.n) { dst[i] = src[i]; }
}`,
  };
}

export function fillKernel(): Kernel {
  return {
    name: 'fill', workgroupSize: WORKGROUP, params: { n: 'u32', value: 'f32' }, grid: (s) => threads(need('fill', s).n, WORKGROUP),
    buffers: { dst: { type: 'array<f32>', access: 'read_write' } },
    source: /* wgsl */ `
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < P.n) { dst[i] = P.value; }
}`,
  };
}
