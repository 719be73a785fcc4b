// Links that open a set-up playground: /?model=HuggingFaceTB/SmolLM2-135M-Instruct&adapter=<repo, URL or kept name>
// &view=chat&prompt=... . Parsed into sources the engine loads (from the cache first), and written back from the
// current set-up by "Copy link". Local folders have no link.

import { isRepoId } from '../lib/hub/files.js';
import { parseSourceText, type ModelSource } from '../lib/hub/source.js';

export type View = 'playground' | 'compare' | 'train' | 'evaluate' | 'storage';

export interface Link {
  model?: ModelSource;
  adapters: { source: ModelSource; name: string }[];
  view?: View;
  prompt?: string;
}

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
export function adapterFromText(text: string): { source: ModelSource; name: string } | null {
  const t = text.trim();
  if (!t) return null;
  const builtin = /^builtin:(.+)$/.exec(t);
  if (builtin) return { source: { kind: 'builtin', name: builtin[1] }, name: builtin[1] };
  const model = /^https?:\/\//.test(t) || (t.includes('/') && isRepoId(t.split('@')[0])) ? modelFromText(t) : null;
  return { source: model ?? { kind: 'kept', name: t }, name: t };
}

export interface LinkProblem { param: string; value: string; why: string }

export function parseLink(search: string): { link: Link; problems: LinkProblem[] } {
  const q = new URLSearchParams(search);
  const problems: LinkProblem[] = [];
  const link: Link = { adapters: [] };
  const model = q.get('model');
  if (model !== null) {
    const m = modelFromText(model);
    if (m) link.model = m;
    else problems.push({ param: 'model', value: model, why: 'is not builtin, a Hugging Face repo id (owner/name[@revision]) or an http(s) URL' });
  }
  for (const a of q.getAll('adapter')) {
    const parsed = adapterFromText(a);
    if (parsed) link.adapters.push(parsed);
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
export function makeLink(base: string, set: { model: ModelSource | null; adapters: ModelSource[]; view: View; prompt: string }): { url: string } | { why: string } {
  const q = new URLSearchParams();
  if (set.model) {
    const m = sourceText(set.model);
    if (!m) return { why: 'The model was opened from a local folder, which a link cannot name: load it from Hugging Face or a URL.' };
    q.set('model', m);
  }
  for (const a of set.adapters) {
    const t = sourceText(a);
    if (t) q.append('adapter', t);
  }
  q.set('view', set.view === 'playground' ? 'chat' : set.view);
  if (set.prompt) q.set('prompt', set.prompt);
  return { url: `${base}?${q.toString()}` };
}
