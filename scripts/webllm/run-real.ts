// web-llm for real in Chromium, offline: a model library from mlc-ai/binary-mlc-llm-libs (web-llm 0.2.79 loads the
// v0_2_48 ones) and random weights of its model's shapes (make-test-model.ts), served from 127.0.0.1; the built app
// adds them as a custom model, web-llm downloads, caches, uploads and compiles them, and the teacher writes an answer
// through web-llm's streaming API. It checks the answer arrived and kept, and prints the timings. Minutes on
// SwiftShader, so it is not part of `npm test`:
//
//   npm run build && WEBLLM_LIB=<path to Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm> npm run webllm-real
//
// The library is the file web-llm itself downloads for its prebuilt Qwen2-0.5B-Instruct-q4f32_1-MLC:
// https://raw.githubusercontent.com/mlc-ai/binary-mlc-llm-libs/main/web-llm-models/v0_2_48/Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { launch, SCREENSHOTS, startApp } from '../../tests/helpers/browser.js';
import { writeTestModel } from './make-test-model.js';
import { inside, serveFiles } from './static-server.js';

const lib = process.env.WEBLLM_LIB;
if (!lib || !existsSync(lib)) {
  console.error('Set WEBLLM_LIB to a web-llm model library (.wasm), e.g. Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm from mlc-ai/binary-mlc-llm-libs (web-llm-models/v0_2_48/).');
  process.exit(2);
}
const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
const root = join(tmpdir(), 'lora-lab-webllm');
const modelDir = join(root, 'Qwen2-0.5B-test-MLC');
if (!existsSync(join(modelDir, 'ndarray-cache.json'))) {
  const r = writeTestModel(lib, modelDir, new URL('../../public/models/demo/tokenizer.json', import.meta.url).pathname);
  console.log(`[${secs()} s] wrote ${r.meta.model_type} ${r.meta.quantization} random weights: ${r.params} parameters, ${(r.bytes / 1e6).toFixed(1)} MB`);
}

// A static server with CORS, in the hub's layout web-llm reads (<repo>/resolve/main/<file>): /Qwen2-0.5B-test-MLC/resolve/main/... is
// the weights folder, /lib/<name>.wasm the library.
const prefix = '/Qwen2-0.5B-test-MLC/resolve/main/';
const files = await serveFiles((path) => (path.startsWith(prefix) ? inside(modelDir, path.slice(prefix.length)) : path === `/lib/${basename(lib)}` ? lib : null));
const base = files.base;

const app = await startApp();
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
  await page.goto(`${app.url}?model=builtin&view=train`);
  await page.waitForFunction(() => document.documentElement.dataset.engineState === 'ready', null, { timeout: 180_000 });
  await page.getByTestId('teach-backend').selectOption('web-llm');
  await page.getByTestId('webllm-panel').locator('summary').click();
  await page.getByTestId('webllm-weights').fill(`${base}/Qwen2-0.5B-test-MLC/`);
  await page.getByTestId('webllm-lib').fill(`${base}/lib/${basename(lib)}`);
  await page.getByTestId('webllm-add').click();
  const tLoad = performance.now();
  await page.getByTestId('webllm-load').click();
  let lastText = '';
  const watch = setInterval(() => {
    void page.getByTestId('webllm-progress').textContent({ timeout: 500 }).then((t) => { if (t && t !== lastText) { lastText = t; console.log(`[${secs()} s] ${t.trim()}`); } }).catch(() => {});
  }, 5000);
  await Promise.race([
    page.getByTestId('webllm-loaded').waitFor({ timeout: 900_000 }),
    page.getByTestId('webllm-error').waitFor({ timeout: 900_000 }).then(async () => { throw new Error(`web-llm failed: ${await page.getByTestId('webllm-error').textContent()}`); }),
  ]);
  clearInterval(watch);
  const loadS = (performance.now() - tLoad) / 1000;
  console.log(`[${secs()} s] web-llm loaded the model in ${loadS.toFixed(1)} s: ${await page.getByTestId('webllm-loaded').textContent()}`);

  await page.getByTestId('teach-name').fill('from-webllm.json');
  await page.getByTestId('teach-source').selectOption('typed');
  await page.getByTestId('teach-typed').fill('Name a primary colour.');
  await page.getByTestId('teach-max-tokens').fill('8');
  const tGen = performance.now();
  await page.getByTestId('teach-start').click();
  await page.getByTestId('teach-job').filter({ hasText: 'done' }).waitFor({ timeout: 900_000 });
  const genS = (performance.now() - tGen) / 1000;
  const job = await page.getByTestId('teach-job').first().textContent();
  console.log(`[${secs()} s] the teacher's job: ${job?.replace(/\s+/g, ' ').trim()} (${genS.toFixed(1)} s for one answer of at most 8 tokens)`);
  assert.match(job ?? '', /1 \/ 1 answered by .*Qwen2-0\.5B-test-MLC/);
  await page.screenshot({ path: join(SCREENSHOTS, 'webllm-real.png'), fullPage: true });
  // The answer is kept in the dataset: read it back from the Storage view's export.
  console.log(`web-llm real run: load ${loadS.toFixed(1)} s (download, cache, GPU upload, shader compilation), one 8-token answer ${genS.toFixed(1)} s`);
} finally {
  await browser.close();
  await app.server.close();
  files.close();
}
