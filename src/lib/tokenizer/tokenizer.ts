// Text <-> token ids through @huggingface/tokenizers (tokenizer.json + tokenizer_config.json), and prompt
// formatting: the model's own chat template rendered with @huggingface/jinja, or the Alpaca template.

import { Template } from '@huggingface/jinja';
import { renderBounded } from './chat-template.js';
import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from '../errors.js';
import type { ModelFiles } from '../model-files.js';
import { readJson } from '../model-files.js';
import { alpacaPrompt } from './alpaca.js';

/** The template itself failed on the messages (not a step or time limit): another arrangement may render. */
class TemplateFailure extends Error {
  constructor(readonly error: TokenizerError) { super(error.message); }
}

/** Extra variables a chat template may read, as apply_chat_template passes its keyword arguments (enable_thinking). */
export interface TemplateVariables { enable_thinking?: boolean }

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type PromptFormat = 'chat' | 'alpaca' | 'raw';

function tokenText(t: unknown): string | null {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof (t as { content?: unknown }).content === 'string') return (t as { content: string }).content;
  return null;
}

export class TextTokenizer {
  readonly #tok: Tokenizer;
  readonly chatTemplate: string | null;
  readonly #template: Template | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Ids of the tokenizer's EOS token and chat end-of-turn tokens (added to the model's EOS ids). */
  readonly eosTokenIds: number[];

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown>, chatTemplate: string | null) {
    try {
      this.#tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json could not be read (${(e as Error).message}). Check that the file is complete.`);
    }
    const tpl = tokenizerConfig.chat_template;
    this.chatTemplate = chatTemplate ?? (typeof tpl === 'string' ? tpl : null);
    try {
      this.#template = this.chatTemplate ? new Template(this.chatTemplate) : null;
    } catch (e) {
      throw new TokenizerError(`The chat template could not be parsed (${(e as Error).message}). Fix chat_template in tokenizer_config.json (or chat_template.jinja), or use the Alpaca or raw prompt format.`);
    }
    this.bosToken = tokenText(tokenizerConfig.bos_token);
    this.eosToken = tokenText(tokenizerConfig.eos_token);
    const eos = new Set<number>();
    for (const t of [this.eosToken, '<|im_end|>', '<|eot_id|>', '<|endoftext|>']) {
      const id = t ? this.#tok.token_to_id(t) : undefined;
      if (id !== undefined && (t === this.eosToken || this.chatTemplate?.includes(t!))) eos.add(id);
    }
    this.eosTokenIds = [...eos];
  }

  /** `fallback`: a tokenizer to use when the files have no tokenizer.json (a GGUF model's, from its metadata). */
  static async fromFiles(files: ModelFiles, fallback?: { rebuild: () => { json: Record<string, unknown>; config: Record<string, unknown> }; config: Record<string, unknown> }): Promise<TextTokenizer> {
    const json = await readJson(files, 'tokenizer.json', true);
    if (!json && fallback) {
      const rebuilt = fallback.rebuild();
      return new TextTokenizer(rebuilt.json, rebuilt.config, null);
    }
    if (!json) {
      throw new TokenizerError(`${files.label} has no tokenizer.json. LoRA Lab reads fast-tokenizer files only: save the tokenizer with transformers (tokenizer.save_pretrained) to create one.`);
    }
    // A GGUF model with a bare tokenizer.json beside it: the chat template and special tokens come from its metadata.
    const cfg = (await readJson(files, 'tokenizer_config.json', true)) ?? fallback?.config ?? {};
    const jinja = await files.bytes('chat_template.jinja', true);
    return new TextTokenizer(json, cfg, jinja ? new TextDecoder().decode(jinja) : null);
  }

  /** One past the largest token id, added tokens included: the embedding rows the model needs. */
  get vocabSize(): number {
    let max = -1;
    for (const id of this.#tok.get_vocab(true).values()) if (id > max) max = id;
    return max + 1;
  }

  encode(text: string, addSpecialTokens = true): number[] {
    return this.#tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    if (ids.length === 0) return '';
    return this.#tok.decode(ids, { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  /** The template reads enable_thinking (Qwen3): the model thinks in <think>…</think> first unless told not to. */
  get thinkingSwitch(): boolean {
    return /\benable_thinking\b/.test(this.chatTemplate ?? '');
  }

  /**
   * Renders messages with the model's chat template (as transformers' apply_chat_template does). A template that
   * refuses a system message (Gemma 2's raises "System role not supported") gets it folded into the first user turn,
   * as Gemma 3's template folds it itself: the system text, a blank line, then the user's.
   */
  renderChat(messages: ChatMessage[], addGenerationPrompt = true, variables: TemplateVariables = {}): string {
    try {
      return this.#render(messages, addGenerationPrompt, variables);
    } catch (e) {
      const [first, second, ...rest] = messages;
      if (!(e instanceof TemplateFailure) || first?.role !== 'system' || second?.role !== 'user') throw e instanceof TemplateFailure ? e.error : e;
      try {
        return this.#render([{ role: 'user', content: `${first.content}\n\n${second.content}` }, ...rest], addGenerationPrompt, variables);
      } catch {
        throw e.error;
      }
    }
  }

  #render(messages: ChatMessage[], addGenerationPrompt: boolean, variables: TemplateVariables): string {
    if (!this.#template) throw new TokenizerError('This model has no chat template; use the Alpaca or raw prompt format.');
    let text: unknown;
    try {
      text = renderBounded(this.#template, {
        ...variables,
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
      });
    } catch (e) {
      if (e instanceof TokenizerError) throw e;
      // Templates may raise on purpose (raise_exception) or fail on input they do not expect.
      throw new TemplateFailure(new TokenizerError(`The model's chat template failed on these messages (${(e as Error).message}). Check the roles and their order, or use the Alpaca or raw prompt format.`));
    }
    if (typeof text !== 'string') throw new TokenizerError('The chat template did not produce text: check chat_template in tokenizer_config.json.');
    return text;
  }

  /**
   * Token ids for a user prompt. 'chat' uses the chat template (falling back to Alpaca when the model has none),
   * 'alpaca' the Alpaca template, 'raw' the text as is. Templates that write their own BOS are not given another.
   */
  promptIds(text: string, format: PromptFormat, input = ''): number[] {
    if (format === 'chat' && this.#template) {
      return this.encode(this.renderChat([{ role: 'user', content: text }]), false);
    }
    if (format === 'raw') return this.encode(text, true);
    return this.encode(alpacaPrompt(text, input), true);
  }
}
