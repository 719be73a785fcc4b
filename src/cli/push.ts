// lora-lab push: a folder (an adapter written by lora-lab train, a merged model, a recipe) or one file (a dataset, an
// evaluation's results) to a Hugging Face repo, as one commit (lib/hub/push.ts). The token (--hf-token or HF_TOKEN)
// goes to the hub's endpoint only. A run's checkpoint/ folder (optimizer state) stays home unless asked for.

import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { InvalidArgumentError } from '../lib/errors.js';
import { checkRepoName, pushToHub } from '../lib/hub/push.js';
import { parseOptions } from './args.js';

const HELP = `lora-lab push — push an adapter, a merged model, a dataset or results to the Hugging Face Hub

  lora-lab push <folder|file> --repo <owner/name> [--type model|dataset] [--message "..."] [--private]
                [--with-checkpoint] [--hf-token T] [--hf-endpoint URL] [--json]

  A folder is pushed with its subfolders (its checkpoint/ only with --with-checkpoint), a file as it is; the repo is
  made when it does not exist (--private: as a private repo). One commit: an interrupted push changes nothing.
  The token needs write access; HF_TOKEN and HF_ENDPOINT stand in for --hf-token and --hf-endpoint.`;

/** Regular files under `dir`, by their path relative to it (symbolic links are refused: they could lead anywhere). */
function folderFiles(dir: string, withCheckpoint: boolean): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(dir, p).split(sep).join('/');
      const st = lstatSync(p);
      if (st.isSymbolicLink()) throw new InvalidArgumentError(`${p} is a symbolic link: push a folder of plain files.`);
      if (name.startsWith('.')) continue;
      if (st.isDirectory()) { if (rel !== 'checkpoint' || withCheckpoint) walk(p); continue; }
      if (st.isFile()) out.set(rel, new Uint8Array(readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

export async function pushCommand(argv: string[]): Promise<number> {
  const args = parseOptions('push', argv, {
    repo: { type: 'string' }, type: { type: 'string' }, message: { type: 'string' }, private: { type: 'boolean' }, 'with-checkpoint': { type: 'boolean' },
    'hf-token': { type: 'string' }, 'hf-endpoint': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, true);
  if (args.flag('help')) { console.log(HELP); return 0; }
  const [path, ...extra] = args.positionals;
  if (!path || extra.length) throw new InvalidArgumentError('Give one folder or file to push (lora-lab push --help).');
  const repo = args.string('repo');
  if (!repo) throw new InvalidArgumentError('Give --repo owner/name: where on the hub it goes.');
  checkRepoName(repo);
  const token = args.string('hf-token') ?? process.env.HF_TOKEN;
  if (!token) throw new InvalidArgumentError('Pushing needs a token with write access: give --hf-token or set HF_TOKEN.');
  let st;
  try { st = lstatSync(path); } catch { throw new InvalidArgumentError(`${path}: no such file or folder.`); }
  if (st.isSymbolicLink()) throw new InvalidArgumentError(`${path} is a symbolic link: give the folder or file itself.`);
  if (!st.isDirectory() && !st.isFile()) throw new InvalidArgumentError(`${path} is not a regular file or folder.`);
  const files = st.isDirectory() ? folderFiles(path, args.flag('with-checkpoint')) : new Map([[basename(path), new Uint8Array(readFileSync(path))]]);
  const type = args.choice('type', ['model', 'dataset'] as const, 'model');
  const json = args.flag('json');
  const r = await pushToHub({
    endpoint: (args.string('hf-endpoint') ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, ''),
    repo, type, token, files, private: args.flag('private'), message: args.string('message') ?? `Upload ${basename(path)} from LoRA Lab`,
    onProgress: (p) => { if (!json) process.stderr.write(`${p.phase}...\n`); },
  });
  const summary = { type: 'pushed', repo, repoType: type, files: [...files.keys()], bytes: [...files.values()].reduce((n, b) => n + b.length, 0), created: r.created, commit: r.commitOid, url: r.commitUrl };
  process.stdout.write((json ? JSON.stringify(summary) : `pushed ${summary.files.length} files (${summary.bytes} bytes) to ${r.repoUrl}${r.created ? ' (new repo)' : ''}: ${r.commitUrl}`) + '\n');
  return 0;
}
