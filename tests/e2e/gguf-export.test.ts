// GGUF export from the app, in the built app in headless Chromium: the shelf downloads the base model, a merged model
// and an adapter as GGUF files; each is the file lora-lab export writes for the same model and adapter, byte for byte,
// and the adapter's loads back as the same adapter.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { cli } from '../helpers/cli.js';
import { engineState, openApp, screenshot, type AppSession } from '../helpers/browser.js';

describe('GGUF export from the adapter shelf', () => {
  let session: AppSession;
  let page: Page;

  beforeAll(async () => {
    session = await openApp({ acceptDownloads: true });
    page = session.page;
    await page.goto(`${session.url}?model=builtin&adapter=builtin:demo-short`);
    await engineState(page, 'ready');
    await page.getByTestId('adapter').filter({ hasText: 'demo-short' }).waitFor({ timeout: 120_000 });
  });
  afterAll(() => session?.close());

  async function download(click: () => Promise<void>): Promise<{ name: string; bytes: Buffer }> {
    const [d] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), click()]);
    return { name: d.suggestedFilename(), bytes: readFileSync((await d.path())!) };
  }

  it('the base, a merged model and a LoRA file: the same bytes as lora-lab export', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-lab-gguf-app-'));
    const row = page.getByTestId('adapter').filter({ hasText: 'demo-short' });
    await page.getByTestId('gguf-type').selectOption('q8_0');
    const merged = await download(() => row.getByTestId('export-gguf-merged').click());
    const lora = await download(() => row.getByTestId('export-gguf-lora').click());
    await page.getByTestId('gguf-type').selectOption('q4_k_m');
    const base = await download(() => page.getByTestId('export-gguf-base').click());
    await screenshot(page, 'gguf-export-shelf');
    expect([merged.name, lora.name, base.name]).toEqual(['demo-short-merged-q8_0.gguf', 'demo-short-lora.gguf', 'built-in-demo-q4_k_m.gguf']);
    for (const f of [merged, lora, base]) expect(f.bytes.subarray(0, 4).toString()).toBe('GGUF');

    const run = async (args: string[], out: string) => {
      const r = await cli('export', '--model', 'builtin', '--gguf', '--out', join(dir, out), ...args);
      expect(r.code, r.stderr).toBe(0);
      return readFileSync(join(dir, out));
    };
    expect(merged.bytes.equals(await run(['--adapter', 'builtin:demo-short', '--type', 'q8_0'], 'm.gguf'))).toBe(true);
    expect(lora.bytes.equals(await run(['--adapter', 'builtin:demo-short', '--adapter-only'], 'l.gguf'))).toBe(true);
    expect(base.bytes.equals(await run(['--type', 'q4_k_m'], 'b.gguf'))).toBe(true);
    expect(session.errors).toEqual([]);
  });
});
