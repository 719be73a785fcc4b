// Push to the Hub from the app (the built app in Chromium, its worker talking to a local hub on 127.0.0.1 set by the
// ?hf-endpoint= link): a bad repo name is marked at the field with Push disabled; an adapter on the shelf is pushed
// with its model card as one commit and the answer (the commit's link) shows beside the form; the token goes to the
// hub's origin only. Screenshots of the form at desktop and phone widths.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { launch, screenshot, startApp } from '../helpers/browser.js';
import { startCommitHub, type CommitHub } from '../helpers/hub-commit-server.js';

const TOKEN = 'hf_appPushToken5';

describe('push to the Hub from the app', () => {
  let server: PreviewServer;
  let browser: Browser;
  let page: Page;
  let hub: CommitHub;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    hub = await startCommitHub(TOKEN);
    const app = await startApp();
    server = app.server;
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${app.url}?hf-endpoint=${encodeURIComponent(hub.endpoint)}`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await hub?.close();
  });

  it('pushes an adapter from the shelf as one commit, answering beside the form', async () => {
    await page.getByTestId('gpu').waitFor({ timeout: 60_000 });
    await page.getByTestId('load').click();
    await page.getByTestId('model-card').waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'demo-zh' }).click();
    await page.getByTestId('adapter').first().waitFor({ timeout: 60_000 });

    const adapter = page.getByTestId('adapter').first();
    await adapter.getByTestId('push-open').first().click();
    const form = adapter.getByTestId('push-form');
    await form.getByTestId('push-repo').fill('no slash here');
    expect(await form.getByTestId('push-repo-error').textContent()).toMatch(/owner\/name/);
    expect(await form.getByTestId('push-submit').isDisabled()).toBe(true);

    await form.getByTestId('push-repo').fill('me/demo-zh');
    await form.getByTestId('push-token').fill(TOKEN);
    await form.getByTestId('push-submit').click();
    await page.waitForFunction(() => /Pushed to me\/demo-zh/.test(document.querySelector('[data-testid=push-outcome]')?.textContent ?? ''), null, { timeout: 60_000 });
    expect(await form.getByTestId('push-outcome').locator('a').getAttribute('href')).toMatch(new RegExp(`^${hub.endpoint}/me/demo-zh/commit/[0-9a-f]{40}$`));
    const repo = hub.repos.get('model:me/demo-zh')!;
    expect([...repo.files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    expect(new TextDecoder().decode(repo.files.get('README.md'))).toContain('demo-zh');
    expect(hub.log.filter((l) => l.origin === 'hub').every((l) => l.auth === `Bearer ${TOKEN}`)).toBe(true);
    expect(hub.log.filter((l) => l.origin === 'storage').every((l) => l.auth === null)).toBe(true);
    await screenshot(page, 'e2e-push-desktop');

    // A wrong token: refused in words beside the form, nothing pushed.
    await form.getByTestId('push-repo').fill('me/other');
    await form.getByTestId('push-token').fill('hf_wrongToken');
    await form.getByTestId('push-submit').click();
    await page.waitForFunction(() => /token was refused/.test(document.querySelector('[data-testid=push-outcome]')?.textContent ?? ''), null, { timeout: 60_000 });
    expect(hub.repos.has('model:me/other')).toBe(false);

    await page.setViewportSize({ width: 390, height: 844 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    await screenshot(page, 'e2e-push-phone');
    expect(wide).toBeLessThanOrEqual(390);
    expect(pageErrors).toEqual([]);
  });
});
