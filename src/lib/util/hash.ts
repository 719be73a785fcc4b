// PCG-style integer hash, the same as the WGSL `pcg` of the training kernels: per-step seeds derive from it.

export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** A 32-bit seed from several integers. */
export function pcgHash(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) h = pcg((h ^ (x >>> 0)) >>> 0);
  return h;
}
