// A tiny argument parser for the CLI: `--name value`, `--flag`, repeated flags collected in order.

import { InvalidArgumentError } from '../lib/errors.js';

export interface ParsedArgs {
  values: Map<string, string[]>;
  flags: Set<string>;
}

export function parseArgs(argv: string[], booleanFlags: readonly string[]): ParsedArgs {
  const rest = argv;
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new InvalidArgumentError(`Unexpected argument "${a}": options look like --name value (see lora-lab --help).`);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (booleanFlags.includes(name)) { flags.add(name); continue; }
    const v = inline ?? rest[++i];
    if (v === undefined) throw new InvalidArgumentError(`--${name} needs a value.`);
    values.set(name, [...(values.get(name) ?? []), v]);
  }
  return { values, flags };
}

export function one(args: ParsedArgs, name: string): string | undefined {
  const v = args.values.get(name);
  return v ? v[v.length - 1] : undefined;
}

export function num(args: ParsedArgs, name: string, fallback: number, integer = false): number {
  const v = one(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`--${name} ${v} is not ${integer ? 'an integer' : 'a number'}.`);
  return n;
}
