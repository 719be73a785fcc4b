// A training checkpoint (the Checkpoint the trainer takes: adapter, optimizer moments, step, epoch, data cursor,
// curves, settings) as files, for disk and for export:
//   adapter_config.json, adapter_model.safetensors   the adapter at this step, loadable as any PEFT adapter
//   optimizer.safetensors                            A, B and Adam's moments per (layer, group), F32
//   trainer_state.json                               everything else, with the dataset's identity
// Every value is checked on the way back in: a checkpoint is whole and finite or it is refused.

import { InvalidArgumentError } from '../errors.js';
import { decodeToF32, finiteCheck, nonFinite } from '../formats/dtype.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../formats/safetensors.js';
import type { ModelFiles } from '../model-files.js';
import { readJson } from '../model-files.js';
import { DEFAULT_TRAIN_CONFIG, validateTrainConfig, type TrainConfig } from './train-config.js';
import { validatePreferenceConfig, type PreferenceConfig } from './preference.js';
import type { OptimizerState } from './step.js';
import type { Checkpoint } from './trainer.js';

export const CHECKPOINT_FORMAT = 'lora-lab-checkpoint';
export const CHECKPOINT_VERSION = 1;

/** Where the data came from, so a resumed run can refuse a different dataset. */
export interface CheckpointData {
  file: string;
  sha256: string;
  format: 'alpaca' | 'chat';
  maxRecords?: number;
}

const FIELDS = ['a', 'b', 'mA', 'vA', 'mB', 'vB'] as const;

export function checkpointFiles(c: Checkpoint, data: CheckpointData): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const tensors: TensorToWrite[] = c.state.tensors.flatMap((t) => FIELDS.map((f) => ({
    name: `${t.key}.${f}`, dtype: 'F32', shape: [t[f].length], data: new Uint8Array(t[f].buffer, t[f].byteOffset, t[f].byteLength),
  })));
  const state = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION,
    name: c.name, baseModel: c.baseModel, ...(c.baseFingerprint ? { baseFingerprint: c.baseFingerprint } : {}), step: c.step, totalSteps: c.totalSteps, epoch: c.epoch, cursor: c.cursor,
    elapsedMs: c.elapsedMs, config: c.config, history: c.history, data,
    ...(c.preference ? { preference: c.preference } : {}),
  };
  return new Map([
    ['adapter_config.json', enc.encode(c.peft.config)],
    ['adapter_model.safetensors', c.peft.safetensors],
    ['optimizer.safetensors', writeSafetensors(tensors, { format: CHECKPOINT_FORMAT })],
    ['trainer_state.json', enc.encode(JSON.stringify(state, null, 1) + '\n')],
  ]);
}

function bad(message: string): never {
  throw new InvalidArgumentError(`${message} The checkpoint is damaged or not a LoRA Lab checkpoint: start a new run.`);
}

const int = (v: unknown, what: string) => (Number.isInteger(v) && (v as number) >= 0 ? (v as number) : bad(`trainer_state.json: ${what} is ${JSON.stringify(v)}.`));

/** Reads a checkpoint written by `checkpointFiles`, checking its shape and that every value is finite. */
export async function readCheckpointFiles(files: ModelFiles): Promise<{ checkpoint: Checkpoint; data: CheckpointData }> {
  const s = (await readJson(files, 'trainer_state.json'))!;
  if (s.format !== CHECKPOINT_FORMAT) bad(`trainer_state.json has format ${JSON.stringify(s.format)}.`);
  if (s.version !== CHECKPOINT_VERSION) bad(`trainer_state.json is version ${JSON.stringify(s.version)}; this LoRA Lab reads version ${CHECKPOINT_VERSION}.`);
  const config = { ...DEFAULT_TRAIN_CONFIG, ...(s.config as Partial<TrainConfig>) };
  validateTrainConfig(config);
  const data = s.data as CheckpointData;
  if (typeof data !== 'object' || data === null || typeof data.sha256 !== 'string' || typeof data.file !== 'string') bad('trainer_state.json has no dataset record.');
  const history = s.history as Checkpoint['history'];
  if (!history || !Array.isArray(history.train) || !Array.isArray(history.validation)) bad('trainer_state.json has no loss history.');

  const opt = readSafetensors((await files.bytes('optimizer.safetensors'))!, 'optimizer.safetensors');
  const byKey = new Map<string, Partial<Record<(typeof FIELDS)[number], Float32Array>>>();
  for (const t of opt.header.tensors) {
    const m = /^(\d+\.\w+)\.(a|b|mA|vA|mB|vB)$/.exec(t.name);
    if (!m || t.dtype !== 'F32') bad(`optimizer.safetensors holds an unexpected tensor "${t.name}" (${t.dtype}).`);
    const check = finiteCheck();
    const values = decodeToF32(opt.data.get(t.name)!, 'F32', check);
    if (check.index >= 0) throw nonFinite('optimizer.safetensors', t.name, check);
    const entry = byKey.get(m[1]) ?? {};
    entry[m[2] as (typeof FIELDS)[number]] = values;
    byKey.set(m[1], entry);
  }
  const tensors: OptimizerState['tensors'] = [...byKey].map(([key, e]) => {
    for (const f of FIELDS) if (!e[f]) bad(`optimizer.safetensors lacks ${key}.${f}.`);
    return { key, a: e.a!, b: e.b!, mA: e.mA!, vA: e.vA!, mB: e.mB!, vB: e.vB! };
  });
  const peft = {
    config: new TextDecoder().decode((await files.bytes('adapter_config.json'))!),
    safetensors: (await files.bytes('adapter_model.safetensors'))!,
  };
  const step = int(s.step, 'step');
  const totalSteps = int(s.totalSteps, 'totalSteps');
  const epoch = int(s.epoch, 'epoch');
  const cursor = int(s.cursor, 'cursor');
  // The counters agree with each other and with the history: each step consumed gradAccumulation micro-batches.
  const batches = step * config.gradAccumulation;
  if (step > totalSteps) bad(`trainer_state.json: step ${step} is past the run's ${totalSteps} steps.`);
  if (config.steps > 0 && totalSteps !== config.steps) bad(`trainer_state.json: totalSteps ${totalSteps} is not the config's ${config.steps} steps.`);
  if (epoch > batches || cursor > batches) bad(`trainer_state.json: epoch ${epoch} and data position ${cursor} cannot follow from ${step} steps of ${config.gradAccumulation} micro-batches.`);
  if (history.train.length !== step || history.train.some((h, i) => !Array.isArray(h) || h[0] !== i + 1 || (h[1] !== null && typeof h[1] !== 'number'))) {
    bad(`trainer_state.json: the loss history has ${history.train.length} steps, not the ${step} steps done, one per step in order.`);
  }
  if (history.validation.some((h) => !Array.isArray(h) || !Number.isInteger(h[0]) || h[0] < 1 || h[0] > step)) bad('trainer_state.json: the validation history names steps the run has not taken.');
  if (data.maxRecords !== undefined && !(Number.isInteger(data.maxRecords) && data.maxRecords >= 1)) bad(`trainer_state.json: the dataset record's maxRecords is ${JSON.stringify(data.maxRecords)}.`);
  const checkpoint: Checkpoint = {
    name: typeof s.name === 'string' ? s.name : bad('trainer_state.json has no run name.'),
    baseModel: typeof s.baseModel === 'string' ? s.baseModel : null,
    baseFingerprint: typeof s.baseFingerprint === 'string' && /^[0-9a-f]{16}$/.test(s.baseFingerprint) ? s.baseFingerprint : undefined,
    config, step, totalSteps, epoch, cursor, elapsedMs: Number(s.elapsedMs) || 0, history, state: { tensors }, peft,
  };
  if (s.preference !== undefined) {
    // A preference run's objective (DPO, ORPO, SimPO) and its settings.
    const pref = s.preference as PreferenceConfig & { referenceAdapter?: unknown };
    try { validatePreferenceConfig(pref); } catch (e) { bad(`its preference objective is not one this LoRA Lab runs (${(e as Error).message}).`); }
    checkpoint.preference = { objective: pref.objective, beta: pref.beta, labelSmoothing: pref.labelSmoothing, gamma: pref.gamma, referenceAdapter: typeof pref.referenceAdapter === 'string' ? pref.referenceAdapter : null };
  }
  return { checkpoint, data };
}
