// Number formatting for the UI.

export { formatBytes as bytes } from '../lib/util/bytes.js';

export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '…';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** A decode rate: tokens per second, or seconds per token below one token a second (never "0.0 tokens/s"). */
export function rate(tokensPerSecond: number): string {
  if (!(tokensPerSecond > 0) || !Number.isFinite(tokensPerSecond)) return '– tokens/s';
  return tokensPerSecond >= 1 ? `${tokensPerSecond.toFixed(1)} tokens/s` : `${(1 / tokensPerSecond).toFixed(1)} s/token`;
}

/** "1 token", "2 tokens": a count with its noun in the right number (English plurals in -s, or `many` when given). */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
