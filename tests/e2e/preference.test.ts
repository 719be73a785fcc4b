// Preference tuning from the Train view, in the built app in headless Chromium on the built-in model: DPO on a file of
// pairs in TRL's format runs with live TRL metrics and their curves, the adapter lands on the shelf and the run is
// saved (its objective named); the objective's settings follow the objective. Screenshots at 1280 and 390 px.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { engineState, openApp, screenshot, type AppSession } from '../helpers/browser.js';

describe('preference tuning in the Train view', () => {
  let s: AppSession;
  let page: Page;

  beforeAll(async () => {
    s = await openApp();
    page = s.page;
    await page.goto(`${s.url}?model=builtin`);
    await engineState(page, 'ready');
  });
  afterAll(() => s?.close());

  it('runs DPO on a file of pairs: TRL metrics and curves live, the adapter on the shelf, the run saved', async () => {
    await page.getByTestId('train-tab').click();
    await page.getByTestId('objective-preference').check();
    // The settings follow the objective: gamma for SimPO only, the reference for DPO only.
    await page.getByTestId('preference-objective').selectOption('simpo');
    expect(await page.getByTestId('preference-gamma').count()).toBe(1);
    expect(await page.getByTestId('preference-reference').count()).toBe(0);
    await page.getByTestId('preference-objective').selectOption('dpo');
    expect(await page.getByTestId('preference-gamma').count()).toBe(0);
    expect(await page.getByTestId('preference-reference').locator('option').first().textContent()).toBe('the base (adapter off)');
    await page.getByTestId('pairs-source').selectOption('dataset');
    expect(await page.getByTestId('train-why-not').textContent()).toBe('Pick a file of preference pairs.');
    const pairs = ['What are the benefits of exercising?', 'Name a colour.', 'Give me a fruit.'].map((q, i) => JSON.stringify({ prompt: q, chosen: `Sure! Answer ${i}.`, rejected: `Answer ${i}.` })).join('\n');
    await page.getByTestId('pairs-file').setInputFiles({ name: 'sure-pairs.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(pairs) });
    await page.getByTestId('adapter-name').fill('ui-dpo');
    await page.getByTestId('train-steps').fill('2');
    await page.getByTestId('train-cutoff').fill('64');
    await page.getByLabel('Micro-batch').fill('1');
    await page.getByLabel('Grad. accumulation').fill('1');
    await page.getByLabel('Validate every').fill('0');
    await screenshot(page, 'preference-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, 'preference-390');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByTestId('train-start').click();
    await page.getByTestId('train-status').filter({ hasText: 'done' }).waitFor({ timeout: 480_000 });
    expect(await page.getByTestId('pref-metrics').textContent()).toMatch(/^reward accuracy \d+% · margin -?\d+\.\d{3}$/);
    expect(await page.getByTestId('pref-rewards-chart').getAttribute('data-points')).toBe('4');
    expect(await page.getByTestId('pref-logps-chart').getAttribute('data-points')).toBe('4');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=adapter] strong')].some((e) => e.textContent === 'ui-dpo'), null, { timeout: 60_000 });
    await page.getByTestId('checkpoint').filter({ hasText: 'ui-dpo' }).waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('checkpoint').filter({ hasText: 'ui-dpo' }).textContent()).toMatch(/ui-dpo · DPO · step 2 \/ 2/);
    await screenshot(page, 'preference-done-1280');
    expect(s.errors).toEqual([]);
  }, 600_000);
});
