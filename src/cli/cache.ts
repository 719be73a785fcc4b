// lora-lab cache list | rm | export | import: what the CLI keeps in its cache folder, and moving it between machines
// as single archives (the same format the browser's Storage page exports and imports).

import { createWriteStream, existsSync, openAsBlob, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { InvalidArgumentError } from '../lib/errors.js';
import { exportSnapshot, importSnapshot } from '../lib/store/archive.js';
import type { Snapshot } from '../lib/store/snapshot-catalog.js';
import { formatBytes } from '../lib/util/bytes.js';
import { parseOptions, type OptionSpec } from './args.js';
import { CACHE_OPTIONS, cacheDir, openCache } from './sources.js';

const OPTIONS: OptionSpec = { ...CACHE_OPTIONS, json: { type: 'boolean' }, out: { type: 'string' }, replace: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

export const CACHE_HELP = `lora-lab cache — models and adapters kept for offline use

  lora-lab cache list [--json]                       what is kept, with sizes
  lora-lab cache rm <id|repo[@revision]|url>         delete a kept model or adapter
  lora-lab cache export <id|repo[@revision]|url> --out FILE.zip
                                                     one archive another machine imports without the network
  lora-lab cache import FILE.zip [--replace]         checks every file's size and SHA-256, then keeps it (a snapshot
                                                     kept already is replaced only with --replace; a failed import
                                                     leaves what is kept as it was)

  --cache-dir DIR      the cache folder (default: $LORA_LAB_CACHE, else $XDG_CACHE_HOME/lora-lab or ~/.cache/lora-lab)
  generate and train use the same folder: Hugging Face repos and URLs are downloaded once (resumed after an
  interruption, verified against the hub's SHA-256), then loaded from disk; --offline forbids the network.`;

function describe(s: Snapshot): string {
  return s.source === 'hf' ? `${s.repo}@${s.revisions.join(',') || s.sha.slice(0, 7)}` : s.repo;
}

/** The kept snapshot `text` names: its id, a repo id (with @revision), or a URL. */
function pick(all: Snapshot[], text: string): Snapshot {
  const [repo, revision] = text.split('@');
  const hits = all.filter((s) => s.id === text || s.repo === text || s.repo === `${text}/` || (s.repo === repo && (s.revisions.includes(revision) || s.sha.startsWith(revision))));
  if (hits.length === 1) return hits[0];
  if (!hits.length) throw new InvalidArgumentError(`Nothing kept matches "${text}". See lora-lab cache list.`);
  throw new InvalidArgumentError(`"${text}" matches ${hits.length} kept snapshots (${hits.map((h) => h.id).join(', ')}): give the id.`);
}

export async function cacheCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const args = parseOptions('cache', rest, OPTIONS, true);
  if (!action || action === '--help' || action === '-h' || args.flag('help')) { console.log(CACHE_HELP); return action ? 0 : 1; }
  const cache = openCache(args);
  const all = await cache.list();
  const target = args.positionals[0];
  switch (action) {
    case 'list': {
      if (args.flag('json')) { for (const s of all) process.stdout.write(JSON.stringify({ id: s.id, kind: s.kind, repo: s.repo, sha: s.sha, revisions: s.revisions, bytes: s.bytes, files: s.files.length, savedAt: s.savedAt }) + '\n'); return 0; }
      if (!all.length) { process.stdout.write(`nothing kept in ${cacheDir(args)}\n`); return 0; }
      for (const s of all) process.stdout.write(`${s.kind.padEnd(8)}${describe(s).padEnd(60)}${formatBytes(s.bytes).padStart(10)}  ${s.id}\n`);
      process.stdout.write(`${all.length} kept, ${formatBytes(all.reduce((a, s) => a + s.bytes, 0))} in ${cacheDir(args)}\n`);
      return 0;
    }
    case 'rm': {
      if (!target) throw new InvalidArgumentError('lora-lab cache rm needs what to delete: an id, repo id or URL (see lora-lab cache list).');
      const s = pick(all, target);
      await cache.remove(s.id);
      process.stdout.write(`deleted ${describe(s)} (${formatBytes(s.bytes)})\n`);
      return 0;
    }
    case 'export': {
      if (!target) throw new InvalidArgumentError('lora-lab cache export needs what to export: an id, repo id or URL.');
      const out = args.string('out') ?? throwMissing('--out FILE.zip');
      const s = pick(all, target);
      if (!existsSync(dirname(resolve(out)))) throw new InvalidArgumentError(`--out ${out}: the folder ${dirname(resolve(out))} does not exist.`);
      // Written beside the target and renamed when complete: the archive is whole or absent.
      const tmp = join(dirname(resolve(out)), `.${basename(out)}.partial`);
      try {
        await exportSnapshot(cache.store, cache.catalog, s.id, Writable.toWeb(createWriteStream(tmp)) as WritableStream<Uint8Array>);
        renameSync(tmp, out);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
      process.stdout.write(`exported ${describe(s)} to ${out}\n`);
      return 0;
    }
    case 'import': {
      if (!target || !existsSync(target)) throw new InvalidArgumentError(`lora-lab cache import needs an archive file${target ? `: ${target} does not exist` : ''}.`);
      if (!statSync(target).isFile()) throw new InvalidArgumentError(`${target} is not a regular file: give the archive lora-lab cache export wrote.`);
      const s = await importSnapshot(cache.store, cache.catalog, await openAsBlob(target), basename(target), { replace: args.flag('replace') });
      process.stdout.write(`imported ${describe(s)} (${formatBytes(s.bytes)}) into ${cacheDir(args)}\n`);
      return 0;
    }
    default:
      throw new InvalidArgumentError(`Unknown cache action "${action}": use list, rm, export or import.`);
  }
}

function throwMissing(what: string): never {
  throw new InvalidArgumentError(`Give ${what}.`);
}
