// The rules llama.cpp's loader (gguf_init_from_file_impl) holds a GGUF file's tensor table to, checked on the header
// alone, before any tensor data is read: so a bad dimension is refused in words instead of buffering the rest of the
// file, and tensors that overlap or run past the end never reach the engine.
//   alignment: a power of two; names: unique; dimensions: 1 or 2 (the engine's weights), each a positive count;
//   extents: at a multiple of the alignment, inside the file, in order and not overlapping.
import { FileFormatError } from '../errors.js';
import { ggmlTypeName, isSupportedType, tensorBytes } from '../formats/gguf-tensors.js';

export interface TensorEntry {
  name: string;
  /** ne[0] (the row length) first. */
  shape: readonly (number | bigint)[];
  dtype: number;
  /** Offset from the start of the tensor data. */
  offset: number | bigint;
}

const DEFAULT_ALIGNMENT = 32;

/** general.alignment as llama.cpp takes it: a u32 power of two (32 when absent). */
export function ggufAlignment(value: unknown, file: string): number {
  if (value === undefined) return DEFAULT_ALIGNMENT;
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || (n & (n - 1)) !== 0 || n > 2 ** 30) {
    throw new FileFormatError(`${file}: general.alignment is ${String(value)}, not a power of two. The file is damaged or was not written by llama.cpp; download it again.`, { file, key: 'general.alignment' });
  }
  return n;
}

/**
 * Checks every tensor's table entry against the rules above; `dataOffset` is the absolute offset of the tensor data
 * and `fileSize` the file's length in bytes.
 */
export function checkGgufLayout(tensors: readonly TensorEntry[], alignment: number, dataOffset: number, fileSize: number, file: string): void {
  const fail = (tensor: string, what: string) => {
    throw new FileFormatError(`${file}: tensor ${tensor} ${what}. The file is damaged or was not written by llama.cpp; download it again.`, { file, tensor });
  };
  const seen = new Set<string>();
  const extents: { name: string; start: number; end: number }[] = [];
  for (const t of tensors) {
    if (seen.has(t.name)) fail(t.name, 'is listed twice');
    seen.add(t.name);
    const dims = t.shape.map(Number);
    if (dims.length < 1 || dims.length > 2) fail(t.name, `has ${dims.length} dimensions [${dims}]; the engine's weights have 1 or 2`);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 1)) fail(t.name, `has dimensions [${t.shape.map(String)}], not positive counts`);
    const offset = Number(t.offset);
    if (!Number.isSafeInteger(offset) || offset % alignment !== 0) fail(t.name, `starts at data offset ${String(t.offset)}, not a multiple of the alignment ${alignment}`);
    // Types the engine does not read are refused by name when their turn comes; their size is not known here.
    if (!isSupportedType(t.dtype)) continue;
    const count = dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count)) fail(t.name, `has dimensions [${dims}], too many elements for any model`);
    const bytes = tensorBytes(t.dtype, count, dims[0], `${file}: tensor ${t.name}`);
    const start = dataOffset + offset;
    if (start + bytes > fileSize) {
      fail(t.name, `(${ggmlTypeName(t.dtype)} [${dims}], ${bytes.toLocaleString('en-US')} bytes from byte ${start.toLocaleString('en-US')}) ends past the end of the file at byte ${fileSize.toLocaleString('en-US')}`);
    }
    extents.push({ name: t.name, start, end: start + bytes });
  }
  extents.sort((a, b) => a.start - b.start);
  for (let i = 1; i < extents.length; i++) {
    const [a, b] = [extents[i - 1], extents[i]];
    if (b.start < a.end) fail(b.name, `(bytes ${b.start.toLocaleString('en-US')} to ${b.end.toLocaleString('en-US')}) overlaps ${a.name} (bytes ${a.start.toLocaleString('en-US')} to ${a.end.toLocaleString('en-US')})`);
  }
}
