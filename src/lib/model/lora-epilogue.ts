// What the forward pass needs of the resident LoRA adapters, owned by model/ so that the runner does not depend on
// lora/ (the bank in lora/bank.ts implements it; lora/ depends on model/, never the other way).
// Groups follow the fused matmuls: qkv (q, k, v: G = 3), o, gate_up (gate, up: G = 2), down.

export type LoraGroupName = 'qkv' | 'o' | 'gate_up' | 'down';

/** The bank's buffers for one (layer, group): A (slots, G, rank, K) and B (slots, N, rank), B pre-scaled. */
export interface LoraGroupBuffers {
  /** (slots, G, rank, K) */
  a: GPUBuffer;
  /** (slots, N, rank): rows of every module of the group stacked (q | k | v, or gate | up). */
  b: GPUBuffer;
  G: number;
  K: number;
  /** Total output rows of the group's B (for gate_up: 2F). */
  N: number;
  /** Start row of each module's block in B. */
  offsets: number[];
}

export interface LoraEpilogue {
  /** Largest rank over resident adapters (every slot is padded to it); 0 when none is resident. */
  readonly rank: number;
  /** Changes whenever the buffers change: the runner rebuilds its bind groups when it does. */
  readonly version: number;
  /** Slots including slot 0 (no adapter). */
  readonly slots: number;
  /** Whether `slot` holds an adapter (slot 0 never does). */
  holds(slot: number): boolean;
  group(layer: number, group: LoraGroupName): LoraGroupBuffers | undefined;
  destroy(): void;
}
