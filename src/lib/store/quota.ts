// Storage space: the typed error for a full quota, and the check made before a download starts.

import { StorageFullError } from '../errors.js';
import { formatBytes } from '../util/bytes.js';

/** A StorageFullError when `e` is the browser's or the disk's "out of space", else null. */
export function storageFull(e: unknown): StorageFullError | null {
  const name = (e as { name?: string })?.name;
  const code = (e as { code?: string })?.code;
  if (name !== 'QuotaExceededError' && code !== 'ENOSPC') return null;
  return new StorageFullError('The browser\'s storage for this site is full. Delete kept models, adapters or runs on the Storage page, then try again.', {});
}

export interface Estimate { quota: number; usage: number }

/** Kept items, largest first, for the message that says what could be deleted. */
export type KeptSizes = { label: string; bytes: number }[];

/** Refuses a download of `needed` bytes that does not fit in what the quota leaves, naming what could be freed. */
export function checkSpace(needed: number, estimate: Estimate | null, kept: KeptSizes): void {
  if (!estimate || !Number.isFinite(estimate.quota) || estimate.quota <= 0) return;
  const free = estimate.quota - estimate.usage;
  if (needed <= free) return;
  const largest = [...kept].sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((k) => `${k.label} (${formatBytes(k.bytes)})`);
  throw new StorageFullError(
    `This download needs ${formatBytes(needed)} but only ${formatBytes(Math.max(0, free))} of this site's ${formatBytes(estimate.quota)} is free. ` +
      (largest.length ? `Delete something on the Storage page to make room, for example ${largest.join(', ')}.` : 'Free disk space on this computer, then try again.'),
    { needed, free, quota: estimate.quota },
  );
}
