// Evaluation sets: the paper's 252 user-oriented instructions (with reference answers), the 80 Vicuna questions (no
// references), or any instruction dataset (Alpaca or chat records: the answer is the reference), whole or its
// validation split as training makes it. Each example has a stable id, so results can be kept and resumed by id.

import { parseDataset, type TrainRecord } from '../data/records.js';
import { DatasetError } from '../errors.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import { splitTrainValidation } from '../data/batches.js';

export interface EvalExample {
  id: string;
  instruction: string;
  /** Alpaca's optional input. */
  input: string;
  /** Earlier turns for chat records (the last user turn is `instruction`). */
  history?: ChatMessage[];
  reference?: string;
  category?: string;
}

export type BuiltinSet = 'user-oriented' | 'vicuna80';
export const BUILTIN_SETS: Record<BuiltinSet, string> = {
  'user-oriented': 'user_oriented_instructions.jsonl',
  vicuna80: 'vicuna_question_80.jsonl',
};

function lines(bytes: Uint8Array, name: string): unknown[] {
  return new TextDecoder().decode(bytes).split('\n').filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new DatasetError(`${name}, line ${i + 1} is not valid JSON.`, { record: i });
    }
  });
}

const str = (v: unknown, what: string, i: number, name: string): string => {
  if (typeof v !== 'string') throw new DatasetError(`${name}, record ${i + 1}: "${what}" must be a string.`, { record: i, field: what });
  return v;
};

/** The paper's user-oriented instructions: the first instance of each is the example (all have one). */
export function userOrientedSet(bytes: Uint8Array, name = BUILTIN_SETS['user-oriented']): EvalExample[] {
  return lines(bytes, name).map((raw, i) => {
    const r = raw as { id?: unknown; motivation_app?: unknown; instruction?: unknown; instances?: { input?: unknown; output?: unknown }[] };
    const inst = Array.isArray(r.instances) ? r.instances[0] : undefined;
    if (!inst) throw new DatasetError(`${name}, record ${i + 1} has no instances.`, { record: i });
    return {
      id: str(r.id, 'id', i, name), instruction: str(r.instruction, 'instruction', i, name),
      input: typeof inst.input === 'string' ? inst.input : '', reference: str(inst.output, 'output', i, name),
      category: typeof r.motivation_app === 'string' ? r.motivation_app : undefined,
    };
  });
}

export function vicunaSet(bytes: Uint8Array, name = BUILTIN_SETS.vicuna80): EvalExample[] {
  return lines(bytes, name).map((raw, i) => {
    const r = raw as { question_id?: unknown; text?: unknown; category?: unknown };
    return { id: `vicuna_${String(r.question_id ?? i + 1)}`, instruction: str(r.text, 'text', i, name), input: '', category: typeof r.category === 'string' ? r.category : undefined };
  });
}

export function recordsToExamples(records: TrainRecord[], prefix: string): EvalExample[] {
  return records.map((r, i) => {
    if (r.kind === 'alpaca') return { id: `${prefix}${i}`, instruction: r.instruction, input: r.input, reference: r.output };
    const lastUser = r.messages.map((m) => m.role).lastIndexOf('user');
    if (lastUser < 0) throw new DatasetError(`record ${i + 1} has no user message to answer.`, { record: i });
    return {
      id: `${prefix}${i}`, instruction: r.messages[lastUser].content, input: '',
      history: r.messages.slice(0, lastUser), reference: r.messages.at(-1)!.content,
    };
  });
}

/**
 * The records training holds out for validation (the trainer's seeded split, data/batches.ts), so "the validation split
 * of the dataset I trained on" means records the run did not learn from (exactly, when no record was dropped as too
 * long for the cutoff).
 */
export function validationExamples(records: TrainRecord[], fraction: number, seed: number, prefix: string): EvalExample[] {
  const { validation } = splitTrainValidation(records.map((_, i) => i), fraction, seed);
  const all = recordsToExamples(records, prefix);
  return validation.map((i) => all[i]);
}

/** A set from a file: the two bundled formats by their shape, otherwise an instruction dataset. */
export async function evalSetFromFile(bytes: Uint8Array, name: string): Promise<EvalExample[]> {
  const head = new TextDecoder().decode(bytes.subarray(0, 4096));
  if (/^\s*\{[^\n]*"instances"\s*:/.test(head)) return userOrientedSet(bytes, name);
  if (/^\s*\{[^\n]*"question_id"\s*:/.test(head)) return vicunaSet(bytes, name);
  return recordsToExamples(await parseDataset(bytes, name), `${name.replace(/\.[^.]+$/, '')}#`);
}
