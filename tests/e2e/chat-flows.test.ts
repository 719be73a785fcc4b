// Chat flows that used to strand a person, in the built app in headless Chromium on the built-in model: a refused
// message leaves no trace (it returns to the input) and a conversation wedged by the old behaviour goes on; a chat's
// adapter is loaded again when the chat is reopened after a reload (or Send says it cannot be); Regenerate draws a
// new answer each time and keeps the earlier ones.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { engineState, openApp, screenshot, type AppSession } from '../helpers/browser.js';

const ready = (page: Page) => engineState(page, 'ready');
const answers = (page: Page) => page.locator('[data-testid=turn-assistant]').count();

/** Sends `text` and waits for answer number `n`. */
async function ask(page: Page, text: string, n: number): Promise<string> {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('generate').click();
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid=turn-assistant]').length === k && !!document.querySelector('[data-testid=regenerate]'), n, { timeout: 300_000 });
  return (await page.getByTestId('output').textContent()) ?? '';
}

async function settings(page: Page, fill: Record<string, string>): Promise<void> {
  const panel = page.getByTestId('chat-settings');
  if (!(await panel.evaluate((d) => (d as HTMLDetailsElement).open))) await panel.locator('summary').click();
  for (const [id, v] of Object.entries(fill)) await page.getByTestId(id).fill(v);
  await panel.locator('summary').click();
}

/**
 * Puts a conversation record straight into the app's IndexedDB, as an earlier version of the app kept it; its
 * `updatedAt` is milliseconds from now (the list opens the most recent).
 */
function keepConversation(page: Page, conversation: Record<string, unknown>): Promise<void> {
  return page.evaluate((c) => new Promise<void>((resolve, reject) => {
    const open = indexedDB.open('lora-lab');
    open.onsuccess = () => {
      const tx = open.result.transaction('conversations', 'readwrite');
      tx.objectStore('conversations').put({ ...c, createdAt: Date.now(), updatedAt: Date.now() + (c.updatedAt as number) });
      tx.oncomplete = () => { open.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
    open.onerror = () => reject(open.error);
  }), conversation);
}

describe('chat flows that must not strand a person', () => {
  let s: AppSession;
  let page: Page;
  let app: { url: string };

  beforeAll(async () => {
    s = await openApp();
    ({ page } = s);
    app = { url: s.url };
    await page.goto(`${app.url}?model=builtin`);
    await ready(page);
    await settings(page, { 'chat-max-tokens': '16' });
  });
  afterAll(() => s?.close());

  it('a message the engine refuses returns to the input, and the next one is answered', async () => {
    const long = 'word '.repeat(3000).trim();
    await page.getByTestId('prompt').fill(long);
    await page.getByTestId('generate').click();
    await page.getByTestId('chat-error').waitFor({ timeout: 120_000 });
    // Not kept as a turn: the text is back in the box to edit, the reason beside it.
    expect(await page.locator('[data-testid=turn-user]').count()).toBe(0);
    expect(await page.getByTestId('prompt').inputValue()).toBe(long);
    await screenshot(page, 'chat-flows-0-refused');
    await page.getByTestId('chat-error').getByRole('button', { name: 'Dismiss' }).click();
    const answer = await ask(page, 'Give three tips for staying healthy.', 1);
    expect(answer.length).toBeGreaterThan(0);
    expect(await page.locator('[data-testid=turn-user]').count()).toBe(1);
    expect(await page.getByTestId('chat-error').count()).toBe(0);
  });

  it('a conversation kept wedged by the old behaviour (two user turns in a row) loads and goes on', async () => {
    await keepConversation(page, {
      id: 'c-wedged', title: 'Wedged', updatedAt: 60_000, model: null, adapter: null, strength: 1, system: '',
      settings: { temperature: 0, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0, maxNewTokens: 16 }, overflow: 'stop',
      turns: [{ role: 'user', content: 'word '.repeat(3000) }, { role: 'user', content: 'What is the capital of France?' }],
    });
    await page.goto(`${app.url}?model=builtin`);
    await ready(page);
    await page.getByTestId('conversations').getByText('Wedged').waitFor();
    expect(await page.getByTestId('conversations').locator('li.active').textContent()).toContain('Wedged');
    // The first message never had an answer and is not sent; the last one waits for one.
    expect(await page.locator('[data-testid=unanswered]').count()).toBe(2);
    await page.getByTestId('answer-turn').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=turn-assistant]').length === 1 && !!document.querySelector('[data-testid=regenerate]'), undefined, { timeout: 300_000 });
    expect(await page.getByTestId('chat-error').count()).toBe(0);
    await ask(page, 'And of Italy?', 2);
    expect(await page.getByTestId('chat-error').count()).toBe(0);
    // The skipped message can be removed in one click.
    await page.getByTestId('remove-turn').first().click();
    expect(await page.locator('[data-testid=unanswered]').count()).toBe(0);
    expect(await page.locator('[data-testid=turn-user]').count()).toBe(2);
  });

  it("a chat's adapter is loaded again when the chat is reopened after a reload", async () => {
    await page.goto(`${app.url}?model=builtin&adapter=builtin:demo-zh`);
    await ready(page);
    await page.getByTestId('new-chat').click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=chat-adapter] option')].some((o) => o.textContent === 'demo-zh'), undefined, { timeout: 120_000 });
    await page.getByTestId('chat-settings').locator('summary').click();
    await page.getByTestId('chat-adapter').selectOption('demo-zh');
    await page.getByTestId('chat-settings').locator('summary').click();
    await settings(page, { 'chat-temperature': '0', 'chat-max-tokens': '16' });
    const before = await ask(page, 'Give three tips for staying healthy.', 1);
    expect(before).toMatch(/\p{Script=Han}/u);

    await page.goto(`${app.url}?model=builtin`); // the model, without the adapter on its shelf
    await ready(page);
    // The chat loads its adapter (the built-in one) by itself; Send waits for it.
    await page.waitForFunction(() => !document.querySelector('[data-testid=adapter-missing]') && [...document.querySelectorAll('[data-testid=chat-adapter] option')].some((o) => o.textContent === 'demo-zh'), undefined, { timeout: 120_000 });
    expect(await page.getByTestId('chat-adapter').inputValue()).toBe('demo-zh');
    const again = await ask(page, 'Give three tips for staying healthy.', 2);
    expect(again).toMatch(/\p{Script=Han}/u);
    expect(await page.getByTestId('stats').textContent()).toMatch(/demo-zh ×1/);
  });

  it('an adapter that cannot be loaded keeps Send disabled, saying so, until the chat uses the base', async () => {
    await keepConversation(page, {
      id: 'c-gone', title: 'Gone adapter', updatedAt: 120_000, model: null, adapter: 'deleted-adapter', strength: 1, system: '',
      settings: { temperature: 0, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0, maxNewTokens: 16 }, overflow: 'stop', turns: [],
    });
    await page.goto(`${app.url}?model=builtin`);
    await ready(page);
    await page.getByTestId('adapter-missing').waitFor();
    expect(await page.getByTestId('adapter-missing').textContent()).toMatch(/deleted-adapter, which is not loaded, nor kept in this browser/);
    await page.getByTestId('prompt').fill('Hello');
    expect(await page.getByTestId('generate').isDisabled()).toBe(true);
    await screenshot(page, 'chat-flows-1-adapter-missing');
    await page.getByTestId('adapter-use-base').click();
    expect(await page.getByTestId('generate').isDisabled()).toBe(false);
  });

  it('a number out of range is marked at its field, in words with its label, and the action waits until it is fixed', async () => {
    await page.getByTestId('new-chat').click();
    await page.getByTestId('prompt').fill('Hello');
    const panel = page.getByTestId('chat-settings');
    if (!(await panel.evaluate((d) => (d as HTMLDetailsElement).open))) await panel.locator('summary').click();
    for (const [id, value, words] of [
      ['chat-temperature', '-5', 'Temperature must be from 0 to 2 (0 is greedy); -5 is not.'],
      ['chat-top-k', '1000', 'Top-k must be from 0 to 64 (0 turns it off); 1000 is not.'],
      ['chat-max-tokens', '999999', 'Max new tokens must be from 1 to 4096; 999999 is not.'],
    ] as const) {
      await page.getByTestId(id).fill(value);
      expect(await page.getByTestId(id).getAttribute('aria-invalid')).toBe('true');
      expect(await panel.getByTestId('field-error').textContent()).toBe(words);
      expect(await page.getByTestId('generate').isDisabled()).toBe(true);
      expect(await page.locator('.composer').textContent()).toContain(words);
      if (id === 'chat-temperature') await screenshot(page, 'chat-flows-3-bad-number');
      await page.getByTestId(id).fill(id === 'chat-max-tokens' ? '16' : id === 'chat-top-k' ? '40' : '0.7');
      expect(await page.getByTestId(id).getAttribute('aria-invalid')).toBe('false');
    }
    expect(await page.getByTestId('generate').isDisabled()).toBe(false);
    await panel.locator('summary').click();
    // Compare and Train hold their numbers to the same table.
    await page.getByTestId('compare-tab').click();
    await page.getByTestId('compare-temperature').fill('7');
    expect(await page.getByTestId('compare-run').isDisabled()).toBe(true);
    expect(await page.getByTestId('compare-why-not').textContent()).toBe('Temperature must be from 0 to 2 (0 is greedy); 7 is not.');
    await page.getByTestId('compare-temperature').fill('0');
    await page.getByTestId('train-tab').click();
    await page.getByTestId('train-steps').fill('0');
    expect(await page.getByTestId('train-start').isDisabled()).toBe(true);
    expect(await page.getByTestId('train-why-not').textContent()).toMatch(/^Steps must be from 1 to 1,000,000; 0 is not\.$/);
    await page.getByTestId('train-steps').fill('20');
    await page.getByTestId('train-cutoff').fill('32');
    expect(await page.getByTestId('train-why-not').textContent()).toMatch(/^Cutoff \(tokens\) must be from 64 to 2048 \(shorter cuts most answers off\); 32 is not\.$/);
    await page.getByTestId('train-cutoff').fill('256');
    await page.getByRole('tab', { name: 'Chat' }).click();
  });

  it('source fields are checked before anything is fetched: a repo id must be owner/name, a URL http(s)', async () => {
    const requests: string[] = [];
    const seen = (r: { url(): string }) => requests.push(r.url());
    page.on('request', seen);
    await page.getByRole('tab', { name: 'Hugging Face' }).click();
    await page.getByTestId('hf-repo').fill('%%% not/a repo id');
    expect(await page.getByTestId('source-problem').textContent()).toBe('"%%% not/a repo id" is not a Hugging Face repo id: it looks like owner/name (letters, digits, -, _ and .).');
    expect(await page.getByTestId('load').isDisabled()).toBe(true);
    await page.getByTestId('hf-repo').fill('HuggingFaceTB/SmolLM2-135M-Instruct');
    expect(await page.getByTestId('source-problem').count()).toBe(0);
    await page.getByRole('tab', { name: 'URL' }).click();
    await page.getByTestId('model-url').fill('not a url at all');
    expect(await page.getByTestId('source-problem').textContent()).toBe('"not a url at all" is not a web address: a base URL starts with http:// or https://.');
    expect(await page.getByTestId('load').isDisabled()).toBe(true);
    await page.getByTestId('adapter-source').fill('no such thing');
    expect(await page.getByTestId('adapter-source-problem').textContent()).toMatch(/"no such thing" is neither a Hugging Face repo id \(owner\/name\) nor a web address/);
    expect(await page.getByRole('button', { name: 'Add', exact: true }).isDisabled()).toBe(true);
    await page.getByTestId('adapter-source').fill('');
    await page.getByRole('tab', { name: 'Built-in' }).click();
    page.off('request', seen);
    expect(requests.filter((u) => /not%20a%20url|%25%25%25|no%20such/.test(u))).toEqual([]);
  });

  it('a reward model that cannot be loaded says why beside its Load button, and the message goes with an edit', async () => {
    await page.getByTestId('compare-tab').click();
    await page.getByTestId('bestof-panel').locator('summary').click();
    await s.context.setOffline(true);
    await page.getByTestId('reward-source').fill('nobody/no-such-reward');
    await page.getByTestId('reward-load').click();
    const error = page.getByTestId('reward-error').getByTestId('error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.getAttribute('data-error-name')).toBe('OfflineError');
    const [button, box] = [await page.getByTestId('reward-load').boundingBox(), await error.boundingBox()];
    expect(Math.abs(box!.y - button!.y)).toBeLessThan(150); // beside the button, not at the top of the page
    await screenshot(page, 'chat-flows-4-reward-error');
    await page.getByTestId('reward-source').fill('nobody/another');
    expect(await page.getByTestId('reward-error').getByTestId('error').count()).toBe(0);
    await s.context.setOffline(false);
    await page.getByTestId('bestof-panel').locator('summary').click();
    await page.getByRole('tab', { name: 'Chat' }).click();
  });

  it('the first Tab offers a skip to the views; each view tab names its panel', async () => {
    await page.goto(`${app.url}?model=builtin`);
    await ready(page);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('skip-link');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('role'))).toBe('tab');
    expect(await page.getByRole('tab', { name: 'Chat' }).getAttribute('aria-controls')).toBe('view-panel');
    expect(await page.getByRole('tabpanel').getAttribute('aria-labelledby')).toBe('tab-playground');
  });

  it('every view fits a 390 px phone (nothing wider than the screen) and a 1280 px desktop', async () => {
    const widths: Record<string, number> = {};
    for (const [w, h] of [[390, 844], [1280, 900]]) {
      await page.setViewportSize({ width: w, height: h });
      for (const [tab, name] of [['playground-tab', 'chat'], ['compare-tab', 'compare'], ['train-tab', 'train'], ['evaluate-tab', 'evaluate'], ['storage-tab', 'storage']]) {
        await page.getByTestId(tab).click();
        await page.waitForTimeout(300);
        widths[`${name}@${w}`] = await page.evaluate(() => document.documentElement.scrollWidth);
        await screenshot(page, `views-${name}-${w}`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByTestId('playground-tab').click();
    console.log(`page widths: ${JSON.stringify(widths)}`);
    for (const [k, v] of Object.entries(widths)) expect(v, k).toBeLessThanOrEqual(Number(k.split('@')[1]));
  });

  it('Storage lists evaluations (with their votes) and conversations, exports and deletes them', async () => {
    // An evaluation with one answer and a blind review of two votes, as the Evaluate view keeps them.
    await page.evaluate(() => new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('lora-lab');
      open.onsuccess = () => {
        const tx = open.result.transaction(['evalRuns', 'evalResults', 'reviews'], 'readwrite');
        tx.objectStore('evalRuns').put({ id: 'run-kept', name: 'kept evaluation', createdAt: Date.now(), baseModel: 'lora-lab/built-in-demo', setLabel: 'user-oriented',
          examples: [{ id: 'e1', instruction: 'Say hi.', input: '', reference: 'Hi!' }], models: [{ adapter: null, strength: 1 }], options: {}, status: 'done' });
        tx.objectStore('evalResults').put({ runId: 'run-kept', id: 'e1', model: 'base', prediction: 'Hello!', reference: 'Hi!', rougeL: 0.5, loss: 1.2 });
        tx.objectStore('reviews').put({ id: 'rev-1', runId: 'run-kept', createdAt: Date.now(), models: ['base', 'base'], pairs: [], keys: [], votes: [{}, {}], finished: false });
        tx.oncomplete = () => { open.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
    }));
    await keepConversation(page, { id: 'c-storage', title: 'Kept chat', updatedAt: 180_000, model: null, adapter: null, strength: 1, system: '',
      settings: { temperature: 0, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0, maxNewTokens: 16 }, overflow: 'stop',
      turns: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] });
    await page.goto(`${app.url}?model=builtin&view=storage`);
    await ready(page);
    const evaluation = page.getByTestId('kept-evaluation').filter({ hasText: 'kept evaluation' });
    await evaluation.waitFor();
    expect(await evaluation.textContent()).toMatch(/user-oriented · 1 example × 1 model · 2 blind votes · done/);
    const conversation = page.getByTestId('kept-conversation').filter({ hasText: 'Kept chat' });
    expect(await conversation.textContent()).toMatch(/2 turns/);
    const [jsonl] = await Promise.all([page.waitForEvent('download'), evaluation.getByRole('button', { name: 'JSONL' }).click()]);
    expect(jsonl.suggestedFilename()).toBe('kept_evaluation.jsonl');
    await screenshot(page, 'chat-flows-5-storage-lists');
    page.once('dialog', (d) => void d.accept());
    await evaluation.getByRole('button', { name: /Delete the evaluation/ }).click();
    await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=kept-evaluation]')].some((e) => e.textContent?.includes('kept evaluation')), undefined, { timeout: 30_000 });
    page.once('dialog', (d) => void d.accept());
    await conversation.getByRole('button', { name: /Delete the conversation/ }).click();
    await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=kept-conversation]')].some((e) => e.textContent?.includes('Kept chat')), undefined, { timeout: 30_000 });
    // The Chat view let go of it too (it was the open one): it is neither listed nor saved back.
    await page.getByTestId('playground-tab').click();
    expect(await page.getByTestId('conversations').textContent()).not.toContain('Kept chat');
    await page.reload();
    await ready(page).catch(() => {});
    await page.getByTestId('storage-tab').click();
    await page.getByRole('heading', { name: /^Evaluations/ }).waitFor();
    expect(await page.getByTestId('kept-conversation').filter({ hasText: 'Kept chat' }).count()).toBe(0);
    expect(await page.getByTestId('kept-evaluation').filter({ hasText: 'kept evaluation' }).count()).toBe(0);
    await page.getByTestId('playground-tab').click();
  });

  it('Regenerate at temperature 1 draws new answers and keeps every one', async () => {
    await page.getByTestId('new-chat').click();
    await settings(page, { 'chat-temperature': '1', 'chat-max-tokens': '24' });
    const first = await ask(page, 'Write a short poem about the sea.', 1);
    const texts = [first];
    for (let k = 2; k <= 3; k++) {
      await page.getByTestId('regenerate').click();
      await page.waitForFunction((n) => document.querySelector('[data-testid=version-shown]')?.textContent?.trim() === `${n} / ${n}` && !!document.querySelector('[data-testid=regenerate]'), k, { timeout: 300_000 });
      texts.push((await page.getByTestId('output').textContent()) ?? '');
    }
    expect(new Set(texts).size).toBe(3);
    expect(await answers(page)).toBe(1);
    // The earlier answers are a click away.
    await page.getByRole('button', { name: 'Previous answer' }).click();
    await page.getByRole('button', { name: 'Previous answer' }).click();
    expect(await page.getByTestId('version-shown').textContent()).toMatch(/1 \/ 3/);
    expect(await page.getByTestId('output').textContent()).toBe(first);
    await screenshot(page, 'chat-flows-2-versions');
    expect(s.errors).toEqual([]);
  });
});
