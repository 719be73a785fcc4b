// The chat end to end, in the built app in headless Chromium, with the network off: the welcome loads the built-in
// model, a two-turn conversation (the follow-up keeps the first turn's KV cache), a reload finds the conversation
// kept, at desktop and phone widths. A hostile dataset previewed in the Train view runs nothing and loads nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { launch, screenshot, startApp } from '../helpers/browser.js';

async function engineState(page: Page, state: string, timeout = 180_000): Promise<void> {
  await page.waitForFunction((s) => document.documentElement.dataset.engineState === s, state, { timeout });
}

async function ask(page: Page, text: string, answers: number): Promise<string> {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('prompt').press('Enter');
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=turn-assistant]').length === n && !!document.querySelector('[data-testid=regenerate]'), answers, { timeout: 300_000 });
  return (await page.getByTestId('output').textContent()) ?? '';
}

describe('chat, offline', () => {
  let app: { url: string; server: PreviewServer };
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    app = await startApp();
    browser = await launch();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await app?.server.close();
  });

  it('two turns on the built-in model with the network off; the conversation survives a reload', async () => {
    await page.goto(app.url);
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    await context.setOffline(true);
    await page.reload();
    await page.getByTestId('welcome').waitFor();
    await screenshot(page, 'chat-0-welcome');
    await page.getByTestId('welcome-builtin').click();
    await engineState(page, 'ready');
    expect(await page.getByTestId('welcome').count()).toBe(0);

    await page.getByTestId('chat-settings').locator('summary').click();
    await page.getByTestId('chat-temperature').fill('0');
    await page.getByTestId('chat-max-tokens').fill('48');
    await page.getByTestId('chat-settings').locator('summary').click();
    const first = await ask(page, 'Give three tips for staying healthy.', 1);
    expect(first.split(/\s+/).length).toBeGreaterThan(20);
    const second = await ask(page, 'Which of these is the most important?', 2);
    expect(second.length).toBeGreaterThan(10);
    // The follow-up kept the first turn's KV cache: the stats say how many tokens came from before.
    expect(await page.getByTestId('stats').textContent()).toMatch(/kept from before/);
    expect(await page.getByTestId('context-used').textContent()).toMatch(/context \d+ \/ 2048 tokens/);
    await screenshot(page, 'chat-1-two-turns');
    // The Compare view's inputs are kept in this browser too.
    await page.getByTestId('compare-tab').click();
    await page.getByTestId('compare-prompt').fill('Kept across a reload?');
    await page.getByRole('tab', { name: 'Chat' }).click();

    await page.reload();
    await engineState(page, 'idle');
    await page.getByTestId('turns').getByText('Which of these is the most important?').waitFor();
    expect(await page.locator('[data-testid=turn-user]').count()).toBe(2);
    expect(await page.locator('[data-testid=turn-assistant]').count()).toBe(2);
    expect(await page.getByTestId('conversations').textContent()).toContain('Give three tips for staying healthy.');
    expect(await page.getByTestId('output').textContent()).toBe(second);
    await page.getByTestId('compare-tab').click();
    expect(await page.getByTestId('compare-prompt').inputValue()).toBe('Kept across a reload?');
    await page.getByRole('tab', { name: 'Chat' }).click();
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'chat-2-reloaded-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(errors).toEqual([]);
  });

  it('a hostile dataset previewed in the Train view runs nothing and loads nothing', async () => {
    await page.getByTestId('load').click();
    await engineState(page, 'ready');
    await page.getByTestId('train-tab').click();
    const beacon = `${app.url}__beacon/dataset`;
    const records = [
      { instruction: `<img src="${beacon}" onerror="window.__xss=1">`, input: '<script>window.__xss=1</script>', output: `<svg onload="window.__xss=1"></svg>[x](javascript:window.__xss=1)` },
    ];
    await page.getByTestId('dataset-file').setInputFiles({ name: 'hostile.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(records)) });
    await page.getByTestId('dataset-preview').getByText('<script>', { exact: false }).waitFor({ timeout: 60_000 });
    await page.waitForTimeout(500);
    expect(await page.getByTestId('dataset-preview').locator('img, script, svg').count()).toBe(0);
    expect(await page.evaluate(() => (window as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('__beacon')).length)).toBe(0);
    expect(errors).toEqual([]);
  });
});
