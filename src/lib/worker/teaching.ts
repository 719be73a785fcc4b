// The worker's teacher requests: the loaded model (through an adapter, if picked) answers instructions, from a kept
// dataset or typed, one at a time; the job is kept after every answer and resumes. Its answers are kept as a dataset
// (Alpaca JSON, with who wrote it and how) after every answer too, so the Train view can use it at once.

import { engineBackend } from '../assist/backend.js';
import { newTeacherJob, runTeacher, teacherDataset, teacherProvenance, type TeacherInstruction, type TeacherJob } from '../assist/teacher.js';
import { parseDataset } from '../data/records.js';
import type { Engine } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import type { EvalProgress } from '../eval/run.js';
import type { LabStore } from '../store/kept.js';
import type { DatasetSource } from '../store/checkpoints.js';

export type InstructionSource =
  | { kind: 'dataset'; dataset: DatasetSource; limit: number }
  /** One instruction per non-empty line. */
  | { kind: 'typed'; text: string };

export interface TeacherSummary {
  id: string;
  name: string;
  teacher: string;
  instructionsFrom: string;
  done: number;
  total: number;
  status: TeacherJob['status'];
  createdAt: number;
  /** The newest answers (for a glance at what the teacher writes). */
  samples: { instruction: string; output: string }[];
}

export interface TeachRequestMap {
  teachStart: {
    request: { name?: string; from?: InstructionSource; systemPrompt?: string; maxNewTokens?: number; temperature?: number; adapter?: string | null; strength?: number; jobId?: string };
    result: TeacherSummary;
  };
  /** A new job for a teacher that runs on the page (web-llm): created and kept here; answers come back by teachKeep. */
  teachPrepare: { request: { name: string; from: InstructionSource; systemPrompt?: string; maxNewTokens?: number; temperature?: number; teacher: { kind: string; model: string } }; result: TeacherJob; immediate: true };
  teachGet: { request: { id: string }; result: TeacherJob; immediate: true };
  teachKeep: { request: { job: TeacherJob }; result: TeacherSummary; immediate: true };
  teachList: { request: Record<string, never>; result: TeacherSummary[]; immediate: true };
  teachDelete: { request: { id: string }; result: TeacherSummary[]; immediate: true };
}

export interface TeachEnv {
  lab: LabStore;
  engine: () => Engine;
  datasetBytes: (d: DatasetSource) => Promise<Uint8Array>;
  datasetName: (d: DatasetSource) => string;
}

function summary(j: TeacherJob): TeacherSummary {
  const answered = j.instructions.map((x, i) => ({ instruction: x.instruction, output: j.answers[i]?.output })).filter((x): x is { instruction: string; output: string } => x.output !== undefined);
  return {
    id: j.id, name: j.name, teacher: j.teacher.model, instructionsFrom: j.instructionsFrom, done: answered.length, total: j.instructions.length,
    status: j.status, createdAt: j.createdAt, samples: answered.slice(-3),
  };
}

export function teachingHandlers(env: TeachEnv, onProgress: (id: number, p: EvalProgress) => void) {
  const { lab } = env;
  const list = async () => (await lab.listTeachers()).map(summary);

  async function instructions(from: InstructionSource): Promise<{ label: string; list: TeacherInstruction[] }> {
    if (from.kind === 'typed') {
      const list = from.text.split('\n').map((l) => l.trim()).filter(Boolean).map((instruction) => ({ instruction, input: '' }));
      return { label: 'typed', list };
    }
    const name = env.datasetName(from.dataset);
    const records = (await parseDataset(await env.datasetBytes(from.dataset), name)).slice(0, from.limit > 0 ? from.limit : undefined);
    const list = records.map((r) => (r.kind === 'alpaca' ? { instruction: r.instruction, input: r.input } : { instruction: r.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '', input: '' }))
      .filter((x) => x.instruction.trim() !== '');
    return { label: name, list };
  }

  /** The answers so far, kept as the dataset named after the job (replaced as answers are added). */
  async function keep(j: TeacherJob): Promise<void> {
    await lab.putTeacher(j);
    if (!j.answers.some(Boolean)) return;
    const bytes = teacherDataset(j);
    await lab.putDataset({ name: j.name, bytes, size: bytes.byteLength, savedAt: Date.now(), provenance: teacherProvenance(j) });
  }

  const kept = async (id: string): Promise<TeacherJob> =>
    (await lab.getTeacher(id)) ?? (() => { throw new InvalidArgumentError(`No teacher job "${id}" is kept: it may have been deleted in another tab.`); })();

  /** A new job, checked (name free, instructions present) and kept before any answer. */
  async function prepare(p: Omit<TeachRequestMap['teachStart']['request'], 'jobId'> & { teacher: { kind: string; model: string } }): Promise<TeacherJob> {
    if (!p.from) throw new InvalidArgumentError('Pick the instructions the teacher answers: a dataset, or type some.');
    const name = (p.name ?? '').trim();
    if (!name) throw new InvalidArgumentError('Name the dataset the teacher writes.');
    if (!/\.(json|jsonl)$/i.test(name)) throw new InvalidArgumentError(`Name the dataset as a file, ending in .json (e.g. ${name}.json).`);
    if (await lab.getDataset(name)) throw new InvalidArgumentError(`A dataset named "${name}" is kept already: pick another name (or delete it on the Storage page).`);
    const from = await instructions(p.from);
    const job = newTeacherJob({
      name, instructionsFrom: from.label, instructions: from.list, systemPrompt: p.systemPrompt ?? '',
      settings: { maxNewTokens: p.maxNewTokens ?? 256, sampling: { temperature: p.temperature ?? 0.7, repetitionPenalty: 1.1 } },
      teacher: p.teacher,
    });
    await lab.putTeacher(job);
    return job;
  }

  return {
    teachPrepare: (p: TeachRequestMap['teachPrepare']['request']) => prepare(p),
    teachGet: (p: { id: string }) => kept(p.id),
    async teachKeep(p: { job: TeacherJob }): Promise<TeacherSummary> {
      await keep(p.job);
      return summary(p.job);
    },
    async teachStart(id: number, p: TeachRequestMap['teachStart']['request'], signal: AbortSignal): Promise<TeacherSummary> {
      const engine = env.engine();
      if (!engine.info) throw new InvalidArgumentError('Load the model that will answer (the teacher) first.');
      const backend = engineBackend((req, onText, s) => engine.chat(req, onText, s), engine.info.label, p.adapter ?? null, p.strength ?? 1);
      let job = p.jobId ? await kept(p.jobId) : await prepare({ ...p, teacher: { kind: backend.kind, model: backend.model } });
      const total = job.instructions.length;
      onProgress(id, { done: job.answers.filter(Boolean).length, total, example: '' });
      try {
        job = await runTeacher(job, backend, {
          onAnswer: async (j, _i, pr) => {
            job = j;
            await keep(j);
            onProgress(id, { done: pr.done, total, example: '' });
          },
        }, signal);
      } finally {
        if (job.status !== 'done') await lab.putTeacher({ ...job, status: 'stopped' });
      }
      await lab.putTeacher(job);
      return summary(job);
    },
    teachList: () => list(),
    async teachDelete(p: { id: string }) {
      await lab.deleteTeacher(p.id);
      return list();
    },
  };
}
