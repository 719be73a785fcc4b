// Models and adapters named on the command line: a folder, `builtin`, a Hugging Face repo id or a URL. Repos and
// URLs go through the cache folder (downloaded once, resumed and verified, then read from disk); --offline (or
// LORA_LAB_OFFLINE=1 / HF_HUB_OFFLINE=1) forbids the network and loads only what is kept.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { recoverFolder } from '../lib/store/atomic-node.js';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatBytes } from '../lib/util/bytes.js';
import type { AdapterInfo, Engine } from '../lib/engine.js';
import { InvalidArgumentError } from '../lib/errors.js';
import type { ModelFiles } from '../lib/model-files.js';
import { safeBaseName } from '../lib/hub/paths.js';
import { NodeDirFiles } from '../lib/hub/node-files.js';
import { BUILTIN_MODEL_ID, parseSourceText } from '../lib/hub/source.js';
import { defaultCacheDir, diskCache } from '../lib/store/disk-catalog.js';
import { ModelCache, type SnapshotKind } from '../lib/store/model-cache.js';
import type { DownloadProgress } from '../lib/store/progress.js';
import type { Options, OptionSpec } from './args.js';

export const CACHE_OPTIONS: OptionSpec = {
  'cache-dir': { type: 'string' },
  offline: { type: 'boolean' },
  'hf-endpoint': { type: 'string' },
  'hf-token': { type: 'string' },
};

/** Options every command that loads a model takes. */
export const SOURCE_OPTIONS: OptionSpec = {
  ...CACHE_OPTIONS,
  f32: { type: 'boolean' },
  precision: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const builtinDir = fileURLToPath(new URL('../../public/models/demo/', import.meta.url));

export function cacheDir(args: Options): string {
  return args.string('cache-dir') ?? defaultCacheDir();
}

export function openCache(args: Options): ModelCache {
  const { store, catalog } = diskCache(cacheDir(args));
  const offline = args.flag('offline') || process.env.LORA_LAB_OFFLINE === '1' || process.env.HF_HUB_OFFLINE === '1';
  return new ModelCache(store, catalog, { endpoint: args.string('hf-endpoint') ?? process.env.HF_ENDPOINT, offline: () => offline });
}

function progressLine(p: DownloadProgress): string {
  const eta = Number.isFinite(p.etaMs) ? `${Math.ceil(p.etaMs / 1000)} s left` : '';
  return `\rdownloading ${p.file}: ${formatBytes(p.allLoaded)} / ${formatBytes(p.allTotal)}  ${formatBytes(p.bytesPerSecond)}/s  ${eta}   `;
}

/** Opens what `text` names; downloads into the cache first when it is a repo or URL that is not kept yet. */
export async function openSource(text: string, args: Options, kind: SnapshotKind, quiet: boolean): Promise<ModelFiles> {
  // A folder lora-lab train was replacing when it was killed (between its two renames) is put back first, as the
  // writer would: its previous adapter, whole.
  recoverFolder(text, false);
  if (existsSync(text)) return new NodeDirFiles(text);
  const source = parseSourceText(text);
  const onProgress = quiet ? undefined : (p: DownloadProgress) => process.stderr.write(progressLine(p));
  const done = (f: ModelFiles) => { if (!quiet && onProgress) process.stderr.write('\n'); return f; };
  switch (source.kind) {
    case 'builtin':
      return new NodeDirFiles('built-in demo model', builtinDir, BUILTIN_MODEL_ID);
    case 'hf':
      return done(await openCache(args).hf(source.repo, source.revision ?? 'main', kind, { token: args.string('hf-token') ?? process.env.HF_TOKEN, onProgress, file: source.file }));
    case 'url':
      return done(await openCache(args).url(source.url, kind, { onProgress }));
    default:
      return new NodeDirFiles(text);
  }
}

const builtinAdaptersDir = fileURLToPath(new URL('../../public/adapters/', import.meta.url));

/** `builtin:NAME` names one of the adapters shipped in public/adapters, and nothing outside it. */
function builtinAdapter(name: string): NodeDirFiles {
  const known = readdirSync(builtinAdaptersDir).filter((n) => statSync(resolve(builtinAdaptersDir, n)).isDirectory());
  if (!known.includes(safeBaseName(name, 'builtin:NAME'))) {
    throw new InvalidArgumentError(`builtin:${name} is not a built-in adapter: use one of ${known.map((k) => `builtin:${k}`).join(', ')}.`);
  }
  return new NodeDirFiles(name, resolve(builtinAdaptersDir, name));
}

/** Loads the adapter an --adapter value names (`builtin:NAME`, a folder, a repo id or a URL) into the engine. */
export async function loadAdapterArg(engine: Engine, text: string, args: Options, quiet: boolean): Promise<AdapterInfo> {
  const builtin = /^builtin:(.*)$/s.exec(text);
  return builtin ? engine.loadAdapter(builtinAdapter(builtin[1]), builtin[1]) : engine.loadAdapter(await openSource(text, args, 'adapter', quiet), text);
}
