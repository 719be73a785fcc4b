// The demo comparison in one click (the first screen offers it, and so does Compare): the built-in model beside its
// Chinese and short-answer adapters, greedy, on an instruction the model was trained on.

import { BUILTIN_MODEL_ID } from '../lib/hub/source.js';
import type { EngineState } from './engine.svelte.ts';
import { DEMO_PROMPT, type CompareForm } from './forms.svelte.ts';

export const DEMO_ADAPTERS = ['demo-zh', 'demo-short'] as const;

/** True when the built-in model and both demo adapters are loaded. */
export function demoLoaded(engine: EngineState): boolean {
  return engine.info?.modelId === BUILTIN_MODEL_ID && DEMO_ADAPTERS.every((n) => engine.shelf.adapters.some((a) => a.name === n));
}

/**
 * Loads what the demo needs (only what is missing), sets Compare's columns and sampling, and runs the comparison.
 * False when the model or an adapter could not be loaded (the engine shows why).
 */
export async function runDemo(engine: EngineState, form: CompareForm): Promise<boolean> {
  if (engine.info?.modelId !== BUILTIN_MODEL_ID && !(await engine.load({ kind: 'builtin' }))) return false;
  for (const name of DEMO_ADAPTERS) {
    if (!engine.shelf.adapters.some((a) => a.name === name)) await engine.shelf.load({ kind: 'builtin', name }, name);
  }
  if (!demoLoaded(engine)) return false;
  form.specs = [{ adapter: null, strength: 1 }, ...DEMO_ADAPTERS.map((adapter) => ({ adapter, strength: 1 }))];
  Object.assign(form.settings, { temperature: 0, repetitionPenalty: 1, maxNewTokens: 96 });
  if (!form.prompt.trim()) form.prompt = DEMO_PROMPT;
  const { maxNewTokens, format, stop, ...sampling } = $state.snapshot(form.settings);
  await engine.generation.compare({ prompt: form.prompt, format, maxNewTokens, sampling, stopStrings: stop ? [stop] : [] }, form.specs.map((s) => ({ ...s })));
  return true;
}
