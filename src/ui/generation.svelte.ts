// Generation as the Chat and Compare views run it: a chat turn streamed into its conversation, a comparison of
// columns (base and adapters) streamed token by token, best-of-n ranked by the reward model, and stopping them.

import type { ChatRequest, ChatResult, CompareColumn, GenerateRequest, GenerateResult } from '../lib/engine.js';
import type { Sample } from '../lib/reward/best-of.js';
import type { Ranked } from '../lib/reward/rank.js';
import type { KeptComparison } from '../lib/store/kept.js';
import type { Host } from './host.ts';

export interface CompareColumnState {
  spec: CompareColumn; tokens: number[]; pieces: string[]; result: GenerateResult | null; savedTokens?: number;
  /** Live timing: when the comparison was sent, when this column's first token and its latest came. */
  sentAt?: number; firstAt?: number; at?: number;
  /** The comparison ended in an error before this column finished: what the column shows instead of waiting. */
  failed?: string;
}

export class GenerationState {
  /** Comparison: one entry per column; pieces[i] is the text of token i. */
  columns = $state<CompareColumnState[]>([]);
  /** Best-of-n: each column's samples ranked by the reward model (replaces `columns` while shown). */
  ranked = $state.raw<{ specs: CompareColumn[]; columns: Ranked<Sample>[][]; rewardModel: string } | null>(null);
  bestOfProgress = $state.raw<{ done: number; total: number } | null>(null);
  #cancel: (() => void) | null = null;
  #stopColumn: ((column: number) => void) | null = null;

  constructor(private readonly host: Host) {}

  async compare(req: GenerateRequest, specs: CompareColumn[]): Promise<void> {
    if (!this.host.begin('compare')) return;
    this.host.clearError();
    this.ranked = null;
    const sentAt = performance.now();
    this.columns = specs.map((spec) => ({ spec, tokens: [], pieces: [], result: null, sentAt }));
    const job = this.host.client.compare(req, specs, (column, text, token) => {
      const c = this.columns[column];
      if (token >= 0) { c.tokens.push(token); c.pieces.push(text); } else if (c.pieces.length) c.pieces[c.pieces.length - 1] += text;
      c.at = performance.now();
      c.firstAt ??= c.at;
    });
    this.#cancel = job.cancel;
    this.#stopColumn = job.stopColumn;
    try {
      const results = await job.done;
      results.forEach((r, i) => { this.columns[i].result = r; });
      this.host.end('compare');
      // Every finished comparison is kept, to look at again later (Storage page), offline too.
      await this.host.client.request('saveComparison', {
        savedAt: Date.now(), model: this.host.info?.label ?? '', prompt: req.prompt ?? '', settings: { ...req.sampling, maxNewTokens: req.maxNewTokens, format: req.format },
        columns: results.map((r, i) => ({ adapter: specs[i].adapter, strength: specs[i].strength, text: r.text, tokens: r.tokens.length })),
      }).catch(() => {});
      this.host.keptChanged();
    } catch (e) {
      this.host.fail(e, 'compare');
      for (const c of this.columns) {
        if (!c.result) c.failed = c.tokens.length ? `ended by an error after ${c.tokens.length === 1 ? '1 token' : `${c.tokens.length} tokens`} (see above)` : 'not run: the comparison was refused (see above)';
      }
    } finally {
      this.host.end('compare');
      this.#cancel = null;
      this.#stopColumn = null;
    }
  }

  /** n samples per column, ranked by the loaded reward model: the paper's best-of-n, side by side. */
  async bestOf(req: GenerateRequest, specs: CompareColumn[], n: number): Promise<void> {
    if (!this.host.begin('bestOf')) return;
    this.host.clearError();
    this.columns = [];
    this.ranked = null;
    this.bestOfProgress = { done: 0, total: specs.length * n };
    const job = this.host.client.bestOf({ request: req, columns: specs, n }, (p) => { this.bestOfProgress = { done: p.done, total: p.total }; });
    this.#cancel = job.cancel;
    try {
      const r = await job.done;
      this.ranked = { specs, ...r };
    } catch (e) {
      this.host.fail(e, 'compare');
    } finally {
      this.#cancel = null;
      this.bestOfProgress = null;
      this.host.end('bestOf');
    }
  }

  /** Shows a kept comparison's columns in the Compare view, as they were. */
  showComparison(c: KeptComparison): void {
    this.columns = c.columns.map((col) => ({ spec: { adapter: col.adapter, strength: col.strength }, tokens: [], pieces: [col.text], result: null, savedTokens: col.tokens }));
  }

  stop(): void {
    this.#cancel?.();
  }

  /** Ends one column of the running comparison; the others go on. */
  stopColumn(column: number): void {
    this.#stopColumn?.(column);
  }

  /**
   * A chat turn: streams the answer's text to `onText`; resolves with the result, or throws the typed error (the
   * chat view shows it next to the conversation, and offers what to do for a context overflow).
   */
  async chat(req: ChatRequest, onText: (text: string) => void): Promise<ChatResult> {
    if (!this.host.begin('chat')) throw new Error('The model is busy: wait for it, or stop what it is doing.');
    this.host.clearError();
    this.host.announce('Answering…');
    const job = this.host.client.chat(req, (text) => onText(text));
    this.#cancel = job.cancel;
    try {
      const r = await job.done;
      this.host.announce(`Answer done: ${r.tokens.length} tokens.`);
      return r;
    } finally {
      this.#cancel = null;
      this.host.end('chat');
    }
  }
}

/** Index of the first token where the columns' outputs differ (a column that ended counts), or -1. */
export function firstDivergence(columns: { tokens: number[] }[]): number {
  if (columns.length < 2) return -1;
  const longest = Math.max(...columns.map((c) => c.tokens.length));
  for (let i = 0; i < longest; i++) {
    const t = columns[0].tokens[i];
    if (columns.some((c) => c.tokens[i] !== t)) return i;
  }
  return -1;
}
