// The built-in model's training step in headless Chromium (SwiftShader's WebGPU where there is no GPU), as a person
// gets it: the app's engine worker, the bundled GPT-4 Alpaca sample, the Train view's default settings (micro-batch
// 4, 4 accumulated, cutoff 256, rank 8 on q and v), a few optimizer steps. Prints each step's time; the first includes
// compiling the training kernels. Figures only. Minutes on a software GPU.
//
//   npx tsx scripts/bench/browser-train.ts [--steps 3] [--first-answer]

import { createServer as viteServer } from 'vite';
import { chromium } from 'playwright-core';
import { chromiumArgs } from '../../vite.config.js';
import type { Answer, BrowserTrainResult, FirstAnswer } from './browser-train-page.js';

const args = process.argv.slice(2);
const stepsAt = args.indexOf('--steps');
const steps = stepsAt >= 0 ? Number(args[stepsAt + 1]) : 3;
// No watching: an edit to the tree mid-run would reload the page and lose the run.
const vite = await viteServer({
  server: { host: '127.0.0.1', port: 0, hmr: false, watch: null }, logLevel: 'warn',
  optimizeDeps: { entries: ['scripts/bench/browser-train.html', 'workers/engine.worker.ts'] },
});
await vite.listen();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs, headless: true });
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || process.env.VERBOSE) console.log(`[page] ${m.text()}`); });
  await page.goto(`${vite.resolvedUrls!.local[0]}scripts/bench/browser-train.html`);
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 300_000 });
  if (args.includes('--first-answer')) {
    const pause = 10_000;
    const f = await page.evaluate((ms) => (window as unknown as { firstAnswer: (ms: number) => Promise<FirstAnswer> }).firstAnswer(ms), pause);
    const said = (a: Answer) => `${Math.round(a.ms)} ms${a.quickSteps > 0 ? ` (${a.quickSteps} quick steps)` : ''}`;
    console.log(`built-in model in Chromium, a fresh page: load ${Math.round(f.loadMs)} ms, first answer (8 tokens) ${said(f.first)}, the same again ${said(f.again)}, again ${pause / 1000} s later ${said(f.later)}`);
  } else {
    const r = await page.evaluate((n) => (window as unknown as { runTraining: (n: number) => Promise<BrowserTrainResult> }).runTraining(n), steps);
    const steady = r.stepMs.slice(1);
    const mean = steady.reduce((s, x) => s + x, 0) / Math.max(1, steady.length);
    console.log(JSON.stringify(r));
    console.log(`built-in model, default training step in Chromium: first ${Math.round(r.stepMs[0])} ms (compiles included), then ${steady.map((x) => Math.round(x)).join(', ')} ms (mean ${Math.round(mean)} ms); tokens/s ${r.tokensPerSecond.map((x) => x.toFixed(1)).join(', ')}`);
  }
} finally {
  await browser.close();
  await vite.close();
}
