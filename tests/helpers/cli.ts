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

/**
 * The same command run in this process: `main(argv)` with stdout and stderr captured. For the many cases that end
 * in argument checks, where a child process would only add its start-up (seconds each under tsx); tests that kill,
 * signal or time a run, and one of each refusal kind, still spawn the real command.
 */
export async function cliHere(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const { main } = await import('../../src/cli/main.js');
  const out = { stdout: '', stderr: '' };
  const write = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string | Uint8Array) => { out.stdout += String(chunk); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => { out.stderr += String(chunk); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { ...out, code };
  } finally {
    process.stdout.write = write.stdout;
    process.stderr.write = write.stderr;
  }
}
