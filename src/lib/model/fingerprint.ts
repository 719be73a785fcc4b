// A model's identity is its content, not the way it was opened: the same weights from the hub, a URL, a folder, a zip
// or the app's own files give the same fingerprint. It is the model's shape (config) and every tensor the engine uses
// (name, dtype, shape and a hash of its bytes), combined in name order so shard layout and file order do not matter.
// The byte hash is a fast non-cryptographic one (two 32-bit multiply-xorshift lanes over the words, ~1 GB/s in JS):
// it tells models apart, it does not defend against forgery.

import type { ModelConfig } from './config.js';

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;

/** Two 32-bit lanes over `bytes` (any length, any alignment), as 16 hex digits. */
export function hashBytes(bytes: Uint8Array): string {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 2);
  let a = 0x165667b1 ^ bytes.byteLength;
  let b = 0x27d4eb2f;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    a = Math.imul(a ^ w, P1);
    a ^= a >>> 15;
    b = Math.imul(b + w, P2);
    b ^= b >>> 13;
  }
  for (let i = words.length * 4; i < bytes.byteLength; i++) {
    a = Math.imul(a ^ bytes[i], P1);
    b = Math.imul(b + bytes[i], P2);
  }
  a = Math.imul(a ^ (a >>> 16), P3) ^ b;
  b = Math.imul(b ^ (b >>> 16), P3) ^ a;
  return ((a >>> 0).toString(16).padStart(8, '0')) + ((b >>> 0).toString(16).padStart(8, '0'));
}

/**
 * Whether a run (checkpoint, evaluation) recorded on `base` belongs to the model loaded now: by fingerprint when the
 * record has one, else (records from before fingerprints) by the id the model was opened under.
 */
export function sameModel(base: { model: string | null; fingerprint?: string }, loaded: { modelId: string; fingerprint: string }): boolean {
  return base.fingerprint ? base.fingerprint === loaded.fingerprint : base.model === loaded.modelId;
}

/** Collects tensors as they stream in; `digest` gives the model's fingerprint. */
export class Fingerprint {
  readonly #tensors = new Map<string, string>();

  add(name: string, dtype: string, shape: readonly number[], bytes: Uint8Array): void {
    this.#tensors.set(name, `${name}:${dtype}:${shape.join('x')}:${hashBytes(bytes)}`);
  }

  digest(config: ModelConfig): string {
    const shape = [config.architecture, config.hiddenSize, config.intermediateSize, config.numLayers, config.numHeads, config.numKvHeads, config.headDim, config.vocabSize, config.rmsNormEps, config.ropeTheta, JSON.stringify(config.ropeScaling), config.tieWordEmbeddings, config.qkvBias].join('|');
    const lines = [shape, ...[...this.#tensors.keys()].sort().map((k) => this.#tensors.get(k)!)];
    return hashBytes(new TextEncoder().encode(lines.join('\n')));
  }
}
