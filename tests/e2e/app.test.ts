// End to end: the built app in headless Chromium. Load the built-in model, chat (streamed), stop; screenshots.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { SAMPLING_LIMITS } from '../../src/lib/model/sampling.js';
import { launch, screenshot, startApp } from '../helpers/browser.js';
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader } from '@zip.js/zip.js';

describe('the app', () => {
  let server: PreviewServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    const app = await startApp();
    server = app.server;
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(app.url);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('loads the built-in model with progress, streams an answer, and stops on request', async () => {
    await page.getByTestId('gpu').waitFor({ timeout: 60_000 });
    await page.getByTestId('load').click();
    await page.getByTestId('model-card').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('model-note').textContent()).toContain('trained from scratch');
    expect(await page.getByTestId('model-precision').textContent()).toContain('f16'); // SwiftShader: f16 weights, no shader-f16 needed

    await page.getByTestId('chat-settings').locator('summary').click();
    // The input offers exactly the range the engine accepts.
    expect(await page.getByTestId('chat-temperature').getAttribute('max')).toBe(String(SAMPLING_LIMITS.temperature.max));
    await page.getByTestId('chat-max-tokens').fill('24');
    await page.getByTestId('prompt').fill('Write a haiku about WebGPU.');
    await page.getByTestId('prompt').press('Control+Enter');
    await page.getByTestId('tokens-per-second').waitFor({ timeout: 120_000 });
    const out = await page.getByTestId('output').textContent();
    expect(out!.length).toBeGreaterThan(10);
    expect(await page.getByTestId('stats').textContent()).toMatch(/tokens\/s.* first token/s);
    await screenshot(page, 'e2e-generate');

    // A long generation, stopped after some text has streamed.
    await page.getByTestId('chat-max-tokens').fill('1000');
    await page.getByTestId('prompt').fill('Describe a process of making crepes.'); // a long answer it knows by heart
    await page.getByTestId('generate').click();
    // Text streams in, or an error says why not (then the assertion below shows it rather than a timeout).
    await page.waitForFunction(() => (document.querySelector('[data-testid=output]')?.textContent ?? '').length > 20 || !!document.querySelector('[data-testid=chat-error]'), null, { timeout: 120_000 });
    expect(await page.getByTestId('chat-error').count()).toBe(0);
    await page.getByTestId('stop').click();
    await page.getByTestId('regenerate').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('stats').textContent()).toMatch(/stopped/);
    await screenshot(page, 'e2e-stopped');
    expect(consoleErrors).toEqual([]);
  });

  it('takes a dropped adapter folder and compares base and two adapters in three columns', async () => {
    // Drop: the page builds File objects from the adapter's two files, as a drag from the desktop delivers them.
    await page.evaluate(async () => {
      const dt = new DataTransfer();
      for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
        const blob = await (await fetch(`/adapters/demo-zh/${name}`)).blob();
        dt.items.add(new File([blob], name));
      }
      document.querySelector('[data-testid=adapter-drop]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.getByTestId('adapter').first().waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'demo-short' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=adapter]').length === 2, null, { timeout: 60_000 });
    expect(await page.getByTestId('adapter-shelf').textContent()).toMatch(/dropped adapter.*rank 16.*demo-short.*rank 16/s);

    await page.getByTestId('compare-tab').click();
    await page.getByTestId('add-column').click();
    const selects = page.locator('[data-testid=column-spec] select');
    await selects.nth(1).selectOption('demo-short');
    await selects.nth(2).selectOption('dropped adapter');
    await page.locator('[data-testid=column-spec] input[type=range]').nth(2).fill('0.8');
    // Long enough for demo-short to end its one sentence where the base goes on.
    await page.locator('input[type=number]').nth(5).fill('40');
    await page.getByTestId('compare-prompt').fill('Name three primary colors.');
    await page.getByTestId('compare-run').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=column-stats][data-done]').length === 3, null, { timeout: 180_000 });
    const outputs = await page.getByTestId('column-output').allTextContents();
    expect(outputs.length).toBe(3);
    expect(new Set(outputs).size).toBe(3);
    expect(await page.getByTestId('divergence').textContent()).toMatch(/diverge at token \d+/);
    expect(await page.locator('[data-testid=column] strong').allTextContents()).toEqual(['base', 'demo-short × 1', 'dropped adapter × 0.8']);
    await screenshot(page, 'e2e-compare');
    // On a phone the three columns keep a readable width and scroll sideways, rather than shrink to slivers.
    await page.setViewportSize({ width: 390, height: 844 });
    const layout = await page.getByTestId('columns').evaluate((el) => ({
      scroll: el.scrollWidth, client: el.clientWidth, widths: [...el.querySelectorAll('[data-testid=column]')].map((c) => c.getBoundingClientRect().width),
    }));
    expect(Math.min(...layout.widths)).toBeGreaterThan(200);
    expect(layout.scroll).toBeGreaterThan(layout.client);
    await screenshot(page, 'e2e-compare-phone');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('an adapter exported from the shelf as a PEFT .zip loads back by dropping it, and gives the same tokens', async () => {
    const before = await page.getByTestId('column-output').allTextContents();
    const row = page.getByTestId('adapter').filter({ hasText: 'demo-short' });
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('export-adapter').click()]);
    expect(download.suggestedFilename()).toBe('demo-short.zip');
    const zip = readFileSync((await download.path())!);
    // Where the browser can write into a folder the person picks, the same files go there (the picker answers with
    // the origin's private folder here: a dialog cannot be clicked headless).
    await page.evaluate(() => { (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = () => navigator.storage.getDirectory(); });
    await row.getByTestId('save-adapter-folder').click();
    const readSaved = () => page.evaluate(async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('demo-short').catch(() => null);
      if (!dir) return null;
      const out: Record<string, number[]> = {};
      for (const name of ['adapter_config.json', 'adapter_model.safetensors', 'README.md']) {
        const f = await (await dir.getFileHandle(name).catch(() => null))?.getFile();
        if (!f) return null;
        out[name] = [...new Uint8Array(await f.arrayBuffer())];
      }
      return out;
    });
    let saved = await readSaved();
    for (let i = 0; !saved && i < 120; i++) { await page.waitForTimeout(250); saved = await readSaved(); }
    expect(saved, 'the folder was written').not.toBeNull();
    const entries = await new ZipReader(new Uint8ArrayReader(new Uint8Array(zip))).getEntries();
    for (const e of entries.filter((x) => !x.directory)) {
      const bytes = await (e as unknown as { getData: (w: Uint8ArrayWriter) => Promise<Uint8Array> }).getData(new Uint8ArrayWriter());
      expect(Buffer.from(saved![e.filename.replace('demo-short/', '')]).equals(Buffer.from(bytes)), e.filename).toBe(true);
    }
    await row.getByRole('button', { name: 'Remove' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=adapter]').length === 1, null, { timeout: 30_000 });
    // The column that showed demo-short keeps its name, marked removed, and Compare says why it cannot run.
    const columnTwo = page.locator('[data-testid=column-spec] select').nth(1);
    expect(await columnTwo.inputValue()).toBe('demo-short');
    expect(await columnTwo.locator('option:checked').textContent()).toBe('demo-short (removed)');
    expect(await page.getByTestId('compare-run').isDisabled()).toBe(true);
    expect(await page.getByTestId('compare-why-not').textContent()).toMatch(/demo-short is no longer loaded/);
    await page.evaluate(async (bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'demo-short.zip', { type: 'application/zip' }));
      document.querySelector('[data-testid=adapter-drop]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, [...zip]);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=adapter]').length === 2, null, { timeout: 60_000 });
    const selects = page.locator('[data-testid=column-spec] select');
    await selects.nth(1).selectOption('demo-short');
    await page.getByTestId('compare-run').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=column-stats][data-done]').length === 3, null, { timeout: 180_000 });
    expect(await page.getByTestId('column-output').allTextContents()).toEqual(before);
  });

  it('trains a few steps from the UI: the loss chart draws and the adapter appears in the comparison', async () => {
    await page.getByTestId('train-tab').click();
    await page.getByTestId('dataset-preview').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('dataset-summary').textContent()).toMatch(/999 records \(412 with input\)/);
    expect(await page.getByTestId('dataset-preview').textContent()).toMatch(/^Below is an instruction that describes a task/);
    await page.getByTestId('adapter-name').fill('ui-trained');
    await page.getByTestId('train-steps').fill('2');
    await page.getByTestId('train-cutoff').fill('72');
    // One sequence a step: training on SwiftShader is slow, and the UI is what is tested here.
    await page.getByLabel('Micro-batch').fill('1');
    await page.getByLabel('Grad. accumulation').fill('1');
    await page.getByLabel('Records used').fill('8');
    await page.getByTestId('train-start').click();
    // At once, before the first step (its kernels compile for a minute on SwiftShader): what it is doing, and for how long.
    expect(await page.getByTestId('train-phase').textContent({ timeout: 1000 })).toMatch(/^preparing the data, then compiling the training kernels for the first step.* · \d+ s$/);
    expect(await page.getByText('The loss curves appear here while training runs.').count()).toBe(0);
    // While it runs: the status says so, with an ETA; Train is disabled and says why.
    await page.getByTestId('train-status').filter({ hasText: 'running' }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('train-eta').count()).toBe(1);
    expect(await page.getByTestId('train-start').getAttribute('title')).toMatch(/A run is going/);
    await page.waitForFunction(() => document.querySelector('[data-testid=loss-chart]')?.getAttribute('data-points') === '2', null, { timeout: 240_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=adapter] strong')].some((e) => e.textContent === 'ui-trained'), null, { timeout: 60_000 });
    expect(await page.getByTestId('train-stats').textContent()).toMatch(/step 2 \/ 2.*tokens\/s/s);
    await page.getByTestId('checkpoint').first().waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('checkpoint').first().textContent()).toMatch(/ui-trained · step 2 \/ 2/);
    // A saved run is listed once, in the Train view: the shelf holds adapters (the finished run's is there already).
    expect(await page.getByTestId('adapter-shelf').textContent()).not.toMatch(/checkpoint/i);
    expect(await page.getByTestId('train-status').textContent()).toBe('done');
    expect(await page.getByTestId('train-eta').count()).toBe(0);
    expect(await page.getByTestId('records-used').textContent()).toBe('8 of 999');
    await screenshot(page, 'e2e-train');
    // The chart's PNG is drawn on the panel's background: no transparent pixel, so its light text reads anywhere.
    const [png] = await Promise.all([page.waitForEvent('download'), page.getByTestId('chart-png').click()]);
    const pngBytes = readFileSync((await png.path())!);
    const alpha = await page.evaluate(async (b64) => {
      const img = await createImageBitmap(await (await fetch(`data:image/png;base64,${b64}`)).blob());
      const c = new OffscreenCanvas(img.width, img.height).getContext('2d')!;
      c.drawImage(img, 0, 0);
      const d = c.getImageData(0, 0, img.width, img.height).data;
      let min = 255;
      for (let i = 3; i < d.length; i += 4) min = Math.min(min, d[i]);
      return min;
    }, pngBytes.toString('base64'));
    expect(alpha).toBe(255);
    // The run's name is taken now: a second run must be renamed (or the saved one continued), never replace it.
    await page.getByTestId('name-clash').waitFor();
    expect(await page.getByTestId('train-start').isDisabled()).toBe(true);
    expect(await page.getByTestId('train-why-not').textContent()).toMatch(/A saved run is named "ui-trained"/);
    await page.getByTestId('rename-run').click();
    expect(await page.getByTestId('adapter-name').inputValue()).toBe('ui-trained-2');
    expect(await page.getByTestId('train-start').isDisabled()).toBe(false);
    await page.getByTestId('compare-tab').click();
    const options = await page.locator('[data-testid=column-spec] select').first().locator('option').allTextContents();
    expect(options).toContain('ui-trained');
    // The Train form is as it was left, after a view switch.
    await page.getByTestId('train-tab').click();
    expect(await page.getByTestId('adapter-name').inputValue()).toBe('ui-trained-2');
    expect(await page.getByTestId('train-steps').inputValue()).toBe('2');
    expect(await page.getByTestId('train-cutoff').inputValue()).toBe('72');
    expect(await page.getByLabel('Records used').inputValue()).toBe('8');

    // A second run, followed through every status it passes: paused (no step runs), resumed, stopped mid-run (its
    // checkpoint kept, to be continued in a later test).
    await page.evaluate(() => {
      const w = window as unknown as { statuses: string[] };
      const read = () => document.querySelector('[data-testid=train-status]')?.textContent ?? '';
      w.statuses = [read()];
      new MutationObserver(() => { if (read() !== w.statuses.at(-1)) w.statuses.push(read()); })
        .observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const points = async () => Number(await page.getByTestId('loss-chart').getAttribute('data-points'));
    await page.getByTestId('train-steps').fill('4');
    await page.getByTestId('train-start').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=loss-chart]')?.getAttribute('data-points') === '1', null, { timeout: 120_000 });
    // Pause: the step under way finishes ("pausing"), then none starts ("paused") until Resume.
    await page.getByTestId('train-pause').click();
    expect(await page.getByTestId('train-pause').textContent()).toBe('Resume');
    await page.getByTestId('train-status').filter({ hasText: /^paused$/ }).waitFor({ timeout: 120_000 });
    const whilePaused = await points();
    expect(whilePaused).toBeLessThanOrEqual(2);
    // While it is paused the GPU is lent: a chat answers and a comparison runs; then the run goes on.
    await page.getByTestId('playground-tab').click();
    await page.getByTestId('new-chat').click();
    await page.getByTestId('prompt').fill('Name three things that make a dinner party memorable.');
    expect(await page.getByTestId('generate').isDisabled()).toBe(false);
    await page.getByTestId('generate').click();
    await page.waitForFunction(() => !!document.querySelector('[data-testid=regenerate]'), null, { timeout: 120_000 });
    expect((await page.getByTestId('output').textContent())!.length).toBeGreaterThan(0);
    await page.getByTestId('compare-tab').click();
    const columnSelects = page.locator('[data-testid=column-spec] select');
    for (let i = 0; i < await columnSelects.count(); i++) await columnSelects.nth(i).selectOption({ label: 'Base model' });
    expect(await page.getByTestId('compare-run').isDisabled()).toBe(false);
    await page.getByTestId('compare-run').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=column-stats][data-done]').length >= 2, null, { timeout: 120_000 });
    await page.getByTestId('train-tab').click();
    expect(await points()).toBe(whilePaused);
    await page.getByTestId('train-pause').click();
    await page.getByTestId('train-status').filter({ hasText: 'running' }).waitFor();
    await page.getByTestId('train-stop').click();
    await page.getByTestId('train-status').filter({ hasText: 'stopped' }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('train-eta').count()).toBe(0);
    const stoppedAt = await points();
    expect(stoppedAt).toBeLessThan(4);
    expect(await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses))
      .toEqual(['done', '', 'running', 'pausing after this step…', 'paused', '', 'paused', 'running', 'stopping after this step…', 'stopped']);
    const saved = page.getByTestId('checkpoint').filter({ hasText: 'ui-trained-2' });
    expect(await saved.textContent()).toContain(`step ${stoppedAt} / 4`);
    expect(await saved.getByTestId('continue-run').isDisabled()).toBe(false);
    await screenshot(page, 'e2e-train-stopped');
  });

  it('the teacher writes a dataset from typed instructions, kept with its provenance, which the Train form takes', async () => {
    await page.getByTestId('train-tab').click();
    await page.getByTestId('teach-name').fill('taught-in-browser.json');
    await page.getByTestId('teach-source').selectOption('typed');
    await page.getByTestId('teach-typed').fill('Give three tips for staying healthy.\n\nName a primary colour.\nWhat is the capital of France?');
    await page.getByTestId('teach-max-tokens').fill('8');
    await page.getByTestId('teach-start').click();
    await page.getByTestId('teach-job').filter({ hasText: 'done' }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('teach-job').first().textContent()).toMatch(/taught-in-browser\.json\s*3 \/ 3 answered by built-in demo model · instructions from typed · done/);
    // The name is taken now: the same name is refused before any work.
    await page.waitForFunction(() => (document.querySelector('[data-testid=teach-start]') as HTMLButtonElement | null)?.disabled === true, null, { timeout: 30_000 });
    expect(await page.getByTestId('teach-start').getAttribute('title')).toMatch(/A dataset named "taught-in-browser\.json" is kept already/);
    await screenshot(page, 'e2e-teacher');
    await page.getByTestId('teach-use').first().click();
    await page.waitForFunction(() => /3 records/.test(document.querySelector('[data-testid=dataset-summary]')?.textContent ?? ''), null, { timeout: 60_000 });
    await page.getByTestId('storage-tab').click();
    const kept = page.getByTestId('kept-dataset').filter({ hasText: 'taught-in-browser.json' });
    await kept.waitFor({ timeout: 30_000 });
    expect(await kept.textContent()).toMatch(/written by built-in demo model \(3 of 3 instructions from typed/);
  });

  it('web-llm as the teacher: the prebuilt models this GPU can run, a custom model by URL, and a clear error when its files cannot be fetched', async () => {
    await page.getByTestId('train-tab').click();
    await page.evaluate(() => {
      const w = window as unknown as { counts: string[] };
      w.counts = [];
      new MutationObserver(() => { const t = document.querySelector('[data-testid=webllm-count]')?.textContent; if (t && t !== w.counts.at(-1)) w.counts.push(t); })
        .observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId('teach-backend').selectOption('web-llm');
    await page.waitForFunction(() => /\d+ of [1-9]\d* models run here/.test(document.querySelector('[data-testid=webllm-count]')?.textContent ?? ''), null, { timeout: 60_000 });
    // While the list loads it says so, never "0 of 0 models".
    const counts = await page.evaluate(() => (window as unknown as { counts: string[] }).counts);
    expect(counts[0]).toBe("Reading web-llm's model list and this GPU's limits…");
    expect(counts.filter((c) => /^0 of 0/.test(c))).toEqual([]);
    const [usable, all] = (await page.getByTestId('webllm-count').textContent())!.match(/\d+/g)!.map(Number);
    expect(usable).toBeGreaterThan(0);
    expect(usable).toBeLessThan(all); // SwiftShader has no shader-f16: the q4f16 models are listed, disabled, with the reason
    const f16 = page.getByTestId('webllm-model').locator('option', { hasText: 'Qwen2-0.5B-Instruct-q4f16_1-MLC' });
    expect(await f16.isDisabled()).toBe(true);
    expect(await f16.textContent()).toMatch(/needs shader-f16, which this GPU lacks/);
    expect(await page.getByTestId('webllm-model').locator('option', { hasText: 'Qwen2-0.5B-Instruct-q0f32-MLC' }).isDisabled()).toBe(false);
    // A custom model whose files are not there (nothing listens on port 9): web-llm's failure becomes a typed error.
    await page.getByTestId('webllm-panel').locator('summary').click();
    await page.getByTestId('webllm-weights').fill('http://127.0.0.1:9/mirror/Qwen2-0.5B-Instruct-q0f32-MLC/');
    await page.getByTestId('webllm-lib').fill('http://127.0.0.1:9/libs/Qwen2-0.5B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm');
    await page.getByTestId('webllm-add').click();
    expect(await page.getByTestId('webllm-model').inputValue()).toBe('Qwen2-0.5B-Instruct-q0f32-MLC');
    expect(await page.getByTestId('teach-start').getAttribute('title')).toBe('Load a web-llm model first.');
    await page.getByTestId('webllm-load').click();
    const err = page.getByTestId('webllm-error');
    await err.waitFor({ timeout: 60_000 });
    expect(await err.getAttribute('data-error-name')).toBe('DownloadError');
    expect(await err.textContent()).toMatch(/web-llm could not download Qwen2-0\.5B-Instruct-q0f32-MLC: no server answered .*The network may be off.*Check the weights and library URLs/);
    await screenshot(page, 'e2e-teacher-webllm');
    // LoRA Lab's own engine is untouched by web-llm's failure.
    await page.getByTestId('teach-backend').selectOption('engine');
    expect(await page.getByTestId('model-card').textContent()).toContain('built-in');
  });

  it('a download that fails shows a typed error that says what to do, and leaves the loaded model answering', async () => {
    await page.getByRole('tab', { name: 'Chat' }).click();
    await page.getByRole('tab', { name: 'URL' }).click();
    await page.getByPlaceholder('https://example.com/models/my-model/').fill(new URL('/models/missing/', page.url()).href);
    await page.getByTestId('load').click();
    const err = page.getByTestId('error');
    await err.waitFor({ timeout: 60_000 });
    expect(await err.getAttribute('data-error-name')).toBe('DownloadError');
    expect(await err.textContent()).toMatch(/config\.json: not found .*Check the URL/);
    await screenshot(page, 'e2e-error');
    // The failed load changed nothing: the built-in model is still loaded, with its adapters, and answers.
    expect(await page.getByTestId('model-card').textContent()).toContain('built-in');
    expect(await page.getByTestId('adapter').count()).toBeGreaterThan(0);
    if (!(await page.getByTestId('chat-max-tokens').isVisible())) await page.getByTestId('chat-settings').locator('summary').click();
    await page.getByTestId('chat-max-tokens').fill('4');
    await page.getByTestId('prompt').fill('Name three primary colors.');
    await page.getByTestId('generate').click();
    await page.getByTestId('tokens-per-second').waitFor({ timeout: 60_000 });
  });

  it('a run saved on the built-in model continues on the same weights opened from a URL: the weights name the model, not the source', async () => {
    await page.getByRole('tab', { name: 'URL' }).click();
    await page.getByPlaceholder('https://example.com/models/my-model/').fill(new URL('/models/demo/', page.url()).href);
    await page.getByTestId('load').click();
    await page.getByTestId('model-card').filter({ hasText: '/models/demo/' }).waitFor({ timeout: 120_000 });
    // The saved run goes out of the browser as a .zip and comes back from it (Storage), whole: it continues below.
    await page.getByTestId('storage-tab').click();
    const keptRun = page.getByTestId('kept-run').filter({ hasText: 'ui-trained-2' });
    const [runZip] = await Promise.all([page.waitForEvent('download'), keptRun.getByRole('button', { name: 'Export .zip of the run ui-trained-2' }).click()]);
    page.once('dialog', (d) => void d.accept());
    await keptRun.getByRole('button', { name: 'Delete the run ui-trained-2' }).click();
    await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=kept-run]')].some((e) => e.textContent?.includes('ui-trained-2')), undefined, { timeout: 30_000 });
    await page.getByTestId('import-file').setInputFiles({ name: runZip.suggestedFilename(), mimeType: 'application/zip', buffer: readFileSync((await runZip.path())!) });
    await keptRun.waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('error').count()).toBe(0);
    await page.getByTestId('train-tab').click();
    const saved = page.getByTestId('checkpoint').filter({ hasText: 'ui-trained-2' });
    const from = Number((await saved.textContent())!.match(/step (\d) \/ 4/)![1]);
    expect(await saved.getByTestId('continue-why-not').count()).toBe(0);
    await page.evaluate(() => { (window as unknown as { statuses: string[] }).statuses = []; });
    await saved.getByTestId('continue-run').click();
    // The restored curve is drawn at once, with what is happening instead of the empty chart's text.
    expect(await page.getByTestId('train-phase').textContent({ timeout: 1000 })).toMatch(new RegExp(`^Continuing from step ${from}: preparing the data`));
    expect(await page.getByText('The loss curves appear here while training runs.').count()).toBe(0);
    expect(Number(await page.getByTestId('loss-chart').getAttribute('data-lr-points'))).toBe(from);
    await page.getByTestId('train-status').filter({ hasText: 'done' }).waitFor({ timeout: 240_000 });
    // Before the click the status may still show the stopped run's outcome (a re-render of the view records it); from
    // the click on: cleared, running, done, and nothing else.
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    expect(statuses.slice(0, statuses.indexOf('')).every((x) => x === 'stopped'), statuses.join(' > ')).toBe(true);
    expect(statuses.slice(statuses.indexOf(''))).toEqual(['', 'running', 'done']);
    // The curve goes on from where the run stopped; the saved run is finished now.
    expect(await page.getByTestId('train-stats').textContent()).toMatch(/step 4 \/ 4/);
    expect(Number(await page.getByTestId('loss-chart').getAttribute('data-points'))).toBe(4);
    // The learning rate of every step, the restored ones too (drawn from the schedule).
    expect(Number(await page.getByTestId('loss-chart').getAttribute('data-lr-points'))).toBe(4);
    expect(await saved.textContent()).toContain('step 4 / 4');
    expect(from).toBeLessThan(4);
    await screenshot(page, 'e2e-train-continued');
    await page.getByRole('tab', { name: 'Chat' }).click();
  });

  it('loads the model again with 4-bit weights from the Weights choice, which the browser keeps', async () => {
    await page.getByRole('tab', { name: 'Built-in' }).click();
    expect(await page.getByTestId('precision').locator('option[value=f16]').isDisabled()).toBe(false); // f16 needs no shader-f16
    const before = await page.getByTestId('model-card').textContent();
    await page.getByTestId('precision').selectOption('q4');
    await page.getByTestId('load').click();
    await page.getByTestId('model-precision').filter({ hasText: 'q4' }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('model-card').textContent()).not.toBe(before); // fewer weight bytes
    expect(await page.evaluate(() => localStorage.getItem('lora-lab:load'))).toContain('"q4"');
    if (!(await page.getByTestId('chat-max-tokens').isVisible())) await page.getByTestId('chat-settings').locator('summary').click();
    await page.getByTestId('chat-max-tokens').fill('4');
    await page.getByTestId('prompt').fill('Name three primary colors.');
    await page.getByTestId('generate').click();
    await page.getByTestId('tokens-per-second').waitFor({ timeout: 60_000 });
    expect(consoleErrors).toEqual([]);
  });
});
