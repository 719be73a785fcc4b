// Instruction datasets: Alpaca records {instruction, input, output} or chat records {messages: [{role, content}]},
// from a JSON array, JSON Lines, or parquet (e.g. the Hugging Face dataset vicgalle/alpaca-gpt4, read with hyparquet).
// A malformed file fails with the record number and field at fault.

import { parquetReadObjects } from 'hyparquet';
import { DatasetError } from '../errors.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';

export type TrainRecord =
  | { kind: 'alpaca'; instruction: string; input: string; output: string }
  | { kind: 'chat'; messages: ChatMessage[] };

const ROLES = new Set(['system', 'user', 'assistant']);

function fail(message: string, record?: number, field?: string): never {
  throw new DatasetError(message, { record, field });
}

/** Normalizes one raw record (index i, 0-based; messages count from 1 for people). */
export function toRecord(raw: unknown, i: number): TrainRecord {
  const where = `record ${i + 1}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${where} is not an object: each record is {instruction, input, output} or {messages: [...]}.`, i);
  const r = raw as Record<string, unknown>;
  if ('messages' in r) {
    if (!Array.isArray(r.messages) || r.messages.length === 0) fail(`${where}: "messages" must be a non-empty list of {role, content}.`, i, 'messages');
    const messages = r.messages.map((m, j) => {
      const mm = m as Record<string, unknown>;
      if (typeof mm !== 'object' || mm === null || !ROLES.has(mm.role as string) || typeof mm.content !== 'string') {
        fail(`${where}: messages[${j}] must be {role: "system" | "user" | "assistant", content: string}.`, i, `messages[${j}]`);
      }
      return { role: mm.role as ChatMessage['role'], content: mm.content as string };
    });
    if (messages[messages.length - 1].role !== 'assistant') fail(`${where}: the last message must be the assistant's answer (the part that is trained on).`, i, 'messages');
    return { kind: 'chat', messages };
  }
  for (const field of ['instruction', 'output'] as const) {
    if (typeof r[field] !== 'string') fail(`${where}: "${field}" is ${r[field] === undefined ? 'missing' : `a ${typeof r[field]}`}; Alpaca records need string "instruction" and "output" (and an optional "input").`, i, field);
  }
  if (r.input !== undefined && r.input !== null && typeof r.input !== 'string') fail(`${where}: "input" must be a string when present.`, i, 'input');
  if ((r.instruction as string).trim() === '') fail(`${where}: "instruction" is empty.`, i, 'instruction');
  return { kind: 'alpaca', instruction: r.instruction as string, input: (r.input as string | undefined) ?? '', output: r.output as string };
}

/** The largest dataset file read whole (the GPT-4 Alpaca data is 43 MB as JSON); bigger ones should be split. */
export const MAX_DATASET_BYTES = 1 << 30;

/** Parses a dataset file by its name's extension (.json, .jsonl / .ndjson, .parquet). */
export async function parseDataset(bytes: Uint8Array, fileName: string, maxBytes = MAX_DATASET_BYTES): Promise<TrainRecord[]> {
  if (bytes.byteLength > maxBytes) {
    fail(`${fileName} is ${(bytes.byteLength / 2 ** 20).toFixed(0)} MiB, over the ${(maxBytes / 2 ** 20).toFixed(0)} MiB a dataset file can be: split it, or keep the records you will train on.`);
  }
  const lower = fileName.toLowerCase();
  let raws: unknown[];
  if (lower.endsWith('.parquet')) {
    try {
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      raws = await parquetReadObjects({ file: ab });
    } catch (e) {
      fail(`${fileName} is not a readable parquet file (${(e as Error).message}).`);
    }
  } else {
    const text = new TextDecoder().decode(bytes);
    if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) {
      raws = [];
      text.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        try {
          raws.push(JSON.parse(line));
        } catch {
          fail(`${fileName}, line ${i + 1} is not valid JSON.`, raws.length);
        }
      });
    } else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        fail(`${fileName} is not valid JSON (${(e as Error).message}). Use a JSON array of records, or JSON Lines (.jsonl).`);
      }
      if (!Array.isArray(parsed)) fail(`${fileName} holds a JSON ${typeof parsed}, not an array of records.`);
      raws = parsed;
    }
  }
  if (raws.length === 0) fail(`${fileName} has no records.`);
  return raws.map(toRecord);
}

/** Records as a file again: a JSON array or JSON Lines, in the shapes parseDataset reads. */
export function datasetFile(records: TrainRecord[], as: 'json' | 'jsonl'): Uint8Array {
  const raw = records.map((r) => (r.kind === 'chat' ? { messages: r.messages } : { instruction: r.instruction, input: r.input, output: r.output }));
  const text = as === 'jsonl' ? raw.map((r) => JSON.stringify(r)).join('\n') + '\n' : JSON.stringify(raw, null, 1);
  return new TextEncoder().encode(text);
}
