// The lora-lab command as a user runs it: `node bin/lora-lab.js ...` in a child process, its output and exit status.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const bin = new URL('../../bin/lora-lab.js', import.meta.url).pathname;

export async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    return { ...(await run('node', [bin, ...args], { env: process.env, maxBuffer: 1 << 24 })), code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

/** Every line of stdout, parsed as JSON (the --json output). */
export const jsonLines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l));
