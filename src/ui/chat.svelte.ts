// The chat's state: kept conversations (IndexedDB), the open one, the draft, and the answer streaming in. Sending,
// regenerating and editing a user turn all come down to one thing: the turns up to a user message go to the engine
// and the answer is appended. Every change is saved as it happens, so a reload or a closed tab loses nothing.

import { LabStore } from '../lib/store/kept.js';
import { chatMessages, conversationJson, newConversation, titleFrom, type AnswerVersion, type Conversation, type Turn } from '../lib/chat/conversation.js';
import { BUILTIN_ADAPTERS, BUILTIN_MODEL_ID, type ModelSource } from '../lib/hub/source.js';
import type { ChatResult } from '../lib/engine.js';
import type { EngineState } from './engine.svelte.ts';
import { CONVERSATION_DELETED } from './storage.svelte.ts';

export interface ChatError {
  name: string;
  message: string;
  /** A context overflow that dropping the oldest turns would fix. */
  canDrop: boolean;
}

export class ChatState {
  list = $state.raw<Conversation[]>([]);
  current = $state<Conversation>(newConversation());
  /** The answer streaming in (not yet a turn), and the last turn's result. */
  streaming = $state<string | null>(null);
  /** Live figures of the answer streaming in: tokens so far, when the request went and when the first token came. */
  live = $state<{ tokens: number; sentAt: number; firstAt: number | null; at: number } | null>(null);
  last = $state.raw<ChatResult | null>(null);
  error = $state.raw<ChatError | null>(null);
  /** IndexedDB is missing (some private windows): conversations live until the tab closes. */
  unkept = $state(false);
  #store: LabStore | null = null;

  constructor(private readonly engine: EngineState) {}

  /** The composer's text: the engine's draft, which a link can fill and which survives switching views. */
  get draft(): string { return this.engine.draft; }
  set draft(v: string) { this.engine.draft = v; }

  get busy(): boolean {
    return this.streaming !== null;
  }

  async init(): Promise<void> {
    // A conversation deleted on the Storage page goes from the list, and from view when it was open (never saved back).
    addEventListener(CONVERSATION_DELETED, (e) => {
      const id = (e as CustomEvent<string>).detail;
      this.list = this.list.filter((x) => x.id !== id);
      if (this.current.id === id) this.current = this.list[0] ? structuredClone(this.list[0]) : newConversation(Date.now(), $state.snapshot(this.current) as Conversation);
    });
    try {
      this.#store = new LabStore();
      this.list = await this.#store.listConversations();
      if (this.list[0]) this.current = structuredClone(this.list[0]);
    } catch {
      this.#store = null;
      this.unkept = true;
    }
  }

  async #save(): Promise<void> {
    const c = $state.snapshot(this.current) as Conversation;
    c.updatedAt = Date.now();
    this.current.updatedAt = c.updatedAt;
    this.list = [c, ...this.list.filter((x) => x.id !== c.id)];
    try {
      await this.#store?.putConversation(c);
    } catch (e) {
      this.error = { name: (e as Error).name, message: `This conversation could not be kept: ${(e as Error).message}`, canDrop: false };
    }
  }

  newChat(): void {
    if (this.busy) return;
    // A new chat starts with the settings of the one before: the model, adapter and sampling a person chose.
    // The draft stays: a message typed (or given by a link) before "New chat" is not lost.
    this.current = newConversation(Date.now(), $state.snapshot(this.current) as Conversation);
    this.error = null;
    this.last = null;
  }

  open(id: string): void {
    const c = this.list.find((x) => x.id === id);
    if (!c || this.busy) return;
    this.current = structuredClone(c);
    this.error = null;
    this.last = null;
  }

  async rename(id: string, title: string): Promise<void> {
    const t = title.trim();
    if (!t) return;
    if (this.current.id === id) {
      this.current.title = t;
      await this.#save();
    } else {
      const c = this.list.find((x) => x.id === id);
      if (!c) return;
      const renamed = { ...c, title: t };
      this.list = this.list.map((x) => (x.id === id ? renamed : x));
      await this.#store?.putConversation(renamed);
    }
  }

  async remove(id: string): Promise<void> {
    this.list = this.list.filter((x) => x.id !== id);
    await this.#store?.deleteConversation(id);
    if (this.current.id === id) this.current = this.list[0] ? structuredClone(this.list[0]) : newConversation(Date.now(), $state.snapshot(this.current) as Conversation);
  }

  exportJson(id = this.current.id): { name: string; blob: Blob } {
    const c = id === this.current.id ? ($state.snapshot(this.current) as Conversation) : this.list.find((x) => x.id === id)!;
    const safe = c.title.replace(/[^\p{L}\p{N}._-]+/gu, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'conversation';
    return { name: `${safe}.json`, blob: new Blob([conversationJson(c)], { type: 'application/json' }) };
  }

  /**
   * Sends the draft as a new user turn, as a transaction: when no answer comes (the engine refused the message, or
   * failed), the turn is taken back and the text returns to the input, with the reason beside it, to edit and send.
   */
  async send(): Promise<void> {
    const text = this.draft.trim();
    if (!text || this.busy || !this.engine.canAnswer || this.adapterMissing) return;
    const c = this.current;
    const title = c.title;
    c.turns.push({ role: 'user', content: text });
    if (c.turns.length === 1) c.title = titleFrom(text);
    this.draft = '';
    await this.#save();
    if (await this.#answer()) return;
    if (!this.error) return; // stopped before the first token: the message stays, answerable (Answer) or removable
    const turns = this.current.turns;
    if (turns[turns.length - 1]?.role === 'user' && turns[turns.length - 1].content === text) turns.pop();
    if (turns.length === 0) this.current.title = title;
    if (!this.draft.trim()) this.draft = text;
    await this.#save();
  }

  /**
   * Answers the last user message again. The answer shown before is kept as a version beside the new one (‹ 1/2 ›), and
   * the new one is drawn with a seed of its own unless the chat fixes its seed. When no answer comes, the old one is
   * put back.
   */
  async regenerate(): Promise<void> {
    if (this.busy || this.adapterMissing) return;
    const turns = this.current.turns;
    const old = turns[turns.length - 1]?.role === 'assistant' ? turns.pop()! : null;
    if (turns[turns.length - 1]?.role !== 'user') {
      if (old) turns.push(old);
      return;
    }
    const versions = old ? old.versions ?? [{ content: old.content, stats: old.stats }] : [];
    await this.#save();
    if (!(await this.#answer(versions)) && old) {
      this.current.turns.push(old);
      await this.#save();
    }
  }

  /** Shows version `v` of the answer at `index` (one of the answers Regenerate drew). */
  async showVersion(index: number, v: number): Promise<void> {
    const t = this.current.turns[index];
    const version = t?.versions?.[v];
    if (!version || this.busy) return;
    t.content = version.content;
    t.stats = version.stats;
    t.shown = v;
    await this.#save();
  }

  /** The chat's adapter is set but not on the shelf: Send waits until it is loaded, or the chat uses the base. */
  get adapterMissing(): string | null {
    const a = this.current.adapter;
    return a && !this.engine.shelf.adapters.some((x) => x.name === a) ? a : null;
  }

  /** Where the missing adapter can be loaded from: the built-in set, or what this browser keeps; null when nowhere. */
  adapterSource(name: string): ModelSource | null {
    if (this.engine.info?.modelId === BUILTIN_MODEL_ID && name in BUILTIN_ADAPTERS) return { kind: 'builtin', name };
    if ((this.engine.storage.listing?.adapters ?? []).some((k) => k.kind !== 'reward' && k.name === name)) return { kind: 'kept', name };
    return null;
  }

  readonly #tried = new Set<string>();
  /**
   * A reopened chat's adapter is loaded when it can be (once per adapter and model: a load that failed says why on the
   * shelf, and Send stays disabled with "Load it / Use the base").
   */
  async restoreAdapter(): Promise<void> {
    const name = this.adapterMissing;
    if (!name || !this.engine.canAnswer || this.engine.shelf.busy) return;
    const source = this.adapterSource(name);
    const key = `${this.engine.info?.modelId}/${name}`;
    if (!source || this.#tried.has(key)) return;
    this.#tried.add(key);
    await this.engine.shelf.load(source, name);
  }

  /** The chat goes on with the base model (its adapter cannot be loaded). */
  async useBase(): Promise<void> {
    this.current.adapter = null;
    await this.#save();
  }

  /** Replaces user turn `index` with new text, drops everything after it, and answers it. */
  async editAndResend(index: number, text: string): Promise<void> {
    const t = this.current.turns[index];
    if (!t || t.role !== 'user' || !text.trim() || this.busy) return;
    this.current.turns = [...this.current.turns.slice(0, index), { role: 'user', content: text.trim() }];
    if (index === 0) this.current.title = titleFrom(text);
    await this.#save();
    await this.#answer();
  }

  /** Deletes an exchange: the user turn at or before `index` and its answer (turns keep alternating). */
  async deleteTurn(index: number): Promise<void> {
    const turns = this.current.turns;
    if (this.busy || !turns[index]) return;
    const start = turns[index].role === 'user' ? index : index - 1;
    const n = turns[start + 1]?.role === 'assistant' ? 2 : 1;
    this.current.turns = [...turns.slice(0, start), ...turns.slice(start + n)];
    await this.#save();
  }

  /** After a context overflow: drop the oldest turns from now on, and answer (the message taken back, sent again). */
  async dropOldestAndRetry(): Promise<void> {
    this.current.overflow = 'drop-oldest';
    await this.#save();
    const turns = this.current.turns;
    if (turns[turns.length - 1]?.role === 'user') await this.#answer();
    else await this.send();
  }

  stop(): void {
    if (this.busy) this.engine.generation.stop();
  }

  /** Answers the last user turn; true when an answer was added. `versions`: earlier answers to keep beside it. */
  async #answer(versions: AnswerVersion[] = []): Promise<boolean> {
    const c = this.current;
    const info = this.engine.info;
    if (!info) return false;
    if (this.adapterMissing) {
      this.error = { name: 'AdapterError', message: `${this.adapterMissing} is not loaded: load it on the adapter shelf, or use the base model.`, canDrop: false };
      return false;
    }
    this.error = null;
    this.streaming = '';
    this.live = { tokens: 0, sentAt: performance.now(), firstAt: null, at: performance.now() };
    try {
      const { temperature, topK, topP, repetitionPenalty, maxNewTokens } = c.settings;
      // Each answer draws its own seed unless the chat fixes one: the n-th answer to the message at turn t samples with
      // seed + t + 65537 n, so Regenerate gives another answer, and the same settings replay the same conversation.
      // The seed is kept in the answer's stats.
      const seed = c.settings.fixedSeed ? c.settings.seed : (c.settings.seed + c.turns.length + 65537 * versions.length) >>> 0;
      const adapter = c.adapter;
      const r = await this.engine.generation.chat({
        messages: chatMessages($state.snapshot(c) as Conversation),
        adapter, adapterScale: c.strength,
        sampling: { temperature, topK, topP, repetitionPenalty, seed },
        maxNewTokens, overflow: c.overflow,
        ...(this.engine.info?.thinkingSwitch && c.settings.thinking !== undefined ? { thinking: c.settings.thinking } : {}),
      }, (text) => {
        this.streaming = (this.streaming ?? '') + text;
        const l = this.live!;
        const at = performance.now();
        this.live = { ...l, tokens: l.tokens + 1, firstAt: l.firstAt ?? at, at };
      });
      const turn: Turn = {
        role: 'assistant', content: r.text,
        stats: {
          model: info.modelId, adapter, strength: c.strength, tokens: r.tokens.length,
          decodeTokensPerSecond: r.decodeTokensPerSecond, timeToFirstTokenMs: r.timeToFirstTokenMs,
          prefilledTokens: r.prefilledTokens, reusedTokens: r.reusedTokens,
          contextUsed: r.contextUsed, contextLength: r.contextLength, stopReason: r.stopReason, singleTurn: r.singleTurn, seed,
        },
      };
      c.model = info.modelId;
      this.last = r;
      if (!r.text && r.stopReason === 'aborted') return false;
      if (versions.length) {
        turn.versions = [...versions, { content: turn.content, stats: turn.stats }];
        turn.shown = versions.length;
      }
      c.turns.push(turn);
      return true;
    } catch (e) {
      const err = e as Error & { details?: { canDrop?: unknown } };
      this.error = { name: err.name, message: err.message, canDrop: err.details?.canDrop === true };
      return false;
    } finally {
      this.streaming = null;
      this.live = null;
      await this.#save();
    }
  }
}
