// onnxruntime-web in a thread of its own, under a time limit. An ONNX graph is code from a model's files: a Loop of
// 10^12 iterations runs inside one synchronous wasm call that nothing can interrupt, so each session lives in a
// thread (a Web Worker in the browser, a worker_threads Worker in the CLI) and a run that outlasts the limit ends
// the thread and becomes a TimeLimitError (starting the thread and building the session have a limit of their own).
// The caller gets an OrtModule like onnxruntime-web's own, so RewardModel does not know where its session runs.
//
//   caller (engine worker / CLI)                     thread (serveOrt)
//   InferenceSession.create(bytes, options)  ──▶   ort.InferenceSession.create
//   session.run(feeds)  ── time limit ──────────▶   session.run  ──▶ outputs as plain arrays
//   session.release()                        ──▶   (the thread ends)

import type * as Ort from 'onnxruntime-web';
import { TimeLimitError, UnsupportedModelError } from '../errors.js';
import type { OrtModule } from './onnx-reward.js';

/** A tensor as it crosses the thread boundary: its element type, values and shape. */
interface WireTensor {
  type: Ort.Tensor.Type;
  data: Ort.Tensor.DataType;
  dims: readonly number[];
}

export type OrtRequest =
  | { id: number; op: 'create'; bytes: Uint8Array; options: Ort.InferenceSession.SessionOptions }
  | { id: number; op: 'run'; feeds: Record<string, WireTensor> };

interface SessionShape {
  inputNames: readonly string[];
  outputNames: readonly string[];
  outputMetadata: readonly Ort.InferenceSession.ValueMetadata[];
}

export type OrtReply =
  | { id: number; ok: true; session?: SessionShape; outputs?: Record<string, WireTensor> }
  | { id: number; ok: false; message: string };

/** The caller's handle on a thread: what a Web Worker and a worker_threads Worker have in common. */
export interface OrtThread {
  post(msg: OrtRequest): void;
  onMessage(fn: (reply: OrtReply) => void): void;
  /** The thread died (an abort in wasm, out of memory, a script that failed to load). */
  onError(fn: (message: string) => void): void;
  terminate(): void;
}

/** The thread's side: answers `create` once, then `run`s, with onnxruntime-web loaded there. */
export function serveOrt(ort: () => Promise<OrtModule>, reply: (r: OrtReply) => void): (req: OrtRequest) => Promise<void> {
  let session: Ort.InferenceSession | null = null;
  return async (req) => {
    try {
      const o = await ort();
      if (req.op === 'create') {
        session = await o.InferenceSession.create(req.bytes, req.options);
        reply({ id: req.id, ok: true, session: { inputNames: session.inputNames, outputNames: session.outputNames, outputMetadata: session.outputMetadata ?? [] } });
      } else {
        if (!session) throw new Error('no session was created in this thread');
        const feeds = Object.fromEntries(Object.entries(req.feeds).map(([k, t]) => [k, new o.Tensor(t.type as 'float32', t.data as Float32Array, t.dims)]));
        const out = await session.run(feeds);
        reply({ id: req.id, ok: true, outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { type: t.type, data: t.data, dims: t.dims }])) });
      }
    } catch (e) {
      reply({ id: req.id, ok: false, message: (e as Error)?.message ?? String(e) });
    }
  };
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(1)} s`;

/** One session in one thread; each request waits at most its limit, after which the thread is ended. */
class ThreadSession {
  #next = 1;
  readonly #pending = new Map<number, { resolve: (r: OrtReply) => void; reject: (e: Error) => void }>();
  #dead: Error | null = null;

  constructor(private readonly thread: OrtThread, private readonly label: string) {
    thread.onMessage((r) => {
      const p = this.#pending.get(r.id);
      this.#pending.delete(r.id);
      p?.resolve(r);
    });
    thread.onError((message) => this.#end(new UnsupportedModelError(`onnxruntime stopped while running ${label} (${message}): the model is broken or too large for this device. Use another reward model.`)));
  }

  #end(e: Error): void {
    if (this.#dead) return;
    this.#dead = e;
    this.thread.terminate();
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  async request(msg: OrtRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never, what: string, limitMs: number): Promise<OrtReply & { ok: true }> {
    if (this.#dead) throw this.#dead;
    const id = this.#next++;
    const reply = await new Promise<OrtReply>((resolve, reject) => {
      const timer = setTimeout(() => this.#end(new TimeLimitError(
        `${this.label} took longer than ${seconds(limitMs)} to ${what}, and was stopped: its graph loops or is far too large for a reward model. Use another reward model (or allow more time, lora-lab score --time-limit).`,
        { limitMs },
      )), limitMs);
      this.#pending.set(id, { resolve: (r) => { clearTimeout(timer); resolve(r); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      this.thread.post({ ...msg, id } as OrtRequest);
    });
    if (!reply.ok) throw new Error(reply.message);
    return reply;
  }

  release(): void {
    this.#end(new UnsupportedModelError(`${this.label} was released: load it again.`));
  }
}

/** Starting a thread and building a session (graph optimization included) may take this long on a slow machine. */
const LOAD_LIMIT_MS = 120_000;

/**
 * An OrtModule whose sessions each run in a thread from `spawn`, every run limited to `limitMs` (and the session's
 * creation to `loadLimitMs`). `local` gives the Tensor class the caller builds feeds with (the thread builds its own
 * from their values).
 */
export function threadedOrt(local: Pick<OrtModule, 'Tensor' | 'env'>, spawn: () => OrtThread, limitMs: number, label = 'the reward model', loadLimitMs = Math.max(limitMs, LOAD_LIMIT_MS)): OrtModule {
  const toWire = (t: Ort.Tensor): WireTensor => ({ type: t.type, data: t.data, dims: t.dims });
  const InferenceSession = {
    async create(bytes: Uint8Array, options: Ort.InferenceSession.SessionOptions = {}): Promise<Ort.InferenceSession> {
      // The session's log id (RewardModel gives the model's label) names it in messages.
      const s = new ThreadSession(spawn(), options.logId ?? label);
      let shape: SessionShape;
      try {
        shape = (await s.request({ op: 'create', bytes, options }, 'load', loadLimitMs)).session!;
      } catch (e) {
        s.release();
        throw e;
      }
      return {
        ...shape,
        async run(feeds: Record<string, Ort.Tensor>) {
          const wire = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toWire(t)]));
          const outputs = (await s.request({ op: 'run', feeds: wire }, 'score one text', limitMs)).outputs!;
          return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, new local.Tensor(t.type as 'float32', t.data as Float32Array, t.dims)]));
        },
        async release() { s.release(); },
      } as unknown as Ort.InferenceSession;
    },
  };
  return { Tensor: local.Tensor, env: local.env, InferenceSession } as unknown as OrtModule;
}
