// Prefill then cached decode, for one sequence or several "columns" decoded as one batch over the shared base
// weights, each column with its own LoRA adapter (or none) and strength, the same prompt, settings and seed.
// Columns with the same adapter and strength share one prefill (its KV cache is copied); each decode step is one
// forward for all live columns: one submit and one readback of their candidates.

import { ContextOverflowError, InvalidArgumentError, NonFiniteError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { Candidates, ModelRunner } from './runner.js';
import { sampleToken, validateSampling, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  eosTokenIds: readonly number[];
  /**
   * The first `cachedTokens` tokens of the (single, shared) prompt are already in the KV slot of the (single) column,
   * from an earlier call: only the rest is prefilled. A chat's follow-up turn runs this way.
   */
  cachedTokens?: number;
  /**
   * Interactive generation (chat, compare): the prompt's prefill takes the runner's quick steps (StepInput.quick) when
   * it has at most QUICK_START_ROWS new rows and QUICK_START_BYTES of weight reads, and the kernels they skipped are
   * compiled after the answer. Decoding never does. Off for evaluation and scoring, whose numbers must not depend on
   * what was compiled when.
   */
  quickStart?: boolean;
}

/**
 * Most new prompt rows a quick start prefills on the one-row kernels (one forward's), and most weight bytes those rows
 * stream (each row reads every layer's weights once). Past either the many-row kernels' compile costs less than the rows
 * cost without them: on lavapipe at SmolLM2-135M shapes (f16, 0.27 GB of layer weights) a row took about 75 ms more on
 * the one-row kernels while skipping the many-row compiles saved about 4.5 s, so 32 rows paid and 64 broke even
 * (`npm run bench -- --only cold --prompt-tokens 32|64`).
 */
export const QUICK_START_ROWS = 64;
export const QUICK_START_BYTES = 12 * 2 ** 30;

/** What a column's rows go through: the base model (no adapter, or strength 0) or an adapter at a strength. */
const adapterKey = (c: Column): string => (c.loraSlot === 0 || c.strength === 0 ? 'base' : `${c.loraSlot}@${c.strength}`);

/** How a prefill runs: what stops it, and whether it takes quick steps (StepInput.quick). */
export interface PrefillOptions {
  signal?: AbortSignal;
  quick?: boolean;
}

export interface Column {
  /** LoRA slot in the runner's bank (0: base model). */
  loraSlot: number;
  /** Adapter strength multiplier (0..2). */
  strength: number;
  /** Polled before each token: true ends this column alone ('aborted'), the others go on (Compare's per-column stop). */
  stopped?: () => boolean;
  /** This column's sampling seed (default: the request's). Columns with one seed sample alike where their logits agree
   * (a comparison); best-of-n gives each sample its own. */
  seed?: number;
}

export interface TokenEvent {
  column: number;
  token: number;
  /** Index of the token among the column's generated ones. */
  index: number;
  /** The token's logit (after the repetition penalty, before the temperature) and the log-sum-exp it was drawn with. */
  logit: number;
  lse: number;
}

export interface GenerateTimings {
  prefillMs: number;
  decodeMs: number;
  promptTokens: number;
  generatedTokens: number;
  /** Decode tokens/s of this column over the steps after its first token. */
  decodeTokensPerSecond: number;
  timeToFirstTokenMs: number;
  stopReason: 'eos' | 'length' | 'stop' | 'aborted';
  /** Prefill steps of this call that ran a one-row kernel in place of one not compiled yet (quickStart). */
  quickSteps: number;
}

const now = () => performance.now();

function validate(runner: ModelRunner, prompts: number[][], opts: GenerateOptions, columns: Column[]): void {
  for (const p of prompts) validatePrompt(runner, p, opts, columns);
}

function validatePrompt(runner: ModelRunner, prompt: number[], opts: GenerateOptions, columns: Column[]): void {
  validateSampling(opts);
  if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 1)) {
    throw new InvalidArgumentError(`max_new_tokens ${opts.maxNewTokens} is invalid: make sure it is a positive integer`);
  }
  if (prompt.length === 0) throw new InvalidArgumentError('The prompt is empty: type something, or pass --prompt-ids.');
  const V = runner.cfg.vocabSize;
  const bad = prompt.find((t) => !(Number.isInteger(t) && t >= 0 && t < V));
  if (bad !== undefined) throw new InvalidArgumentError(`prompt token id ${bad} is outside the vocabulary: make sure every id is an integer in 0..${V - 1}.`, { token: bad });
  if (columns.length < 1 || columns.length > runner.opts.slots) {
    throw new InvalidArgumentError(`${columns.length} columns asked for, but this model was loaded with room for ${runner.opts.slots}: make sure there are 1..${runner.opts.slots}.`);
  }
  for (const c of columns) {
    if (!(c.strength >= 0 && c.strength <= 2)) throw new InvalidArgumentError(`adapter strength ${c.strength} is invalid: make sure 0 <= strength <= 2`);
  }
  const C = runner.opts.contextLength;
  if (prompt.length + opts.maxNewTokens > C) {
    throw new ContextOverflowError(
      `The prompt (${prompt.length} tokens) plus ${opts.maxNewTokens} new tokens exceed the context of ${C} tokens. ` +
        (prompt.length < C
          ? `Shorten the prompt or ask for at most ${C - prompt.length} new tokens.`
          : `The prompt alone does not fit: shorten it by at least ${prompt.length - C + 1} tokens.`),
      { promptTokens: prompt.length, maxNewTokens: opts.maxNewTokens, context: C },
    );
  }
}

/**
 * A forward whose logits hold NaN or Inf has no next token: the top-k finds no candidate (id -1) or the log-sum-exp
 * is not finite. That is an error of the weights or the adapter, said as such, never a token id of -1.
 */
function checkFinite(c: Candidates, column: number, index: number, col: Column): void {
  if (Number.isFinite(c.lse) && c.ids[0] >= 0 && Number.isFinite(c.logits[0])) return;
  throw new NonFiniteError(
    `The model produced non-finite logits (NaN or Inf) for generated token ${index + 1}${col.loraSlot ? ` through the adapter in column ${column + 1} at strength ${col.strength}` : ''}. ` +
      'The weights or the adapter overflow in float32: check them (a diverged training run, a huge lora_alpha), or try the base model.',
    { column, index, lse: String(c.lse) },
  );
}

/**
 * Generates for every column; column i uses KV slot i. All columns share one prompt, or (an array of prompts, one per
 * column) each has its own: several prompts in flight at once, as an evaluation runs them. `onToken` may return true
 * to stop that column (a stop string). Returns one timing record per column.
 */
export async function generateColumns(
  runner: ModelRunner, prompt: number[] | number[][], columns: Column[], opts: GenerateOptions,
  onToken: (e: TokenEvent) => boolean | void, signal?: AbortSignal,
): Promise<GenerateTimings[]> {
  const perColumn = Array.isArray(prompt[0]);
  const prompts = perColumn ? (prompt as number[][]) : columns.map(() => prompt as number[]);
  if (prompts.length !== columns.length) throw new InvalidArgumentError(`${prompts.length} prompts for ${columns.length} columns: give one per column.`);
  validate(runner, perColumn ? prompts : [prompts[0] ?? []], opts, columns);
  const eos = new Set(opts.eosTokenIds);
  runner.setSampling(opts.repetitionPenalty, opts.temperature);
  columns.forEach((_, i) => runner.resetSeen(i, opts.repetitionPenalty !== 1 ? prompts[i] : []));

  const t0 = now();
  const quickBefore = runner.stats.quickSteps;
  const cached = opts.cachedTokens ?? 0;
  if (cached > 0 && (perColumn || columns.length !== 1 || cached >= prompts[0].length)) {
    throw new InvalidArgumentError(`cachedTokens ${cached} needs one column and a prompt longer than the cached part (${prompts[0].length} tokens).`);
  }
  // Rows the prefill computes: each group's new prompt rows (columns with one prompt and adapter share a prefill).
  const groupRows = new Map(columns.map((c, i) => [`${perColumn ? prompts[i].join(',') : ''}|${adapterKey(c)}`, prompts[i].length - cached]));
  const newRows = [...groupRows.values()].reduce((t, r) => t + r, 0);
  const quick = opts.quickStart === true && newRows <= QUICK_START_ROWS && newRows * runner.layerWeightBytes <= QUICK_START_BYTES;
  const pre = perColumn ? await prefillEach(runner, prompts, columns, { signal, quick }) : await prefillColumns(runner, prompts[0], columns, { signal, from: cached, quick });
  if (!pre) {
    // Stopped during the prefill: nothing generated, which is an answer, not an error.
    const ms = now() - t0;
    return columns.map((_, i) => ({ prefillMs: ms, decodeMs: 0, promptTokens: prompts[i].length, generatedTokens: 0, decodeTokensPerSecond: 0, timeToFirstTokenMs: 0, stopReason: 'aborted' as const, quickSteps: runner.stats.quickSteps - quickBefore }));
  }
  const prefillMs = now() - t0;

  const state = columns.map((_, i) => ({
    rng: new Rng(columns[i].seed ?? opts.seed),
    cands: pre[i],
    n: 0,
    firstAt: 0,
    endAt: 0,
    stop: null as GenerateTimings['stopReason'] | null,
  }));
  const tDecode = now();
  let step = 0;
  for (;;) {
    const live: { col: number; token: number }[] = [];
    for (let i = 0; i < columns.length; i++) {
      const s = state[i];
      if (s.stop) continue;
      checkFinite(s.cands, i, s.n, columns[i]);
      const token = sampleToken(s.cands, opts, s.rng, runner.cfg.vocabSize);
      if (s.n === 0) s.firstAt = now();
      s.n++;
      const k = s.cands.ids.indexOf(token);
      const stopString = onToken({ column: i, token, index: s.n - 1, logit: k >= 0 ? s.cands.logits[k] : NaN, lse: s.cands.lse });
      if (eos.has(token)) s.stop = 'eos';
      else if (stopString) s.stop = 'stop';
      else if (s.n >= opts.maxNewTokens) s.stop = 'length';
      else if (signal?.aborted || columns[i].stopped?.()) s.stop = 'aborted';
      if (s.stop) { s.endAt = now(); continue; }
      if (opts.repetitionPenalty !== 1) runner.markSeen(i, token);
      live.push({ col: i, token });
    }
    if (live.length === 0) break;
    let cands: Candidates[];
    try {
      cands = await runner.forward({
        tokens: live.map((l) => l.token),
        slots: live.map((l) => l.col),
        positions: live.map((l) => prompts[l.col].length + step),
        loraSlots: live.map((l) => columns[l.col].loraSlot),
        loraScales: live.map((l) => columns[l.col].strength),
        // Never quick: a step of several columns on the one-row kernels reads the weights once per column, every step.
        seqs: live.length, lastStride: 1, lastOffset: 0,
      });
    } catch (e) {
      if (!signal?.aborted) throw e;
      for (const l of live) { state[l.col].stop = 'aborted'; state[l.col].endAt = now(); }
      break;
    }
    live.forEach((l, j) => { state[l.col].cands = cands[j]; });
    step++;
  }
  const decodeMs = now() - tDecode;
  return state.map((s, i) => ({
    prefillMs,
    decodeMs,
    promptTokens: prompts[i].length,
    generatedTokens: s.n,
    decodeTokensPerSecond: s.n > 1 ? (s.n - 1) / ((s.endAt - s.firstAt) / 1000) : 0,
    timeToFirstTokenMs: s.firstAt - t0,
    stopReason: s.stop ?? 'length',
    quickSteps: runner.stats.quickSteps - quickBefore,
  }));
}

/**
 * Prefills `prompt` into KV slot i for every column i: one prefill per distinct (adapter, strength), in chunks whose
 * forwards hold every group's rows; columns of a group get its KV cache copied. Positions before `from` are already
 * in the slots. Returns each column's candidates for the token after the prompt (with the logit of `target` when
 * given), or null when stopped.
 */
export async function prefillColumns(
  runner: ModelRunner, prompt: number[], columns: Column[],
  { signal, target, slots = columns.map((_, i) => i), from = 0, quick }: PrefillOptions & { target?: number; slots?: number[]; from?: number } = {},
): Promise<Candidates[] | null> {
  const groupOf = new Map<string, number[]>();
  columns.forEach((c, i) => {
    const key = adapterKey(c);
    groupOf.set(key, [...(groupOf.get(key) ?? []), i]);
  });
  const groups = [...groupOf.values()];
  const T = prompt.length;
  const chunk = Math.max(1, Math.floor(runner.opts.maxRows / groups.length));
  let last: Candidates[] = [];
  for (let start = from; start < T; start += chunk) {
    if (signal?.aborted) return null;
    const len = Math.min(chunk, T - start);
    const rows = groups.flatMap((g) => Array.from({ length: len }, (_, i) => ({ col: g[0], pos: start + i })));
    const input = {
      tokens: rows.map((r) => prompt[r.pos]),
      slots: rows.map((r) => slots[r.col]),
      positions: rows.map((r) => r.pos),
      loraSlots: rows.map((r) => columns[r.col].loraSlot),
      loraScales: rows.map((r) => columns[r.col].strength),
      seqs: groups.length, lastStride: len, lastOffset: len - 1, quick,
    };
    // Chunks before the last only fill the KV cache: queued one after another, no logits, no readback between them.
    if (start + len < T) await runner.fill(input);
    else last = await runner.forward({ ...input, targets: target !== undefined ? groups.map(() => target) : undefined });
  }
  for (const g of groups) for (const c of g.slice(1)) runner.copySlot(slots[g[0]], slots[c], T);
  return columns.map((_, i) => last[groups.findIndex((g) => g.includes(i))]);
}

/**
 * Prefills each column's own prompt into its KV slot (columns with the same prompt and adapter share a prefill), one
 * group at a time. Returns each column's candidates for its first new token (with the logit of `targets[i]` when
 * given), or null when stopped.
 */
export async function prefillEach(
  runner: ModelRunner, prompts: number[][], columns: Column[], { signal, targets, quick }: PrefillOptions & { targets?: number[] } = {},
): Promise<Candidates[] | null> {
  const groupOf = new Map<string, number[]>();
  columns.forEach((c, i) => {
    const key = `${prompts[i].join(',')}|${adapterKey(c)}|${targets?.[i] ?? ''}`;
    groupOf.set(key, [...(groupOf.get(key) ?? []), i]);
  });
  const out: Candidates[] = new Array(columns.length);
  for (const g of groupOf.values()) {
    const first = await prefillColumns(runner, prompts[g[0]], [columns[g[0]]], { signal, target: targets?.[g[0]], slots: [g[0]], quick });
    if (!first) return null;
    for (const c of g) {
      if (c !== g[0]) runner.copySlot(g[0], c, prompts[g[0]].length);
      out[c] = first[0];
    }
  }
  return out;
}

/** One sequence (KV slot 0), optionally through a LoRA adapter. */
export async function generate(
  runner: ModelRunner, prompt: number[], opts: GenerateOptions,
  onToken: (e: TokenEvent) => boolean | void, signal?: AbortSignal, column: Column = { loraSlot: 0, strength: 1 },
): Promise<GenerateTimings> {
  const [t] = await generateColumns(runner, prompt, [column], opts, onToken, signal);
  return t;
}
