// A model on the GPU: its config, its weights, the bank of resident LoRA adapters over them, and its tokenizer when
// it came with one. It owns that GPU memory and frees it with destroy(). The inference runner and the training graph both take a LoadedModel (each adds its
// own buffers: KV cache and activations, or training activations), so neither reaches through the other.

import type { Gpu } from '../gpu/device.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { ModelConfig } from './config.js';
import type { LoraEpilogue } from './lora-epilogue.js';
import { destroyWeights, type ModelWeights } from './weights.js';

export class LoadedModel<L extends LoraEpilogue = LoraEpilogue> {
  #destroyed = false;

  constructor(
    readonly gpu: Gpu, readonly config: ModelConfig, readonly weights: ModelWeights, readonly lora: L,
    readonly tokenizer: TextTokenizer | null = null,
  ) {}

  /** Frees the weights and the adapter bank. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.lora.destroy();
    destroyWeights(this.gpu, this.weights);
  }
}
