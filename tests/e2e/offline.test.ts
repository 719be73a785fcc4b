// Offline first, end to end in Chromium: a link names a model and an adapter on a local server with the hub's layout;
// the page downloads and keeps them, generates (greedy); then with the network off the page reloads from the service
// worker, the same link loads both from the cache and gives the same text. The model is exported as one archive and
// imported in a fresh browser profile with the network off, where it generates the same text again.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { launch, screenshot, SCREENSHOTS, startApp } from '../helpers/browser.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { cliHere } from '../helpers/cli.js';

const read = (dir: string, names: string[]) => new Map(names.map((f) => [f, new Uint8Array(readFileSync(new URL(`../../public/${dir}/${f}`, import.meta.url)))]));

async function engineState(page: Page, state: string, timeout = 120_000): Promise<void> {
  await page.waitForFunction((s) => document.documentElement.dataset.engineState === s, state, { timeout });
}

/** Greedy generation in a new chat (through `adapter`, by its label in the chat settings, when given): the text. */
async function greedy(page: Page, adapter?: string): Promise<string> {
  await page.getByTestId('new-chat').click();
  await page.getByTestId('chat-settings').locator('summary').click();
  if (adapter) await page.getByTestId('chat-adapter').selectOption({ label: adapter });
  await page.getByTestId('chat-temperature').fill('0');
  await page.getByTestId('chat-max-tokens').fill('12');
  await page.getByTestId('chat-settings').locator('summary').click();
  await page.getByTestId('generate').click();
  await page.getByTestId('tokens-per-second').waitFor({ timeout: 120_000 });
  return (await page.getByTestId('output').textContent()) ?? '';
}

describe('offline first', () => {
  let app: { url: string; server: PreviewServer };
  let hub: HfServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  /** The greedy text of the base model in the first test; the imported model must give it again. */
  let onlineText = '';

  beforeAll(async () => {
    app = await startApp();
    hub = await startHfServer({
      'lora-lab/demo': { files: read('models/demo', ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) },
      'lora-lab/demo-lora': { files: read('adapters/demo-short', ['adapter_config.json', 'adapter_model.safetensors']) },
    });
    browser = await launch();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await hub?.close();
    await app?.server.close();
  });

  it('a link loads model and adapter, keeps them, and after going offline the reloaded app gives the same text', async () => {
    const link = `${app.url}?model=lora-lab/demo&adapter=lora-lab/demo-lora&view=chat&prompt=${encodeURIComponent('Name three colors.')}&hf-endpoint=${encodeURIComponent(hub.endpoint)}`;
    await page.goto(link);
    await engineState(page, 'ready');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=adapter] strong')].some((e) => e.textContent === 'lora-lab/demo-lora'), null, { timeout: 60_000 });
    expect(await page.getByTestId('prompt').inputValue()).toBe('Name three colors.');
    expect(await page.getByTestId('mirror-notice').textContent()).toContain(hub.endpoint);
    expect(hub.requests.some((r) => r.startsWith('/api/models/lora-lab/demo/revision/main'))).toBe(true);
    expect(await page.getByTestId('announcer').textContent()).toMatch(/Adapter lora-lab\/demo-lora is loaded/);
    // The link's adapter is the chat's: the answer is the adapter's.
    const online = await greedy(page);
    expect(online.length).toBeGreaterThan(3);
    await page.getByTestId('prompt').fill('Name three colors.');
    onlineText = await greedy(page, 'Base model');
    expect(onlineText).not.toBe(online);
    await screenshot(page, 'offline-1-online');

    // The service worker has precached the app shell; then the network goes away.
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    const requests = hub.requests.length;
    await context.setOffline(true);
    await page.goto(link);
    expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
    await engineState(page, 'ready');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=adapter] strong')].some((e) => e.textContent === 'lora-lab/demo-lora'), null, { timeout: 60_000 });
    expect(await greedy(page)).toBe(online);
    expect(hub.requests.length).toBe(requests); // model and adapter came from the cache
    await screenshot(page, 'offline-2-reloaded-offline');

    // The service worker's cache holds the app shell and the built-in model, never the downloaded model's files.
    const cached = await page.evaluate(async () => {
      const urls: string[] = [];
      for (const name of await caches.keys()) urls.push(...(await (await caches.open(name)).keys()).map((r) => r.url));
      return urls;
    });
    expect(cached.some((u) => u.includes('/models/demo/model.safetensors'))).toBe(true);
    expect(cached.some((u) => u.includes('engine.worker'))).toBe(true);
    expect(cached.filter((u) => u.startsWith(hub.endpoint))).toEqual([]);

    // The Storage page lists what is kept, with sizes.
    await page.getByTestId('storage-tab').click();
    await page.getByTestId('kept-model').first().waitFor();
    expect(await page.getByTestId('kept-model').first().textContent()).toMatch(/lora-lab\/demo.*main · [0-9a-f]{7}.*5 files/s);
    expect(await page.getByTestId('kept-adapter').first().textContent()).toMatch(/lora-lab\/demo-lora/);
    expect(await page.getByTestId('storage-usage').textContent()).toMatch(/kept by LoRA Lab/);
    // A dataset imported here (offline) is kept and offered by the Train view, with its preview.
    const records = [{ instruction: 'Say hi.', input: '', output: 'Hi!' }, { instruction: 'Count to two.', input: '', output: 'One, two.' }];
    await page.getByTestId('import-file').setInputFiles({ name: 'tiny.jsonl', mimeType: 'application/json', buffer: Buffer.from(records.map((r) => JSON.stringify(r)).join('\n')) });
    await page.getByTestId('kept-dataset').first().waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('kept-dataset').first().textContent()).toMatch(/tiny\.jsonl/);
    await screenshot(page, 'offline-3-storage');
    await page.getByTestId('train-tab').click();
    await page.getByTestId('dataset-select').selectOption('kept:tiny.jsonl');
    await page.waitForFunction(() => /^2 records/.test(document.querySelector('[data-testid=dataset-summary]')?.textContent ?? ''), null, { timeout: 30_000 });
    await page.getByTestId('storage-tab').click();
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'offline-3-storage-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('exports the model as one archive, imports it in a fresh profile with the network off, and generates the same text', async () => {
    await context.setOffline(false);
    await page.goto(`${app.url}?view=storage`);
    await page.getByTestId('kept-model').first().waitFor({ timeout: 60_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-model').first().click()]);
    const archive = join(SCREENSHOTS, 'demo-model.lora-lab.zip');
    await download.saveAs(archive);
    expect(download.suggestedFilename()).toMatch(/^lora-lab_demo_[0-9a-f]{7}\.lora-lab\.zip$/);
    // The same kept model as one F16 GGUF file (for llama.cpp, Ollama, LM Studio): lora-lab runs it as the model.
    await page.getByTestId('storage-gguf-type').selectOption('f16');
    const [gguf] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-model-gguf').first().click()]);
    expect(gguf.suggestedFilename()).toBe('demo-f16.gguf');
    const ggufDir = join(SCREENSHOTS, 'demo-gguf');
    mkdirSync(ggufDir, { recursive: true });
    await gguf.saveAs(join(ggufDir, 'demo-f16.gguf'));
    const ids = ['--prompt-ids', '1,3,5,7,9', '--max-new-tokens', '8', '--temperature', '0', '--json'];
    const fromGguf = await cliHere('generate', '--model', ggufDir, ...ids);
    const fromFolder = await cliHere('generate', '--model', 'builtin', ...ids);
    expect(fromGguf.code, fromGguf.stderr).toBe(0);
    expect(JSON.parse(fromGguf.stdout.trim().split('\n').at(-1)!).tokens).toEqual(JSON.parse(fromFolder.stdout.trim().split('\n').at(-1)!).tokens);

    const online = onlineText;
    expect(online.length).toBeGreaterThan(3);

    // A fresh profile: nothing kept. The app shell is fetched once; then the network is off for the import and load.
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p2 = await fresh.newPage();
    p2.on('pageerror', (e) => errors.push(e.message));
    await p2.goto(`${app.url}?view=storage`);
    await p2.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    await fresh.setOffline(true);
    await p2.reload();
    await engineState(p2, 'idle');
    const hubRequests = hub.requests.length;
    await p2.getByTestId('import-file').setInputFiles(archive);
    await p2.getByTestId('kept-model').first().waitFor({ timeout: 60_000 });
    await p2.getByRole('tab', { name: /On this device/ }).click();
    await p2.getByTestId('load').click();
    await engineState(p2, 'ready');
    await p2.getByTestId('playground-tab').click();
    await p2.getByTestId('prompt').fill('Name three colors.');
    expect(await greedy(p2)).toBe(online);
    expect(hub.requests.length).toBe(hubRequests);
    await screenshot(p2, 'offline-4-imported');
    await fresh.close();
    expect(errors).toEqual([]);
  });
});
