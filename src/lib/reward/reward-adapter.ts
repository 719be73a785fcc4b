// A reward model trained on our engine, as files and as a scorer.
//
// Files: the PEFT folder PEFT itself writes for LoRA on LlamaForSequenceClassification with num_labels 1:
// adapter_config.json with task_type SEQ_CLS and modules_to_save ["score"], and adapter_model.safetensors holding the
// LoRA weights and the head as base_model.model.score.weight, shape (1, hidden). transformers + PEFT load it with
// AutoPeftModelForSequenceClassification; LoRA Lab loads it back as a reward model.
//
// Scorer: the same forward as training (the adapter in a bank slot of the loaded model, the head on the last token),
// forward only; it scores an answer to a question as the ONNX reward model does, so either serves the same views.

import { AdapterError, InvalidArgumentError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { ModelFiles } from '../model-files.js';
import type { LoraBank } from '../lora/bank.js';
import { peftConfigJson, readPeftAdapter, writePeftAdapter, type LoraAdapter } from '../lora/peft.js';
import { encodeFromF32 } from '../formats/dtype.js';
import type { LoadedModel } from '../model/loaded.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { lengthBucket } from '../data/batches.js';
import { DEFAULT_TRAIN_CONFIG } from '../training/train-config.js';
import type { RewardAdapter } from '../training/reward-trainer.js';
import { MASKED, TrainStep } from '../training/step.js';
import { rewardIds } from './pairs.js';
import type { RewardModelInfo, RewardScore } from './onnx-reward.js';

export const HEAD_TENSOR = 'base_model.model.score.weight';

/** adapter_config.json and adapter_model.safetensors of a reward model (LoRA + head). */
export function writeRewardAdapter(r: RewardAdapter): { config: string; safetensors: Uint8Array } {
  const { safetensors } = writePeftAdapter(r.adapter, 'F32', [{ name: HEAD_TENSOR, dtype: 'F32', shape: [1, r.head.length], data: encodeFromF32(r.head, 'F32') }]);
  const config = { ...peftConfigJson(r.adapter), task_type: 'SEQ_CLS', modules_to_save: ['score'] };
  return { config: JSON.stringify(config, null, 2) + '\n', safetensors };
}

/** Reads a reward model's PEFT files: a SEQ_CLS LoRA adapter with a one-label score head. */
export function readRewardAdapter(name: string, rawConfig: unknown, safetensors: Uint8Array, hiddenSize?: number): RewardAdapter {
  const taskType = (rawConfig as { task_type?: unknown } | null)?.task_type;
  if (taskType !== 'SEQ_CLS') {
    throw new AdapterError(`${name} is not a reward model: its adapter_config.json has task_type ${JSON.stringify(taskType)}, a reward model's is "SEQ_CLS" (LoRA plus a score head). Load it as an adapter instead.`);
  }
  const extra = new Map<string, { shape: number[]; values: Float32Array }>();
  const adapter = readPeftAdapter(name, rawConfig, safetensors, extra);
  const head = extra.get(HEAD_TENSOR);
  if (!head) throw new AdapterError(`${name} has no score head: adapter_model.safetensors needs ${HEAD_TENSOR} (PEFT saves it with modules_to_save ["score"]).`);
  if (head.shape.length !== 2 || head.shape[0] !== 1) {
    throw new AdapterError(`${name}: the score head has shape [${head.shape}]; a reward model has one label, [1, hidden size].`);
  }
  if (hiddenSize !== undefined && head.shape[1] !== hiddenSize) {
    throw new AdapterError(`${name}: the score head has ${head.shape[1]} inputs but the loaded model's hidden size is ${hiddenSize}: it was trained on another base model.`);
  }
  return { adapter, head: head.values };
}

/** Reads a reward model from any source (folder, repo, URL, zip, cache). */
export async function loadRewardAdapter(files: ModelFiles, hiddenSize?: number): Promise<RewardAdapter> {
  const cfg = await files.bytes('adapter_config.json', true);
  const st = await files.bytes('adapter_model.safetensors', true);
  if (!cfg || !st) throw new AdapterError(`${files.label} is not a reward model folder: it needs adapter_config.json and adapter_model.safetensors (with the score head).`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(cfg));
  } catch (e) {
    throw new AdapterError(`${files.label}: adapter_config.json is not JSON (${(e as Error).message}).`);
  }
  return readRewardAdapter(files.label, raw, st, hiddenSize);
}

/** Sequences scored in one forward: the graph's batch (a pair's two slots). */
const SCORE_BATCH = 2;

/** Scores answers with a reward model trained on our engine, over the loaded base model. */
export class EngineRewardModel {
  readonly info: RewardModelInfo;
  readonly #step: TrainStep;

  constructor(gpu: Gpu, readonly base: LoadedModel<LoraBank>, private readonly tok: TextTokenizer, private readonly eosId: number, reward: RewardAdapter, label: string, readonly maxTokens = 512) {
    if (reward.head.length !== base.config.hiddenSize) {
      throw new AdapterError(`${label}: the score head has ${reward.head.length} inputs but the loaded model's hidden size is ${base.config.hiddenSize}: it was trained on another base model.`);
    }
    const a = reward.adapter;
    const scalings = new Set([...a.modules.values()].map((m) => m.scaling));
    const ranks = new Set([...a.modules.values()].map((m) => m.rank));
    if (scalings.size !== 1 || ranks.size !== 1) throw new AdapterError(`${label}: its modules have different ranks or scalings (rank_pattern / alpha_pattern); LoRA Lab scores reward models with one rank and alpha.`);
    const rank = [...ranks][0];
    // The trainer's step, forward only: scaling alpha / rank must reproduce the modules' scaling.
    const tc = { ...DEFAULT_TRAIN_CONFIG, rank, alpha: [...scalings][0] * rank, useRslora: false, dropout: 0, targetModules: [...new Set([...a.modules.values()].map((m) => m.module))] };
    // Its own name in the bank (the same adapter may be loaded for generation too); the weights are only read.
    const scoring: LoraAdapter = { ...a, name: `reward:${label}` };
    this.#step = new TrainStep(gpu, base, scoring, tc, { batch: SCORE_BATCH, seqLen: maxTokens }, reward.head);
    this.info = { label, runtime: 'lora-lab', provider: 'webgpu', maxTokens, inputs: ['input_ids'] };
  }

  async score(question: string, answer: string): Promise<RewardScore> {
    if (!question.trim() && !answer.trim()) throw new InvalidArgumentError('There is nothing to score: the question and answer are empty.');
    const { ids, truncated } = rewardIds(this.tok, question, answer, this.maxTokens, this.eosId);
    return { score: await this.scoreIds(ids), tokens: ids.length, truncated };
  }

  async scoreIds(ids: number[]): Promise<number> {
    const T = lengthBucket(ids.length, this.maxTokens);
    const tokens = new Uint32Array(SCORE_BATCH * T);
    tokens.set(ids.slice(0, T));
    const ends = new Uint32Array(SCORE_BATCH).fill(MASKED);
    ends[0] = Math.min(ids.length, T) - 1;
    const r = await this.#step.rewardMicro({ tokens, ends }, 0, 0, false);
    return r.rewards[0];
  }

  async dispose(): Promise<void> {
    this.#step.destroy();
  }
}
