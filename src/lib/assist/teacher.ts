// The teacher: a backend answers a list of instructions, one at a time, and the answers become a new Alpaca dataset,
// as GPT-4 wrote the paper's training data. The job is a record (instructions, settings, answers so far), written
// after every answer, so a stopped or interrupted job resumes where it was; an answer cut off by Stop is not kept.

import { userMessage } from '../tokenizer/alpaca.js';
import { datasetFile, type TrainRecord } from '../data/records.js';
import { InvalidArgumentError } from '../errors.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import type { AssistantBackend, CompletionSettings } from './backend.js';

export interface TeacherInstruction {
  instruction: string;
  /** Alpaca's optional input. */
  input: string;
}

export interface TeacherAnswer {
  output: string;
  tokens: number;
  /** 'length' marks an answer cut at the token limit. */
  stopReason: string;
}

export interface TeacherJob {
  id: string;
  /** The dataset's name once finished. */
  name: string;
  createdAt: number;
  /** Where the instructions came from (a dataset's name, a file, "typed"). */
  instructionsFrom: string;
  instructions: TeacherInstruction[];
  systemPrompt: string;
  settings: CompletionSettings;
  /** The backend and model that answer (provenance of every output). */
  teacher: { kind: string; model: string };
  /** One per instruction; null until answered. */
  answers: (TeacherAnswer | null)[];
  status: 'running' | 'stopped' | 'done';
}

export const DEFAULT_TEACHER_SYSTEM = 'You are a helpful assistant. Answer the instruction accurately and completely.';

export function newTeacherJob(init: Omit<TeacherJob, 'answers' | 'status' | 'createdAt' | 'id'> & { id?: string; createdAt?: number }): TeacherJob {
  if (init.instructions.length === 0) throw new InvalidArgumentError('The teacher needs at least one instruction: pick a dataset, a file or type some.');
  const empty = init.instructions.findIndex((x) => x.instruction.trim() === '');
  if (empty >= 0) throw new InvalidArgumentError(`Instruction ${empty + 1} is empty: remove it or write it out.`);
  if (!(init.settings.maxNewTokens >= 1)) throw new InvalidArgumentError('The teacher needs room for at least one new token per answer.');
  const createdAt = init.createdAt ?? Date.now();
  return { ...init, id: init.id ?? `teacher-${createdAt.toString(36)}`, createdAt, answers: init.instructions.map(() => null), status: 'running' };
}

/** The conversation the teacher answers for one instruction (the input, when present, follows it). */
export function teacherMessages(job: Pick<TeacherJob, 'systemPrompt'>, x: TeacherInstruction): ChatMessage[] {
  const user = userMessage(x.instruction, x.input);
  return job.systemPrompt.trim() ? [{ role: 'system', content: job.systemPrompt }, { role: 'user', content: user }] : [{ role: 'user', content: user }];
}

export interface TeacherProgress {
  done: number;
  total: number;
  /** Tokens generated in this session of the job, and the seconds it took. */
  tokens: number;
  seconds: number;
}

export interface TeacherHooks {
  /** Called after each answer, with the job as it now stands: write it to storage here (resume reads it back). */
  onAnswer?: (job: TeacherJob, index: number, progress: TeacherProgress) => void | Promise<void>;
  onText?: (index: number, delta: string) => void;
}

/** Answers every instruction still unanswered, in order; Stop (the signal) ends after keeping the finished answers. */
export async function runTeacher(job: TeacherJob, backend: AssistantBackend, hooks: TeacherHooks = {}, signal?: AbortSignal): Promise<TeacherJob> {
  if (backend.model !== job.teacher.model || backend.kind !== job.teacher.kind) {
    throw new InvalidArgumentError(`This job was started with ${job.teacher.model} (${job.teacher.kind}); load that model to resume it, or start a new job.`);
  }
  let current: TeacherJob = { ...job, answers: [...job.answers], status: 'running' };
  const t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < current.instructions.length; i++) {
    if (current.answers[i]) continue;
    if (signal?.aborted) break;
    const c = await backend.complete(teacherMessages(current, current.instructions[i]), current.settings, (d) => hooks.onText?.(i, d), signal);
    if (c.stopReason === 'aborted') break;
    tokens += c.tokens;
    current = { ...current, answers: current.answers.map((a, j) => (j === i ? { output: c.text.trim(), tokens: c.tokens, stopReason: c.stopReason } : a)) };
    const done = current.answers.filter(Boolean).length;
    if (done === current.answers.length) current.status = 'done';
    await hooks.onAnswer?.(current, i, { done, total: current.answers.length, tokens, seconds: (performance.now() - t0) / 1000 });
  }
  if (current.status !== 'done') current = { ...current, status: 'stopped' };
  return current;
}

/** The answered instructions as Alpaca records (unanswered ones are left out). */
export function teacherRecords(job: TeacherJob): TrainRecord[] {
  const out: TrainRecord[] = [];
  job.instructions.forEach((x, i) => {
    const a = job.answers[i];
    if (a) out.push({ kind: 'alpaca', instruction: x.instruction, input: x.input, output: a.output });
  });
  return out;
}

/** The dataset file (an Alpaca JSON array, as the trainer and other tools read it). */
export function teacherDataset(job: TeacherJob): Uint8Array {
  if (!job.answers.some(Boolean)) throw new InvalidArgumentError('The teacher has answered nothing yet: run it first.');
  return datasetFile(teacherRecords(job), 'json');
}

/** What the dataset records of its making (kept beside it, shown in the dataset list). */
export function teacherProvenance(job: TeacherJob) {
  return {
    teacher: job.teacher,
    systemPrompt: job.systemPrompt,
    settings: job.settings,
    instructionsFrom: job.instructionsFrom,
    answered: job.answers.filter(Boolean).length,
    of: job.instructions.length,
    cutAtLimit: job.answers.filter((a) => a?.stopReason === 'length').length,
    createdAt: job.createdAt,
  };
}
