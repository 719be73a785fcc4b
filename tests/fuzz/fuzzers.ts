// Mutation fuzzers, one per parser, over real files (the adapters the app ships, real tokenizer configs and chat
// templates, the bundled GPT-4 Alpaca sample). Each case mutates a file, runs the parser, and checks:
//   - nothing is thrown but the project's typed errors (LoraLabError subclasses);
//   - no case takes longer than HANG_MS;
//   - an accepted file says exactly what its bytes say (an oracle per parser, below).
// `npm run fuzz` runs 100,000 cases per parser; the unit tests run a seeded few thousand of each.

import { readFileSync } from 'node:fs';
import { toExample } from '../../src/lib/data/examples.js';
import { parseDataset } from '../../src/lib/data/records.js';
import { LoraLabError } from '../../src/lib/errors.js';
import { readSafetensors, streamSafetensors } from '../../src/lib/formats/safetensors.js';
import { checkAdapterFits } from '../../src/lib/lora/fit.js';
import { readPeftAdapter, targets } from '../../src/lib/lora/peft.js';
import { normalizeConfig } from '../../src/lib/model/config.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { Rng } from '../../src/lib/util/rng.js';
import { tinyTokenizerJson } from '../helpers/tiny-tokenizer.js';
import { ggufCase } from './gguf-fuzzer.js';

export const HANG_MS = 2000;

export interface FuzzStats {
  parser: string;
  cases: number;
  accepted: number;
  /** Typed errors by name (and safetensors reason). */
  refused: Record<string, number>;
  slowestMs: number;
}

const root = new URL('../../', import.meta.url);
const read = (path: string) => new Uint8Array(readFileSync(new URL(path, root)));
const text = (path: string) => new TextDecoder().decode(read(path));

const ADAPTERS = ['public/adapters/demo-short', 'public/adapters/demo-zh'].map((dir) => ({
  config: JSON.parse(text(`${dir}/adapter_config.json`)) as Record<string, unknown>,
  safetensors: read(`${dir}/adapter_model.safetensors`),
}));
const DEMO_CONFIG = normalizeConfig(JSON.parse(text('public/models/demo/config.json')));

/** Structural violations found by an oracle: a bug, not bad input. */
export class FuzzFailure extends Error {
  override name = 'FuzzFailure';
}

function run(parser: string, cases: number, seed: number, one: (rng: Rng, stats: FuzzStats) => void | Promise<void>): Promise<FuzzStats> {
  const stats: FuzzStats = { parser, cases: 0, accepted: 0, refused: {}, slowestMs: 0 };
  const rng = new Rng(seed);
  return (async () => {
    for (let i = 0; i < cases; i++) {
      const t0 = performance.now();
      try {
        await one(rng, stats);
        stats.accepted++;
      } catch (e) {
        if (!(e instanceof LoraLabError)) {
          throw new FuzzFailure(`${parser} case ${i} (seed ${seed}) threw ${(e as Error)?.name}: ${(e as Error)?.message ?? e}\n${(e as Error)?.stack?.split("\n").slice(1, 4).join("\n")}`);
        }
        const key = e.details.reason ? `${e.name}:${e.details.reason}` : e.name;
        stats.refused[key] = (stats.refused[key] ?? 0) + 1;
      }
      const ms = performance.now() - t0;
      stats.slowestMs = Math.max(stats.slowestMs, ms);
      if (ms > HANG_MS) throw new FuzzFailure(`${parser} case ${i} (seed ${seed}) took ${ms.toFixed(0)} ms`);
      stats.cases++;
    }
    return stats;
  })();
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)];

// ---- byte and JSON mutations -------------------------------------------------------------------------------------

const JSON_BYTES = '0123456789[]{}",:-.eE \\/tfnul';

function mutateBytes(rng: Rng, src: Uint8Array, region = src.byteLength): Uint8Array {
  let f = src.slice();
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = Math.min(rng.int(Math.max(1, region)), f.byteLength);
    const kind = rng.int(6);
    if (kind === 0) { if (at < f.byteLength) f[at] = rng.int(256); }
    else if (kind === 1) { if (at < f.byteLength) f[at] = JSON_BYTES.charCodeAt(rng.int(JSON_BYTES.length)); }
    else if (kind === 2) f = f.subarray(0, rng.int(f.byteLength + 1)).slice(); // truncate
    else if (kind === 3) { const g = new Uint8Array(f.byteLength + 1 + rng.int(8)); g.set(f); f = g; } // append
    else if (kind === 4) { const g = new Uint8Array(f.byteLength + 1); g.set(f.subarray(0, at)); g[at] = JSON_BYTES.charCodeAt(rng.int(JSON_BYTES.length)); g.set(f.subarray(at), at + 1); f = g; } // insert
    else if (at < f.byteLength) { const g = new Uint8Array(f.byteLength - 1); g.set(f.subarray(0, at)); g.set(f.subarray(at + 1), at); f = g; } // delete
  }
  return f;
}

const WEIRD: unknown[] = [null, true, 0, -1, 1.5, 1e30, -1e30, NaN, '', 'x', '.*', '(', '[a-', '(.*)*x', '(?<=a)b', '\\', 'all-linear', [], [0], [-1], ['q_proj'], {}, { a: 1 }, 2 ** 53, '1e400'];

/** Replaces, deletes or adds one value somewhere in a JSON value. */
function mutateJson(rng: Rng, v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) {
    if (v.length === 0 || rng.next() < 0.2) return rng.next() < 0.5 ? [...v, pick(rng, WEIRD)] : pick(rng, WEIRD);
    const i = rng.int(v.length);
    const out = [...v];
    if (rng.next() < 0.2) out.splice(i, 1); else out[i] = mutateJson(rng, v[i], depth + 1);
    return out;
  }
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 0 || rng.next() < 0.15) return rng.next() < 0.5 ? { ...v, [pick(rng, ['r', 'lora_alpha', 'x', '__metadata__', 'target_modules'])]: pick(rng, WEIRD) } : pick(rng, WEIRD);
    const k = pick(rng, keys);
    const out = { ...(v as Record<string, unknown>) };
    if (rng.next() < 0.2) delete out[k]; else out[k] = mutateJson(rng, out[k], depth + 1);
    return out;
  }
  if (typeof v === 'number') return pick(rng, [v + 1, v - 1, v * 2, 0, -v, v + 0.5, ...WEIRD]);
  if (typeof v === 'string') return pick(rng, [v + 'x', v.slice(1), '', v.replace(/_/g, '.'), ...WEIRD]);
  return pick(rng, WEIRD);
}

// ---- safetensors ---------------------------------------------------------------------------------------------------

function headerLength(f: Uint8Array): number {
  return f.byteLength >= 8 ? new DataView(f.buffer, f.byteOffset).getUint32(0, true) + new DataView(f.buffer, f.byteOffset).getUint32(4, true) * 2 ** 32 : 0;
}

/** A file with its header JSON mutated as JSON (offsets, shapes, dtypes, names), re-encoded with a valid prefix. */
function mutateHeader(rng: Rng, src: Uint8Array): Uint8Array {
  const n = headerLength(src);
  const header = JSON.parse(new TextDecoder().decode(src.subarray(8, 8 + n)));
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const t = header[pick(rng, names)];
  const kind = rng.int(6);
  if (kind === 0) t.data_offsets = t.data_offsets.map((o: number) => o + rng.int(9) - 4);
  else if (kind === 1) t.shape = rng.next() < 0.5 ? [...t.shape, 1] : t.shape.map((d: number) => d + rng.int(3) - 1);
  else if (kind === 2) t.dtype = pick(rng, ['F16', 'BF16', 'F32', 'I8', 'F64', 'X']);
  else if (kind === 3) header[`zero${rng.int(9)}`] = { dtype: 'F32', shape: [0, 3], data_offsets: pick(rng, [[0, 0], [t.data_offsets[1], t.data_offsets[1]]]) };
  else if (kind === 4) header[pick(rng, names)] = mutateJson(rng, t);
  else header.__metadata__ = mutateJson(rng, header.__metadata__ ?? {});
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(rng.int(8)));
  const out = new Uint8Array(8 + json.byteLength + src.byteLength - 8 - n);
  new DataView(out.buffer).setUint32(0, json.byteLength + (rng.next() < 0.1 ? rng.int(3) - 1 : 0), true);
  out.set(json, 8);
  out.set(src.subarray(8 + n), 8 + json.byteLength);
  return out;
}

/** The oracle: an accepted file's tensors tile the data area after the declared header, and both readers agree. */
async function checkAccepted(rng: Rng, f: Uint8Array): Promise<void> {
  const { header, data } = readSafetensors(f, 'fuzz');
  const n = headerLength(f);
  if (header.dataStart !== 8 + n) throw new FuzzFailure(`dataStart ${header.dataStart} is not 8 + ${n}`);
  const sorted = [...header.tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let end = 0;
  for (const t of sorted) {
    if (t.begin !== end) throw new FuzzFailure(`accepted a file whose tensor "${t.name}" starts at ${t.begin}, not ${end}`);
    end = t.end;
    const expected = f.subarray(8 + n + t.begin, 8 + n + t.end);
    if (!Buffer.from(data.get(t.name)!).equals(expected)) throw new FuzzFailure(`tensor "${t.name}" bytes differ from the file's`);
  }
  if (8 + n + end !== f.byteLength) throw new FuzzFailure(`accepted a file of ${f.byteLength} bytes whose tensors end at ${8 + n + end}`);
  const chunk = 1 + rng.int(4096);
  const streamed = new Map<string, Uint8Array>();
  await streamSafetensors((async function* () { for (let o = 0; o < f.byteLength; o += chunk) yield f.subarray(o, o + chunk); })(), f.byteLength, () => {}, (t, b) => { streamed.set(t.name, b.slice()); }, 'fuzz');
  if (streamed.size !== data.size) throw new FuzzFailure(`the stream gave ${streamed.size} tensors, the reader ${data.size}`);
  for (const [name, b] of data) if (!Buffer.from(streamed.get(name) ?? []).equals(b)) throw new FuzzFailure(`stream and reader differ on "${name}"`);
}

export function fuzzSafetensors(cases: number, seed = 1): Promise<FuzzStats> {
  return run('safetensors', cases, seed, async (rng) => {
    const src = pick(rng, ADAPTERS).safetensors;
    const n = headerLength(src);
    const f = rng.next() < 0.5 ? mutateHeader(rng, src) : mutateBytes(rng, src, rng.next() < 0.8 ? 8 + n : src.byteLength);
    await checkAccepted(rng, f);
  });
}

// ---- PEFT adapters -------------------------------------------------------------------------------------------------

export function fuzzPeft(cases: number, seed = 2): Promise<FuzzStats> {
  return run('peft', cases, seed, (rng) => {
    const a = pick(rng, ADAPTERS);
    const r = rng.next();
    const config = r < 0.6 ? mutateJson(rng, a.config) : a.config;
    const st = r >= 0.6 ? (rng.next() < 0.5 ? mutateHeader(rng, a.safetensors) : mutateBytes(rng, a.safetensors)) : a.safetensors;
    const adapter = readPeftAdapter('fuzz', config, st);
    checkAdapterFits(adapter, DEMO_CONFIG);
    // The oracle: what was accepted is usable: targeted, finite, bounded, rank-consistent.
    for (const p of adapter.modules.values()) {
      if (!targets(adapter.config, p.layer, p.module)) throw new FuzzFailure(`accepted untargeted ${p.layer}.${p.module}`);
      if (p.a.length !== p.rank * p.inFeatures || p.b.length !== p.outFeatures * p.rank) throw new FuzzFailure(`accepted wrong sizes at ${p.layer}.${p.module}`);
      if (!Number.isFinite(p.scaling) || p.a.some((x) => !Number.isFinite(x)) || p.b.some((x) => !Number.isFinite(x))) throw new FuzzFailure(`accepted non-finite values at ${p.layer}.${p.module}`);
    }
  });
}

// ---- datasets ------------------------------------------------------------------------------------------------------

const SAMPLE = JSON.parse(text('public/data/alpaca-gpt4-sample-en.json')) as Record<string, unknown>[];
let tinyTok: TextTokenizer | undefined;

export function fuzzDataset(cases: number, seed = 3): Promise<FuzzStats> {
  tinyTok ??= new TextTokenizer(JSON.parse(text('tests/fixtures/TinyLlama-1.1B-Chat-v1.0/tokenizer.json')), JSON.parse(text('tests/fixtures/TinyLlama-1.1B-Chat-v1.0/tokenizer_config.json')), null);
  const tok = tinyTok;
  return run('dataset', cases, seed, async (rng) => {
    const start = rng.int(SAMPLE.length - 4);
    let records: unknown[] = SAMPLE.slice(start, start + 1 + rng.int(3));
    if (rng.next() < 0.3) records = records.concat([{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }]);
    const jsonl = rng.next() < 0.5;
    if (rng.next() < 0.5) records = mutateJson(rng, records) as unknown[];
    const encoded = new TextEncoder().encode(jsonl && Array.isArray(records) ? records.map((x) => JSON.stringify(x)).join('\n') : JSON.stringify(records));
    const bytes = rng.next() < 0.4 ? mutateBytes(rng, encoded) : encoded;
    const parsed = await parseDataset(bytes, jsonl ? 'fuzz.jsonl' : 'fuzz.json');
    // The oracle: every accepted record becomes an example within the cutoff, with in-vocabulary ids.
    for (const rec of parsed) {
      const e = toExample(tok, rec, { format: 'alpaca', cutoff: 32, trainOnInputs: rng.next() < 0.5, eosId: 2 });
      if (e.ids.length > 32 || e.ids.length !== e.targets.length || e.ids.some((id) => !(id >= 0 && id < 32000))) throw new FuzzFailure('an accepted record made a malformed example');
    }
  });
}

// ---- tokenizer configs and chat templates ------------------------------------------------------------------------

const TOKENIZER_CONFIGS = ['tests/fixtures/SmolLM2-135M-Instruct/tokenizer_config.json', 'tests/fixtures/TinyLlama-1.1B-Chat-v1.0/tokenizer_config.json',
  'tests/fixtures/SmolLM2-135M-Instruct/tokenizer_config.from-SmolLM2-360M-Instruct.json'].map((p) => JSON.parse(text(p)) as Record<string, unknown>);
const TEMPLATE_PIECES = ['{{', '}}', '{%', '%}', '{#', '#}', ' if ', ' endif ', ' for m in messages ', ' endfor ', 'message', "['content']", '.role', '|', ' | trim', 'raise_exception("x")', '(', ')', '"', "'", 'loop.index0', ' + ', ' else ', 'bos_token', '[0]', '[-1]', ' not ', ' is defined '];
const MESSAGES = [[{ role: 'user' as const, content: 'Give three tips.' }], [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hi' }, { role: 'assistant' as const, content: 'Hello' }, { role: 'user' as const, content: 'More' }], [{ role: 'assistant' as const, content: 'first' }]];
let smallTokenizer: object | undefined;

export function fuzzChatTemplate(cases: number, seed = 4): Promise<FuzzStats> {
  // A small tokenizer keeps the cases fast; the templates and special tokens come from real tokenizer configs.
  smallTokenizer ??= JSON.parse(new TextDecoder().decode(tinyTokenizerJson(64)));
  return run('chat-template', cases, seed, (rng) => {
    const cfg = structuredClone(pick(rng, TOKENIZER_CONFIGS));
    const tpl = typeof cfg.chat_template === 'string' ? cfg.chat_template : '{% for m in messages %}{{ m.content }}{% endfor %}';
    const kind = rng.int(4);
    if (kind <= 1) {
      const at = rng.int(tpl.length + 1);
      const cut = rng.int(4);
      cfg.chat_template = tpl.slice(0, at) + (kind === 0 ? pick(rng, TEMPLATE_PIECES) : '') + tpl.slice(at + cut);
    } else if (kind === 2) {
      Object.assign(cfg, mutateJson(rng, { bos_token: cfg.bos_token, eos_token: cfg.eos_token, chat_template: cfg.chat_template }));
    } else {
      cfg.chat_template = pick(rng, WEIRD);
    }
    const tok = new TextTokenizer(smallTokenizer!, cfg, null);
    if (!tok.chatTemplate) return;
    const out = tok.renderChat(pick(rng, MESSAGES), rng.next() < 0.5);
    if (typeof out !== 'string') throw new FuzzFailure('a template rendered a non-string');
    tok.encode(out, false);
  });
}

// ---- GGUF models and adapters (tests/fuzz/gguf-fuzzer.ts) -----------------------------------------------------------

export function fuzzGguf(cases: number, seed = 5): Promise<FuzzStats> {
  return run('gguf', cases, seed, ggufCase);
}

export const FUZZERS = { safetensors: fuzzSafetensors, peft: fuzzPeft, dataset: fuzzDataset, 'chat-template': fuzzChatTemplate, gguf: fuzzGguf } as const;
