// Resident LoRA adapters on the GPU, next to the one shared copy of the base weights. Each adapter owns a slot
// (slot 0 means "no adapter"); for every (layer, projection group) that some resident adapter adapts there are two
// f32 buffers holding all slots: A (slots, G, r, K) and B (slots, N, r), B pre-multiplied by the module's scaling.
// Adding or removing an adapter rewrites these small buffers only; the base weights are never touched.
// Groups follow the fused matmuls: qkv (q, k, v: G = 3), o, gate_up (gate, up: G = 2), down.

import type { Gpu } from '../gpu/device.js';
import type { ModelConfig } from '../model/config.js';
import type { LoraEpilogue, LoraGroupBuffers, LoraGroupName } from '../model/lora-epilogue.js';
import { checkAdapterFits, moduleShape } from './fit.js';
import { moduleKey, type LoraAdapter, type LoraModule } from './peft.js';

export type { LoraGroupBuffers, LoraGroupName };

export const GROUP_MODULES: Record<LoraGroupName, LoraModule[]> = {
  qkv: ['q_proj', 'k_proj', 'v_proj'],
  o: ['o_proj'],
  gate_up: ['gate_proj', 'up_proj'],
  down: ['down_proj'],
};

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;

export class LoraBank implements LoraEpilogue {
  /** adapters[slot - 1]; null marks a free slot. */
  readonly adapters: (LoraAdapter | null)[] = [];
  /** Largest rank over resident adapters (every slot is padded to it). */
  rank = 0;
  /** Increments whenever the buffers change; the runner rebuilds its bind groups when it does. */
  version = 0;
  #groups = new Map<string, LoraGroupBuffers>();

  constructor(private readonly gpu: Gpu, private readonly cfg: ModelConfig) {}

  get layers(): number {
    return this.cfg.numLayers;
  }

  get slots(): number {
    return this.adapters.length + 1;
  }

  holds(slot: number): boolean {
    return slot >= 1 && slot <= this.adapters.length && this.adapters[slot - 1] !== null;
  }

  group(layer: number, group: LoraGroupName): LoraGroupBuffers | undefined {
    return this.#groups.get(`${layer}.${group}`);
  }

  slotOf(name: string): number {
    const i = this.adapters.findIndex((a) => a?.name === name);
    return i < 0 ? 0 : i + 1;
  }

  /** Makes `adapter` resident and returns its slot; an adapter of the same name is replaced. */
  add(adapter: LoraAdapter): number {
    checkAdapterFits(adapter, this.cfg);
    let slot = this.slotOf(adapter.name);
    if (slot === 0) {
      const free = this.adapters.indexOf(null);
      slot = free >= 0 ? free + 1 : this.adapters.push(adapter);
    }
    this.adapters[slot - 1] = adapter;
    this.#rebuild();
    return slot;
  }

  /** Frees every buffer the bank holds (the runner's destroy calls this). */
  destroy(): void {
    for (const g of this.#groups.values()) {
      this.gpu.destroyBuffer(g.a);
      this.gpu.destroyBuffer(g.b);
    }
    this.#groups.clear();
    this.adapters.length = 0;
  }

  remove(name: string): void {
    const slot = this.slotOf(name);
    if (slot === 0) return;
    this.adapters[slot - 1] = null;
    while (this.adapters.length && this.adapters[this.adapters.length - 1] === null) this.adapters.pop();
    this.#rebuild();
  }

  #rebuild(): void {
    for (const g of this.#groups.values()) {
      this.gpu.destroyBuffer(g.a);
      this.gpu.destroyBuffer(g.b);
    }
    this.#groups.clear();
    const live = this.adapters.filter((a): a is LoraAdapter => a !== null);
    this.rank = Math.max(0, ...live.flatMap((a) => [...a.modules.values()].map((p) => p.rank)));
    const R = this.rank;
    const S = this.slots;
    for (let layer = 0; layer < this.cfg.numLayers; layer++) {
      for (const [name, modules] of Object.entries(GROUP_MODULES) as [LoraGroupName, LoraModule[]][]) {
        if (!live.some((a) => modules.some((m) => a.modules.has(moduleKey(layer, m))))) continue;
        const K = moduleShape(this.cfg, modules[0])[0];
        const offsets: number[] = [];
        let N = 0;
        for (const m of modules) { offsets.push(N); N += moduleShape(this.cfg, m)[1]; }
        const G = modules.length;
        const a = new Float32Array(S * G * R * K);
        const b = new Float32Array(S * N * R);
        this.adapters.forEach((adapter, i) => {
          const slot = i + 1;
          modules.forEach((m, g) => {
            const p = adapter?.modules.get(moduleKey(layer, m));
            if (!p) return;
            for (let j = 0; j < p.rank; j++) a.set(p.a.subarray(j * K, (j + 1) * K), ((slot * G + g) * R + j) * K);
            for (let n = 0; n < p.outFeatures; n++) {
              for (let j = 0; j < p.rank; j++) b[(slot * N + offsets[g] + n) * R + j] = p.b[n * p.rank + j] * p.scaling;
            }
          });
        });
        const ga = this.gpu.createBuffer(`L${layer}.${name}.lora_A`, a.byteLength, USAGE());
        const gb = this.gpu.createBuffer(`L${layer}.${name}.lora_B`, b.byteLength, USAGE());
        this.gpu.device.queue.writeBuffer(ga, 0, a);
        this.gpu.device.queue.writeBuffer(gb, 0, b);
        this.#groups.set(`${layer}.${name}`, { a: ga, b: gb, G, K, N, offsets });
      }
    }
    this.version++;
  }
}
