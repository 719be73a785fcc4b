// Links set up every view, in the built app in headless Chromium: a Compare link makes one column per adapter beside
// the base, at its strength, with the prompt in Compare's box and its sampling (a link's values win over what the
// browser kept); "Copy link" writes the whole set-up back, and that link opened in a fresh browser gives the same.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { launch, screenshot, startApp } from '../helpers/browser.js';

const ready = (page: Page) => page.waitForFunction(() => document.documentElement.dataset.engineState === 'ready', undefined, { timeout: 180_000 });

/** Compare's columns as shown: each select's chosen option and the strength beside it. */
const columns = (page: Page) => page.locator('[data-testid=column-spec]').evaluateAll((specs) => specs.map((s) => ({
  adapter: s.querySelector('select')!.selectedOptions[0]?.textContent?.trim(),
  strength: s.querySelector('.strength')?.textContent?.trim(),
})));

async function copyLink(page: Page): Promise<string> {
  await page.getByTestId('copy-link').click();
  await page.getByTestId('link-note').waitFor();
  const note = (await page.getByTestId('link-note').textContent()) ?? '';
  return note.startsWith('http') ? note : page.evaluate(() => navigator.clipboard.readText());
}

describe('links', () => {
  let app: { url: string; server: PreviewServer };
  let browser: Browser;
  const errors: string[] = [];

  beforeAll(async () => {
    app = await startApp();
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.server.close();
  });

  async function open(url: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(app.url).origin });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await ready(page);
    return page;
  }

  it('a Compare link sets up its columns, prompt and sampling, and Copy link round-trips it', async () => {
    const page = await open(`${app.url}?model=builtin&adapter=builtin:demo-zh&adapter=builtin:demo-short&strength=1&strength=0.5&view=compare&prompt=Hello&temperature=0.5&max_tokens=12`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=column-spec]').length === 3, undefined, { timeout: 120_000 });
    const want = [{ adapter: 'Base model', strength: 'strength 1.00' }, { adapter: 'demo-zh', strength: 'strength 1.00' }, { adapter: 'demo-short', strength: 'strength 0.50' }];
    expect(await columns(page)).toEqual(want);
    expect(await page.getByTestId('compare-prompt').inputValue()).toBe('Hello');
    await screenshot(page, 'links-0-compare');
    // The prompt is Compare's, not the chat's.
    await page.getByRole('tab', { name: 'Chat' }).click();
    expect(await page.getByTestId('prompt').inputValue()).not.toBe('Hello');
    await page.getByTestId('compare-tab').click();

    const link = await copyLink(page);
    const q = new URL(link).searchParams;
    expect(q.getAll('adapter')).toEqual(['builtin:demo-zh', 'builtin:demo-short']);
    expect(q.getAll('strength')).toEqual(['1', '0.5']);
    expect([q.get('view'), q.get('prompt'), q.get('temperature'), q.get('max_tokens')]).toEqual(['compare', 'Hello', '0.5', '12']);

    // Opened in a fresh browser: the same set-up, and the same link from it.
    const other = await open(link);
    await other.waitForFunction(() => document.querySelectorAll('[data-testid=column-spec]').length === 3, undefined, { timeout: 120_000 });
    expect(await columns(other)).toEqual(want);
    expect(await other.getByTestId('compare-prompt').inputValue()).toBe('Hello');
    expect(await copyLink(other)).toBe(link);

    // A link's values win over kept state: this browser kept "Hello"; a link with another prompt replaces it.
    await page.goto(`${app.url}?model=builtin&view=compare&prompt=Bonjour`);
    await ready(page);
    expect(await page.getByTestId('compare-prompt').inputValue()).toBe('Bonjour');
    expect(errors).toEqual([]);
  });
});
