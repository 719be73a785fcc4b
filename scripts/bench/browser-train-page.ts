// In the page of browser-train.ts: the app's engine worker loads the built-in model and trains on the bundled GPT-4
// Alpaca sample with the Train view's default settings for a few optimizer steps; each step's time comes from the
// run's own progress (elapsed time at each step), so the first step (compiles included) is reported apart. Or
// (--first-answer) a fresh page's first answer, every pipeline it needs compiled on the way, and the same again.

import { EngineClient } from '../../src/lib/worker/client.js';

/** The app's engine worker, as the page starts it. */
const client = () => new EngineClient(() => new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' }));

export interface BrowserTrainResult { adapter: string; loadS: number; stepMs: number[]; tokensPerSecond: number[] }

async function run(steps: number): Promise<BrowserTrainResult> {
  const c = client();
  try {
    const info = await c.init();
    const t0 = performance.now();
    await c.load({ kind: 'builtin' });
    const loadS = (performance.now() - t0) / 1000;
    const stepMs: number[] = [];
    const tokensPerSecond: number[] = [];
    let last = 0;
    const run = c.train({ name: `bench-${Date.now()}`, dataset: { kind: 'builtin' }, format: 'alpaca', config: { steps, evalEvery: 0, checkpointEvery: 0 } }, {
      onStep: (m) => { stepMs.push(m.elapsedMs - last); last = m.elapsedMs; tokensPerSecond.push(m.tokensPerSecond); console.log(`step ${m.step}: ${Math.round(m.elapsedMs)} ms`); },
    });
    await run.done;
    return { adapter: JSON.stringify(info).slice(0, 200), loadS, stepMs, tokensPerSecond };
  } finally {
    c.terminate();
  }
}

/**
 * A fresh page's first answer (every pipeline it needs compiled on the way), the same again at once, and again after
 * `pauseMs` (a person reading the answer, while the kernels a quick start skipped compile), in ms.
 */
async function firstAnswer(pauseMs: number): Promise<FirstAnswer> {
  const c = client();
  try {
    await c.init();
    const t0 = performance.now();
    await c.load({ kind: 'builtin' });
    const loadMs = performance.now() - t0;
    const ask = async () => {
      const t = performance.now();
      const r = await c.generate({ prompt: 'Give three tips for staying healthy, and say why each one of them helps a person.', format: 'raw', maxNewTokens: 8, sampling: { temperature: 0 } }).done;
      return { ms: performance.now() - t, quickSteps: r.quickSteps };
    };
    const first = await ask();
    const again = await ask();
    await new Promise((r) => setTimeout(r, pauseMs));
    const later = await ask();
    return { loadMs, first, again, later };
  } finally {
    c.terminate();
  }
}

/** An answer's time, and its steps that ran a one-row kernel in place of one not compiled yet (quick start). */
export interface Answer { ms: number; quickSteps: number }
export interface FirstAnswer { loadMs: number; first: Answer; again: Answer; later: Answer }

Object.assign(window, { runTraining: run, firstAnswer });
document.body.dataset.ready = 'true';
