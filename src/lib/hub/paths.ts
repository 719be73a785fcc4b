// File names that come from files (a shard list, an adapter name, a built-in's name) are untrusted: each must be a
// plain relative path inside its source, so a crafted index cannot make us read outside a folder or send a request
// (with the user's Hugging Face token) outside a repo.

import { UnsafePathError } from '../errors.js';

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Returns `name` when it is a relative path of plain segments ("model-00001.safetensors", "onnx/model.onnx");
 * refuses empty names, absolute paths, drive letters, schemes, backslashes, control characters, "." and "..".
 */
export function safeRelativeName(name: unknown, what: string): string {
  const refuse = (why: string): never => {
    throw new UnsafePathError(`${what} names the file ${JSON.stringify(name)}, which ${why}. Only plain file names inside the model or adapter folder are allowed: the file is corrupt or crafted.`, { name: String(name) });
  };
  if (typeof name !== 'string' || name.length === 0) return refuse('is not a file name');
  if (name.length > 1024) refuse('is too long');
  if (/[\u0000-\u001f\\]/.test(name)) refuse('holds a backslash or a control character');
  if (name.startsWith('/')) refuse('is an absolute path');
  if (SCHEME.test(name)) refuse('is a URL or a drive path');
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') refuse('steps outside its folder or has an empty part');
  }
  return name;
}

/** A plain name without any slash (built-in adapters, run names used as folder names). */
export function safeBaseName(name: unknown, what: string): string {
  const n = safeRelativeName(name, what);
  if (n.includes('/')) {
    throw new UnsafePathError(`${what} ${JSON.stringify(name)} must be a single name without "/".`, { name: n });
  }
  return n;
}

/** The URL path for a relative name: each segment percent-encoded, so "%2e%2e" stays a literal name on the server. */
export function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** A download's file name made from a run, model or adapter name: letters, digits, `.`, `-`, `_` only. */
export function safeFileName(name: string, fallback = 'export'): string {
  return name.replace(/[^\w.-]+/g, '_').replace(/^_+|_+$/g, '') || fallback;
}
