// Command-line options through node:util's parseArgs in strict mode: an unknown option, a missing value or a stray
// argument is refused. Values are then read through typed accessors that refuse malformed numbers and lists,
// out-of-range values and unknown choices, naming the option and what it accepts.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidArgumentError } from '../lib/errors.js';
import { PRECISIONS, type Precision } from '../lib/quant/precision.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export class Options {
  constructor(private readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>, readonly positionals: string[] = []) {}

  has(name: string): boolean {
    return this.values[name] !== undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** The option's value (the last one when repeated), or undefined. */
  string(name: string): string | undefined {
    const v = this.values[name];
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    return typeof last === 'string' ? last : undefined;
  }

  strings(name: string): string[] {
    const v = this.values[name];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');
  }

  /** A number in [min, max] (integers only with `integer`), or the fallback when absent. */
  number(name: string, fallback: number, range: NumberRange): number {
    const text = this.string(name);
    return text === undefined ? fallback : parseNumber(`--${name}`, text, range);
  }

  /** One of `choices`, or the fallback when absent. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.string(name);
    if (v === undefined) return fallback;
    if (!choices.includes(v as T)) throw new InvalidArgumentError(`--${name} ${JSON.stringify(v)} is not one of ${choices.join(', ')}.`, { option: name });
    return v as T;
  }

  /** A comma-separated list of non-empty items, each checked by `item`. */
  list<T>(name: string, item: (text: string, option: string) => T): T[] | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const parts = v.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) {
      throw new InvalidArgumentError(`--${name} ${JSON.stringify(v)} has an empty item: give a comma-separated list such as 1,2,3.`, { option: name });
    }
    return parts.map((p) => item(p, `--${name}`));
  }
}

/** A range [min, max]; `above` makes the lower end exclusive, `below` the upper one ((0, 1] for top-p). */
export interface NumberRange {
  min: number;
  max: number;
  integer?: boolean;
  above?: boolean;
  below?: boolean;
}

const describe = (r: NumberRange) => (r.integer ? `${r.min}..${r.max}` : `${r.above ? '(' : '['}${r.min}, ${r.max}${r.below ? ')' : ']'}`);

/** Decimal numbers only: JavaScript's Number() would also take 0x10, 0b1, 1e2 for an integer, '  ' and 'Infinity'. */
const DECIMAL_INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function parseNumber(option: string, text: string, range: NumberRange): number {
  const t = text.trim();
  const n = (range.integer ? DECIMAL_INTEGER : DECIMAL).test(t) ? Number(t) : NaN;
  const kind = range.integer ? 'an integer' : 'a number';
  if (!Number.isFinite(n) || (range.integer && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${option} ${JSON.stringify(text)} is not ${kind}: give ${kind} in ${describe(range)}.`, { option });
  }
  if (n < range.min || n > range.max || (range.above && n === range.min) || (range.below && n === range.max)) {
    throw new InvalidArgumentError(`${option} ${n} is out of range: give ${kind} in ${describe(range)}.`, { option });
  }
  return n;
}

/** Parses `argv` against `options` strictly; parseArgs' own errors become InvalidArgumentError. */
export function parseOptions(command: string, argv: string[], options: OptionSpec, allowPositionals = false): Options {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals });
    return new Options(values as Record<string, string | boolean | (string | boolean)[] | undefined>, positionals);
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw e;
    const message = (e as Error).message.split('\n')[0];
    throw new InvalidArgumentError(`${message} Run lora-lab ${command} --help for the options.`, { code });
  }
}

/** --precision: how the model's weights are kept (default auto). */
export function precisionOf(args: Options): Precision {
  return args.choice('precision', PRECISIONS, 'auto');
}
