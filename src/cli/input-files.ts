// Files the commands read and append to, checked before any work: an input must be a regular file (not /dev/zero, a
// folder or a FIFO, which would fill memory or never end) of a bounded size; an output file must sit in an existing
// folder and not be a folder itself. The errors name the option.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from '../lib/errors.js';

/** Input files up to 2 GiB (a dataset, an evaluation's results, a set). */
export const MAX_INPUT_BYTES = 2 ** 31;

/** The bytes of the file `path` given as `option`, after checking it is a regular file within the size limit. */
export function readInput(option: string, path: string, hint = ''): Uint8Array {
  if (!existsSync(path)) throw new InvalidArgumentError(`${option} ${path}: no such file${hint ? ` (${hint})` : ''}.`, { option });
  const st = statSync(path);
  if (!st.isFile()) throw new InvalidArgumentError(`${option} ${path} is not a regular file (a folder, a device or a pipe): give a file.`, { option });
  if (st.size > MAX_INPUT_BYTES) throw new InvalidArgumentError(`${option} ${path} is ${(st.size / 2 ** 30).toFixed(1)} GiB, over the ${MAX_INPUT_BYTES / 2 ** 30} GiB an input file can be.`, { option });
  return new Uint8Array(readFileSync(path));
}

/** An output file (appended to, or written whole): a regular file or a new name in an existing folder. */
export function checkOutputFile(option: string, path: string): void {
  const parent = dirname(resolve(path));
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new InvalidArgumentError(`${option} ${path}: the folder ${parent} does not exist; create it first.`, { option });
  if (existsSync(path) && !statSync(path).isFile()) throw new InvalidArgumentError(`${option} ${path} is not a regular file (a folder, a device or a pipe): give a file name.`, { option });
}
