// Crash-safe writes on disk (Node: the CLI). A file becomes visible only when complete: it is written under a
// temporary name in the same folder, flushed, and renamed over the old one. A folder (an adapter: config and weights
// that belong together) is replaced as a whole: the new one is built and flushed beside it, the old one is moved
// aside, the new one moved in, and the old one deleted. A crash between those two renames leaves the old folder
// under its aside name; `recoverFolder` (run before a folder is read or written) moves it back.

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { WriteError } from '../errors.js';
import { safeRelativeName } from '../hub/paths.js';

const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;

/**
 * A failpoint for the kill soak (tests/gpu/cli-hardening.test.ts): with LORA_LAB_FAILPOINT=folder-swap the process
 * kills itself with SIGKILL between the two renames of a folder replace, the one moment a timed kill rarely hits.
 */
function failpoint(name: 'folder-swap'): void {
  if (process.env.LORA_LAB_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

function fsyncPath(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on folders; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeFlushed(path: string, bytes: Uint8Array | readonly Uint8Array[]): void {
  const fd = openSync(path, 'wx');
  try {
    for (const c of bytes instanceof Uint8Array ? [bytes] : bytes) for (let o = 0; o < c.byteLength; ) o += writeSync(fd, c, o, c.byteLength - o);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function failed(what: string, path: string, e: unknown): WriteError {
  return new WriteError(`Could not write ${what} ${path}: ${(e as Error).message}. Check that the folder exists, is writable and the disk has space.`, { path });
}

/** Writes `bytes` (or chunks of them, in order) to `path` so that readers see the old file or the new one, never a part. */
export function writeFileAtomic(path: string, bytes: Uint8Array | readonly Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${tag()}`);
  try {
    writeFlushed(tmp, bytes);
    renameSync(tmp, path);
    fsyncPath(dirname(path));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw failed('the file', path, e);
  }
}

const aside = (dest: string) => ({ dir: dirname(resolve(dest)), prefix: `.${basename(resolve(dest))}.` });

/**
 * Finishes or undoes an interrupted `replaceFolder`: when `dest` is missing and an aside copy exists, it is moved
 * back; leftover temporary folders are deleted (by writers only: a reader leaves them, since a writer may be filling
 * one now). Returns true when something was recovered.
 */
export function recoverFolder(dest: string, cleanup = true): boolean {
  const { dir, prefix } = aside(dest);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return false;
  }
  let recovered = false;
  const old = names.filter((n) => n.startsWith(`${prefix}old-`));
  if (old.length && !exists(dest)) {
    const newest = old.map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs })).sort((a, b) => b.t - a.t)[0].n;
    renameSync(join(dir, newest), dest);
    recovered = true;
  }
  for (const n of cleanup ? names : []) {
    if ((n.startsWith(`${prefix}old-`) || n.startsWith(`${prefix}tmp-`)) && join(dir, n) !== resolve(dest) && exists(join(dir, n))) {
      rmSync(join(dir, n), { recursive: true, force: true });
    }
  }
  return recovered;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Replaces the folder `dest` with exactly `files` (relative names, "sub/x" allowed), as a whole. */
export function replaceFolder(dest: string, files: Map<string, Uint8Array>): void {
  const { dir, prefix } = aside(dest);
  const tmp = join(dir, `${prefix}tmp-${tag()}`);
  const old = join(dir, `${prefix}old-${tag()}`);
  try {
    recoverFolder(dest);
    mkdirSync(tmp, { recursive: true });
    const dirs = new Set<string>([tmp]);
    for (const [name, bytes] of files) {
      const path = join(tmp, safeRelativeName(name, 'a file to write'));
      if (!dirs.has(dirname(path))) {
        mkdirSync(dirname(path), { recursive: true });
        dirs.add(dirname(path));
      }
      writeFlushed(path, bytes);
    }
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) fsyncPath(d);
    const had = exists(dest);
    if (had) renameSync(dest, old);
    failpoint('folder-swap');
    renameSync(tmp, dest);
    fsyncPath(dir);
    if (had) rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (!exists(dest) && exists(old)) renameSync(old, dest);
    throw failed('the folder', dest, e);
  }
}
