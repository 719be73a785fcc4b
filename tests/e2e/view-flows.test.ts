// Every view answers beside itself, in the built app in headless Chromium on the built-in model: the first screen
// runs the demo comparison in one click; Compare shows Markdown (the tokens a click away) and says which columns a
// refused run left; an error stays in its view and goes when its cause does; repeated buttons name what they act on;
// Storage imports the app's own merged-model zip and lists reward models; the reward form counts its pairs.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { engineState, openApp, screenshot, type AppSession } from '../helpers/browser.js';

const columnsDone = (page: Page, n: number) =>
  page.waitForFunction((k) => document.querySelectorAll('[data-testid=column-stats][data-done]').length === k, n, { timeout: 300_000 });

/** What a screen reader calls each button in `scope`: its aria-label, or its text (hidden words included). */
const buttonNames = (page: Page, selector: string) =>
  page.locator(`${selector} button`).evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label') ?? b.textContent!.replace(/\s+/g, ' ').trim()));

describe('views that answer beside themselves', () => {
  let s: AppSession;
  let page: Page;

  beforeAll(async () => {
    s = await openApp();
    page = s.page;
    await page.goto(s.url);
  });
  afterAll(() => s?.close());

  it('the first screen runs the demo comparison in one click, as Markdown, with the tokens a click away', async () => {
    await page.getByTestId('welcome-demo').waitFor();
    await screenshot(page, 'views-0-welcome');
    await page.getByTestId('welcome-demo').click();
    await columnsDone(page, 3);
    expect(await page.getByRole('tab', { name: 'Compare' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('[data-testid=column] strong').allTextContents()).toEqual(['base', 'demo-zh × 1', 'demo-short × 1']);
    const outputs = page.getByTestId('column-output');
    expect(await outputs.evaluateAll((o) => o.map((x) => x.getAttribute('data-format')))).toEqual(['markdown', 'markdown', 'markdown']);
    // The prefilled prompt is one the built-in model learned: the base answers on topic, demo-zh in Chinese.
    expect(await page.getByTestId('compare-prompt').inputValue()).toBe('What are the benefits of exercising?');
    expect(await outputs.nth(0).textContent()).toMatch(/exercis/i);
    expect(await outputs.nth(1).textContent()).toMatch(/\p{Script=Han}/u);
    await screenshot(page, 'views-1-demo-markdown');
    await page.getByTestId('show-tokens').check();
    expect(await outputs.evaluateAll((o) => o.map((x) => x.getAttribute('data-format')))).toEqual(['tokens', 'tokens', 'tokens']);
    expect(await page.locator('[data-testid=column-output] .first').count()).toBeGreaterThan(0);
    await page.getByTestId('show-markdown').check();
  });

  it('a comparison the engine refuses says so in each column, and none waits for a first token', async () => {
    await page.getByTestId('compare-prompt').fill('word '.repeat(3000).trim());
    await page.getByTestId('compare-run').click();
    await page.getByTestId('column-failed').first().waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('column-failed').allTextContents()).toEqual(Array(3).fill('not run: the comparison was refused (see above)'));
    expect(await page.getByText('waiting for the first token').count()).toBe(0);
    expect(await page.locator('[data-testid=error][data-error-place=compare]').count()).toBe(1);
    await screenshot(page, 'views-2-compare-refused');
    // The error is Compare's: not shown in Chat, whose tab is unmarked while Compare's is marked.
    await page.getByTestId('playground-tab').click();
    expect(await page.getByTestId('error').count()).toBe(0);
    expect(await page.getByTestId('compare-tab').getByTestId('tab-error').count()).toBe(1);
    await page.getByTestId('compare-tab').click();
    expect(await page.getByTestId('compare-tab').getByTestId('tab-error').count()).toBe(0);
    await page.getByTestId('compare-prompt').fill('What are the benefits of exercising?');
  });

  it("an error stays in its view and goes when its cause does: the Train data, the model panel's source", async () => {
    await page.getByTestId('train-tab').click();
    await page.getByTestId('dataset-file').setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"instruction": "unterminated') });
    const trainError = page.locator('[data-testid=error][data-error-place=train]');
    await trainError.waitFor({ timeout: 60_000 });
    for (const tab of ['playground-tab', 'evaluate-tab']) {
      await page.getByTestId(tab).click();
      expect(await page.getByTestId('error').count(), tab).toBe(0);
      expect(await page.getByTestId('train-tab').getByTestId('tab-error').count()).toBe(1);
    }
    await page.getByTestId('train-tab').click();
    expect(await trainError.count()).toBe(1);
    await page.getByTestId('dataset-select').selectOption('builtin');
    await page.getByTestId('dataset-preview').waitFor({ timeout: 60_000 });
    expect(await trainError.count()).toBe(0);

    await page.getByRole('tab', { name: 'URL' }).click();
    await page.getByTestId('model-url').fill(new URL('/models/missing/', page.url()).href);
    await page.getByTestId('load').click();
    const modelError = page.locator('[data-testid=error][data-error-place=model]');
    await modelError.waitFor({ timeout: 60_000 });
    await page.getByRole('tab', { name: 'Hugging Face' }).click();
    expect(await modelError.count()).toBe(0);
    await page.getByRole('tab', { name: 'Built-in' }).click();
    await engineState(page, 'ready');
  });

  it('buttons repeated in a list each name what they act on', async () => {
    await page.getByTestId('adapter').filter({ hasText: 'demo-short' }).waitFor();
    const shelf = await buttonNames(page, '[data-testid=adapter]');
    expect(shelf.length).toBeGreaterThan(10);
    expect(new Set(shelf).size).toBe(shelf.length);
    expect(shelf).toContain('Remove demo-zh from the shelf');
    expect(shelf).toContain('Export PEFT .zip of demo-short');
  });

  it("Storage imports the app's own merged-model zip: it loads under its own name, saying what it is", async () => {
    const row = page.getByTestId('adapter').filter({ hasText: 'demo-zh' });
    // What the shelf is doing shows beside its buttons while it runs.
    await page.evaluate(() => {
      const w = window as unknown as { shelfSays: string[] };
      w.shelfSays = [];
      new MutationObserver(() => { const t = document.querySelector('[data-testid=shelf-why-not]')?.textContent; if (t && t !== w.shelfSays.at(-1)) w.shelfSays.push(t); })
        .observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const [zip] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), row.getByRole('button', { name: 'Export merged model with demo-zh' }).click()]);
    expect(zip.suggestedFilename()).toBe('demo-zh-merged.zip');
    expect(await page.evaluate(() => (window as unknown as { shelfSays: string[] }).shelfSays)).toContain('Merging demo-zh into a copy of the base and zipping the model folder…');
    await page.getByTestId('storage-tab').click();
    await page.getByTestId('import-file').setInputFiles({ name: 'demo-zh-merged.zip', mimeType: 'application/zip', buffer: readFileSync((await zip.path())!) });
    const kept = page.getByTestId('kept-model').filter({ hasText: 'demo-zh-merged' });
    await kept.waitFor({ timeout: 60_000 });
    expect(await kept.textContent()).toMatch(/imported folder · \d+ files/);
    expect(await page.getByTestId('error').count()).toBe(0);
    await kept.getByRole('button', { name: 'Load demo-zh-merged' }).click();
    await page.getByTestId('model-card').locator('h2').filter({ hasText: /^demo-zh-merged$/ }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('model-note').textContent()).toMatch(/with the LoRA adapter "demo-zh" merged into its weights at strength 1/);
    await screenshot(page, 'views-3-merged-imported');
    // The adapter is in the weights: the base of this model answers in Chinese.
    await page.getByTestId('playground-tab').click();
    await page.getByTestId('new-chat').click();
    if (!(await page.getByTestId('chat-temperature').isVisible())) await page.getByTestId('chat-settings').locator('summary').click();
    await page.getByTestId('chat-temperature').fill('0');
    await page.getByTestId('chat-max-tokens').fill('16');
    await page.getByTestId('prompt').fill('What are the benefits of exercising?');
    await page.getByTestId('generate').click();
    await page.waitForFunction(() => !!document.querySelector('[data-testid=regenerate]'), null, { timeout: 120_000 });
    expect(await page.getByTestId('output').textContent()).toMatch(/\p{Script=Han}/u);
  });

  it("a model whose chat template reads enable_thinking (Qwen3's) offers Think first; an answer's thinking shows folded", async () => {
    // The built-in model's files with its ChatML template ending as Qwen3's does (thinking off: an empty think block).
    const demo = new URL('../../public/models/demo/', import.meta.url);
    const tcfg = JSON.parse(readFileSync(new URL('tokenizer_config.json', demo), 'utf8'));
    tcfg.chat_template = tcfg.chat_template.replace("{{ '<|im_start|>assistant\\n' }}", "{{ '<|im_start|>assistant\\n' }}{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}");
    expect(tcfg.chat_template).toContain('enable_thinking');
    const folder = join(mkdtempSync(join(tmpdir(), 'lora-lab-thinking-')), 'thinking-demo');
    mkdirSync(folder);
    for (const name of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']) writeFileSync(join(folder, name), readFileSync(new URL(name, demo)));
    writeFileSync(join(folder, 'tokenizer_config.json'), JSON.stringify(tcfg));
    await page.getByRole('tab', { name: 'Local folder' }).click();
    await page.getByTestId('model-folder-input').setInputFiles(folder);
    await page.getByTestId('load').click();
    await page.getByTestId('model-card').locator('h2').filter({ hasText: 'thinking-demo' }).waitFor({ timeout: 120_000 });
    await page.getByTestId('playground-tab').click();
    await page.getByTestId('new-chat').click();
    if (!(await page.getByTestId('chat-temperature').isVisible())) await page.getByTestId('chat-settings').locator('summary').click();
    // The same question with thinking on (the template's default), then off in a new chat: off, the prompt ends with
    // the empty think block, so it is longer by that block's tokens.
    const promptTokens = async (think: boolean) => {
      if (!(await page.getByTestId('chat-temperature').isVisible())) await page.getByTestId('chat-settings').locator('summary').click();
      expect(await page.getByTestId('chat-thinking').isChecked()).toBe(true); // each new chat starts with it on
      if (!think) await page.getByTestId('chat-thinking').uncheck();
      await page.getByTestId('chat-max-tokens').fill('8');
      await page.getByTestId('prompt').fill('What are the benefits of exercising?');
      await page.getByTestId('generate').click();
      await page.waitForFunction(() => !!document.querySelector('[data-testid=regenerate]'), null, { timeout: 120_000 });
      const stats = (await page.locator('[data-testid=turn-assistant]').last().textContent())!;
      const [, prefilled, kept] = /prefilled (\d+)(?:, (\d+) kept from before)?/.exec(stats)!;
      return Number(prefilled) + Number(kept ?? 0);
    };
    const on = await promptTokens(true);
    await page.getByTestId('new-chat').click();
    const off = await promptTokens(false);
    expect(off - on).toBeGreaterThanOrEqual(3); // <think>, </think> and the new lines around them
    // A kept answer that thought first: the thinking folded above the answer.
    await page.evaluate(() => new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('lora-lab');
      open.onsuccess = () => {
        const tx = open.result.transaction('conversations', 'readwrite');
        tx.objectStore('conversations').put({
          id: 'c-thought', title: 'Thought first', createdAt: Date.now(), updatedAt: Date.now() + 600_000, model: null, adapter: null, strength: 1, system: '', overflow: 'stop',
          settings: { temperature: 0, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 0, maxNewTokens: 16, thinking: true },
          turns: [{ role: 'user', content: 'Why?' }, { role: 'assistant', content: '<think>\nThe user asks why; weigh it.\n</think>\n\n**Because.**' }],
        });
        tx.oncomplete = () => { open.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
    }));
    await page.reload();
    await page.getByTestId('conversations').getByText('Thought first').click();
    const thinking = page.getByTestId('thinking');
    await thinking.waitFor();
    expect(await thinking.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await thinking.locator('summary').textContent()).toMatch(/^Thought \(6 words\)$/);
    expect(await page.getByTestId('output').innerHTML()).toContain('<strong>Because.</strong>');
    expect(await page.getByTestId('output').textContent()).not.toContain('weigh');
    await screenshot(page, 'views-5-thinking');
    // The folder loaded above is gone with the reload: the built-in model again, for what follows.
    await page.goto(`${s.url}?model=builtin`);
    await engineState(page, 'ready');
  });

  it('the reward form counts the pairs its data holds; Storage lists reward models apart from adapters', async () => {
    await page.getByTestId('train-tab').click();
    await page.getByTestId('objective-reward').check();
    await page.getByTestId('pairs-source').selectOption('dataset');
    const comparison = [{ user_input: 'Name a colour.', responses_and_scores: [{ response: 'Blue.', score: 9 }, { response: 'A colour.', score: 5 }, { response: 'No.', score: 1 }] }];
    await page.getByTestId('pairs-file').setInputFiles({ name: 'three-pairs.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(comparison)) });
    await page.getByTestId('pairs-available').filter({ hasText: /^all 3$/ }).waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('pairs-used').inputValue()).toBe('64');
    await page.getByTestId('pairs-used').fill('2');
    expect(await page.getByTestId('pairs-available').textContent()).toBe('2 of 3');
    await page.getByTestId('pairs-used').fill('64');
    await page.getByTestId('objective-adapter').check();

    await page.evaluate(() => new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('lora-lab');
      open.onsuccess = () => {
        const tx = open.result.transaction('adapters', 'readwrite');
        tx.objectStore('adapters').put({ name: 'kept-rm', config: '{}', safetensors: new Uint8Array(2048), baseModel: 'lora-lab/built-in-demo', origin: 'reward model trained here', size: 2048, savedAt: Date.now(), kind: 'reward' });
        tx.oncomplete = () => { open.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
    }));
    await page.getByTestId('storage-tab').click();
    await page.getByRole('button', { name: 'Refresh' }).click();
    const rm = page.getByTestId('kept-reward').filter({ hasText: 'kept-rm' });
    await rm.waitFor();
    expect(await rm.textContent()).toMatch(/LoRA \+ score head, trained here on lora-lab\/built-in-demo.*2\.0 KB/s);
    expect(await page.getByTestId('kept-adapter').filter({ hasText: 'kept-rm' }).count()).toBe(0);
    await screenshot(page, 'views-4-storage-reward');
    // Storage's rows (a model, a dataset, a reward model, a comparison) name what each of their buttons acts on.
    const storage = await buttonNames(page, '[data-testid=storage] li:not([data-testid=kept-conversation])');
    expect(storage.length).toBeGreaterThan(8);
    expect(new Set(storage).size).toBe(storage.length);
    page.once('dialog', (d) => void d.accept());
    await rm.getByRole('button', { name: 'Delete the reward model kept-rm' }).click();
    await page.waitForFunction(() => ![...document.querySelectorAll('[data-testid=kept-reward]')].some((e) => e.textContent?.includes('kept-rm')), undefined, { timeout: 30_000 });
    expect(s.errors).toEqual([]);
  });
});
