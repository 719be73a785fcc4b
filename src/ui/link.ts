// Links that open a set-up playground: /?model=HuggingFaceTB/SmolLM2-135M-Instruct&adapter=<repo, URL or kept name>
// [&adapter=...][&strength=0.5&strength=1]&view=chat|compare&prompt=...[&temperature=0.7&top_k=40&top_p=0.9
// &max_tokens=64&seed=1]. Parsed into sources the engine loads (from the cache first) and the view's settings (a
// link's values win over what the browser kept), and written back from the current set-up by "Copy link". Local
// folders have no link.

import { isRepoId } from '../lib/hub/files.js';
import { parseSourceText, type ModelSource } from '../lib/hub/source.js';
import { SAMPLING_LIMITS as L } from '../lib/model/sampling.js';

export type View = 'playground' | 'compare' | 'train' | 'evaluate' | 'storage';

/** Sampling a link sets: the chat's or the Compare form's, by the view. */
export interface LinkSampling { temperature?: number; topK?: number; topP?: number; maxNewTokens?: number; seed?: number }

export interface Link {
  model?: ModelSource;
  /** In order; in Compare each is a column beside the base, at its strength (`strength=` repeated, in the same order). */
  adapters: { source: ModelSource; name: string; strength: number }[];
  view?: View;
  prompt?: string;
  sampling: LinkSampling;
}

/** Link parameters of the sampling settings, with the range each accepts. */
const SAMPLING_PARAMS: [keyof LinkSampling, string, { min: number; max: number; integer?: boolean }][] = [
  ['temperature', 'temperature', L.temperature],
  ['topK', 'top_k', { ...L.topK, integer: true }],
  ['topP', 'top_p', L.topP],
  ['maxNewTokens', 'max_tokens', { min: 1, max: 4096, integer: true }],
  ['seed', 'seed', { min: 0, max: 0xffffffff, integer: true }],
];

const VIEWS: Record<string, View> = { chat: 'playground', playground: 'playground', compare: 'compare', train: 'train', evaluate: 'evaluate', storage: 'storage' };

/** A model as a link names it: `builtin`, a repo id with an optional @revision (and /file.gguf), or an http(s) URL. */
export function modelFromText(text: string): ModelSource | null {
  const t = text.trim();
  if (t === 'builtin') return { kind: 'builtin' };
  if (/^https?:\/\//.test(t)) return { kind: 'url', url: t };
  const gguf = parseSourceText(t);
  if (gguf.kind === 'hf' && gguf.file) return gguf;
  const [repo, revision, ...rest] = t.split('@');
  if (rest.length === 0 && isRepoId(repo)) return { kind: 'hf', repo, revision: revision || undefined };
  return null;
}

/** An adapter: `builtin:NAME`, a repo id, a URL, or the name of an adapter kept in this browser. */
export function adapterFromText(text: string): { source: ModelSource; name: string; strength: number } | null {
  const t = text.trim();
  if (!t) return null;
  const builtin = /^builtin:(.+)$/.exec(t);
  if (builtin) return { source: { kind: 'builtin', name: builtin[1] }, name: builtin[1], strength: 1 };
  const model = /^https?:\/\//.test(t) || (t.includes('/') && isRepoId(t.split('@')[0])) ? modelFromText(t) : null;
  return { source: model ?? { kind: 'kept', name: t }, name: t, strength: 1 };
}

/** A plain decimal number (no hex, exponent or blank), else NaN. */
const decimal = (t: string): number => (/^-?\d+(\.\d+)?$/.test(t.trim()) ? Number(t) : NaN);

export interface LinkProblem { param: string; value: string; why: string }

export function parseLink(search: string): { link: Link; problems: LinkProblem[] } {
  const q = new URLSearchParams(search);
  const problems: LinkProblem[] = [];
  const link: Link = { adapters: [], sampling: {} };
  const model = q.get('model');
  if (model !== null) {
    const m = modelFromText(model);
    if (m) link.model = m;
    else problems.push({ param: 'model', value: model, why: 'is not builtin, a Hugging Face repo id (owner/name[@revision]) or an http(s) URL' });
  }
  const strengths = q.getAll('strength');
  for (const [i, a] of q.getAll('adapter').entries()) {
    const parsed = adapterFromText(a);
    if (!parsed) continue;
    const st = strengths[i];
    if (st !== undefined) {
      const v = decimal(st);
      if (v >= 0 && v <= 2) parsed.strength = v;
      else problems.push({ param: 'strength', value: st, why: 'is not a number from 0 to 2' });
    }
    link.adapters.push(parsed);
  }
  for (const [key, param, range] of SAMPLING_PARAMS) {
    const text = q.get(param);
    if (text === null) continue;
    const v = decimal(text);
    if (v >= range.min && v <= range.max && (!range.integer || Number.isInteger(v))) link.sampling[key] = v;
    else problems.push({ param, value: text, why: `is not ${range.integer ? 'an integer' : 'a number'} from ${range.min} to ${range.max}` });
  }
  const view = q.get('view');
  if (view !== null) {
    if (VIEWS[view]) link.view = VIEWS[view];
    else problems.push({ param: 'view', value: view, why: 'is not chat, compare, train, evaluate or storage' });
  }
  const prompt = q.get('prompt');
  if (prompt !== null) link.prompt = prompt;
  return { link, problems };
}

function sourceText(s: ModelSource): string | null {
  if (s.kind === 'builtin') return s.name ? `builtin:${s.name}` : 'builtin';
  if (s.kind === 'hf') return (s.revision && s.revision !== 'main' ? `${s.repo}@${s.revision}` : s.repo) + (s.file ? `/${s.file}` : '');
  if (s.kind === 'url') return s.url;
  if (s.kind === 'kept') return s.name;
  return null;
}

/** The link for a set-up; null with a reason when the model has no link (a local folder). */
export function makeLink(
  base: string,
  set: { model: ModelSource | null; adapters: { source: ModelSource; strength?: number }[]; view: View; prompt: string; sampling?: LinkSampling },
): { url: string } | { why: string } {
  const q = new URLSearchParams();
  if (set.model) {
    const m = sourceText(set.model);
    if (!m) return { why: 'The model was opened from a local folder, which a link cannot name: load it from Hugging Face or a URL.' };
    q.set('model', m);
  }
  const named = set.adapters.flatMap((a) => { const t = sourceText(a.source); return t ? [{ t, strength: a.strength ?? 1 }] : []; });
  for (const a of named) q.append('adapter', a.t);
  // Strengths only when one is not 1, all of them then (they pair with the adapters by order).
  if (named.some((a) => a.strength !== 1)) for (const a of named) q.append('strength', String(a.strength));
  q.set('view', set.view === 'playground' ? 'chat' : set.view);
  if (set.prompt) q.set('prompt', set.prompt);
  for (const [key, param] of SAMPLING_PARAMS) if (set.sampling?.[key] !== undefined) q.set(param, String(set.sampling[key]));
  return { url: `${base}?${q.toString()}` };
}
