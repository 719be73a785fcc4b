// A reward model on onnxruntime-web: an ONNX sequence classifier with one output logit and its tokenizer, in the
// layout transformers.js uses (onnx/model.onnx or model.onnx, tokenizer.json, config.json), from any ModelFiles
// source (hub snapshot, URL, local folder, cache). It scores an answer to a question: higher is better. The runtime is
// passed in (onnxruntime-web's WebGPU build in the browser, its Node build in the CLI), and the execution provider
// that actually ran is reported: WebGPU when it is asked for and works, else wasm.

import type * as Ort from 'onnxruntime-web';
import { FileFormatError, InvalidArgumentError, LoraLabError, NonFiniteError, UnsupportedModelError } from '../errors.js';
import type { ModelFiles } from '../model-files.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

export type OrtModule = Pick<typeof Ort, 'InferenceSession' | 'Tensor' | 'env'>;
export type Provider = 'webgpu' | 'wasm';

/** Where transformers.js looks for the ONNX file, in order. */
export const ONNX_PATHS = ['onnx/model.onnx', 'model.onnx'] as const;

export interface RewardModelInfo {
  label: string;
  /** onnxruntime-web (an ONNX classifier) or LoRA Lab's engine (a reward model trained here: LoRA + score head). */
  runtime: 'onnxruntime-web' | 'lora-lab';
  onnxPath?: string;
  provider: Provider;
  /** Why WebGPU was not used, when it was asked for. */
  fallbackReason?: string;
  maxTokens: number;
  inputs: string[];
}

export interface RewardScore {
  score: number;
  tokens: number;
  /** The text was longer than the model's positions: only its last `tokens` were scored. */
  truncated: boolean;
}

export class RewardModel {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly tokenizer: TextTokenizer,
    readonly info: RewardModelInfo,
  ) {}

  /** Loads and checks the model; `providers` in order of preference (WebGPU falls back to wasm, and says why). */
  static async load(ort: OrtModule, files: ModelFiles, providers: Provider[] = ['wasm']): Promise<RewardModel> {
    let onnxPath: string | undefined;
    let bytes: Uint8Array | null = null;
    for (const p of ONNX_PATHS) {
      bytes = await files.bytes(p, true);
      if (bytes) { onnxPath = p; break; }
    }
    if (!bytes || !onnxPath) throw new FileFormatError(`${files.label} has no ONNX model: a reward model needs onnx/model.onnx or model.onnx (export it with optimum: optimum-cli export onnx --task text-classification).`);
    const tokenizer = await TextTokenizer.fromFiles(files);
    const config = await files.bytes('config.json', true);
    let maxTokens = 512;
    if (config) {
      try {
        const c = JSON.parse(new TextDecoder().decode(config)) as Record<string, unknown>;
        const m = c.max_position_embeddings ?? c.n_positions;
        if (typeof m === 'number' && m > 0) maxTokens = m;
      } catch {
        throw new FileFormatError(`${files.label}/config.json is not valid JSON: download it again.`);
      }
    }
    let fallbackReason: string | undefined;
    let session: Ort.InferenceSession | null = null;
    let provider: Provider = 'wasm';
    for (const p of providers) {
      try {
        session = await ort.InferenceSession.create(bytes, { executionProviders: [p], graphOptimizationLevel: 'all', logId: files.label });
        provider = p;
        break;
      } catch (e) {
        if (e instanceof LoraLabError) throw e; // a time limit or a thread that died: said in our words already
        if (p === 'wasm' || p === providers[providers.length - 1]) throw new UnsupportedModelError(`onnxruntime-web cannot run ${files.label}/${onnxPath}: ${(e as Error).message}`);
        fallbackReason = (e as Error).message;
      }
    }
    const s = session!;
    if (s.outputNames.length !== 1) {
      throw new UnsupportedModelError(`${files.label} has ${s.outputNames.length} outputs (${s.outputNames.join(', ')}); a reward model has one: a logit per text.`, { outputs: s.outputNames });
    }
    const meta = s.outputMetadata?.[0];
    const last = meta && meta.isTensor ? meta.shape[meta.shape.length - 1] : undefined;
    if (typeof last === 'number' && last !== 1) {
      throw new UnsupportedModelError(`${files.label} outputs ${last} logits per text; a reward model outputs one (a classifier with ${last} labels is not a reward model).`, { labels: last });
    }
    if (!s.inputNames.includes('input_ids')) throw new UnsupportedModelError(`${files.label} has no input_ids input (it takes ${s.inputNames.join(', ')}): it is not a text classifier.`);
    return new RewardModel(ort, s, tokenizer, { label: files.label, runtime: 'onnxruntime-web', onnxPath, provider, fallbackReason, maxTokens, inputs: [...s.inputNames] });
  }

  /** The token ids scored for an answer to a question: the chat template's rendering when there is one. */
  ids(question: string, answer: string): { ids: number[]; truncated: boolean } {
    const t = this.tokenizer;
    const ids = t.chatTemplate
      ? t.encode(t.renderChat([{ role: 'user', content: question }, { role: 'assistant', content: answer }], false), false)
      : t.encode(`${question}\n\n${answer}`, true);
    if (ids.length === 0) throw new InvalidArgumentError('There is nothing to score: the question and answer are empty.');
    return ids.length > this.info.maxTokens ? { ids: ids.slice(ids.length - this.info.maxTokens), truncated: true } : { ids, truncated: false };
  }

  async score(question: string, answer: string): Promise<RewardScore> {
    const { ids, truncated } = this.ids(question, answer);
    return { score: await this.scoreIds(ids), tokens: ids.length, truncated };
  }

  /** The logit for one sequence of token ids. */
  async scoreIds(ids: number[]): Promise<number> {
    const { Tensor } = this.ort;
    const n = ids.length;
    const feeds: Record<string, Ort.Tensor> = {};
    for (const name of this.info.inputs) {
      if (name === 'input_ids') feeds[name] = new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]);
      else if (name === 'attention_mask') feeds[name] = new Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
      else if (name === 'token_type_ids') feeds[name] = new Tensor('int64', new BigInt64Array(n), [1, n]);
      else if (name === 'position_ids') feeds[name] = new Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]);
      else throw new UnsupportedModelError(`${this.info.label} needs an input "${name}" that LoRA Lab does not know how to fill.`);
    }
    let out: Ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      if (e instanceof LoraLabError) throw e; // a time limit or a thread that died: said in our words already
      // onnxruntime's own words ("failed to call OrtRun()", a type or shape it refused) say little about what to do.
      throw new UnsupportedModelError(`${this.info.label} could not score a text of ${n} tokens: onnxruntime refused its inputs (${(e as Error).message}). A reward model takes int64 input_ids (and attention_mask) of shape [1, tokens] and gives one logit; this one expects something else.`);
    }
    const logits = out[this.session.outputNames[0]];
    if (logits.data.length !== 1) throw new UnsupportedModelError(`${this.info.label} gave ${logits.data.length} values for one text; a reward model gives one.`);
    const score = Number(logits.data[0]);
    if (!Number.isFinite(score)) throw new NonFiniteError(`${this.info.label} gave ${score} as the score of a text of ${n} tokens: its weights or its graph are broken. Use another reward model.`, { tokens: n });
    return score;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
