// Evaluation end to end in Chromium: the built-in model and a demo adapter on the paper's user-oriented set, the
// summary table and chart; then a blind review whose page names no model until it ends, voted with the keyboard and
// the buttons, revealed as win / tie / lose percentages per criterion.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { readFileSync } from 'node:fs';
import { launch, screenshot, startApp } from '../helpers/browser.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { userOrientedSet } from '../../src/lib/eval/sets.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { readF32Weights, rewardReference, type RewardConfig } from '../reference/reward.js';

const rewardDir = new URL('../fixtures/reward-tiny/', import.meta.url).pathname;
const REWARD_FILES = ['onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json'];

describe('evaluate', () => {
  let server: PreviewServer;
  let browser: Browser;
  let page: Page;
  let hub: HfServer;
  const errors: string[] = [];

  beforeAll(async () => {
    const app = await startApp();
    server = app.server;
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    hub = await startHfServer({ 'lab/tiny-reward': { files: new Map(REWARD_FILES.map((f) => [f, new Uint8Array(readFileSync(rewardDir + f))])) } });
    await page.goto(`${app.url}?model=builtin&adapter=builtin:demo-short&view=evaluate&hf-endpoint=${encodeURIComponent(hub.endpoint)}`);
  });
  afterAll(async () => {
    await hub?.close();
    await browser?.close();
    await server?.close();
  });

  it('evaluates base and an adapter, then a blind review reveals the models only at the end', async () => {
    await page.waitForFunction(() => document.documentElement.dataset.engineState === 'ready', null, { timeout: 120_000 });
    await page.getByTestId('eval-adapter').first().waitFor({ timeout: 60_000 });
    await page.getByTestId('eval-adapter').first().check();
    await page.getByTestId('eval-limit').fill('2');
    await page.getByTestId('eval-max-tokens').fill('6');
    await page.getByTestId('eval-run').click();
    await page.getByTestId('eval-progress').waitFor({ timeout: 30_000 });
    await page.getByTestId('eval-summary').waitFor({ timeout: 180_000 });
    const rows = await page.locator('[data-testid=eval-summary] tbody tr').allTextContents();
    expect(rows.length).toBe(2);
    expect(rows[0]).toMatch(/^base2/);
    expect(rows[1]).toMatch(/^demo-short@12/);
    await page.getByTestId('eval-chart').waitFor();
    // Each example's answers sit under its instruction and the reference they are scored against.
    const groups = page.getByTestId('answer-group');
    expect(await groups.count()).toBe(2);
    for (let g = 0; g < 2; g++) {
      expect((await groups.nth(g).getByTestId('answer-instruction').textContent())!.length).toBeGreaterThan(10);
      expect(await groups.nth(g).getByTestId('answer-instruction').textContent()).not.toBe('(instruction not kept)');
      expect(await groups.nth(g).getByTestId('answer-reference').textContent()).toMatch(/^Reference: \S/);
      expect(await groups.nth(g).locator('tr').count()).toBe(3); // the example, then base and demo-short
    }
    await screenshot(page, 'eval-1-results');

    await page.getByTestId('review-start').click();
    await page.getByTestId('review').waitFor();
    // Blind: neither the page nor its address names a model while voting.
    const blind = async () => {
      const html = await page.evaluate(() => document.documentElement.outerHTML);
      expect(html).not.toContain('demo-short');
      expect(html).not.toMatch(/>\s*base\s*</);
      expect(page.url()).not.toContain('review');
    };
    await blind();
    await page.keyboard.press('1');
    await page.keyboard.press('2');
    await page.keyboard.press('3');
    await blind();
    await page.getByTestId('vote-helpfulness-A').click();
    await page.getByTestId('vote-honesty-A').click();
    await page.getByTestId('vote-harmlessness-tie').click();
    expect(await page.getByTestId('review-progress').textContent()).toMatch(/2 of 2 pairs fully voted/);
    await blind();
    await screenshot(page, 'eval-2-review');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'eval-2-review-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.getByTestId('review-finish').click();
    await page.getByTestId('review-result').waitFor();
    const result = await page.getByTestId('review-result').textContent();
    expect(result).toMatch(/helpfulness2/);
    expect(await page.locator('h2').first().textContent()).toMatch(/Review finished: (base vs demo-short@1|demo-short@1 vs base)/);
    // Percentages add up to 100 for each criterion.
    const cells = await page.locator('[data-testid=review-result] tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].slice(2).map((td) => parseFloat(td.textContent ?? ''))));
    expect(cells.length).toBe(3);
    for (const pct of cells) expect(pct.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
    await screenshot(page, 'eval-3-revealed');
    await page.getByTestId('review-close').click();
    await page.getByTestId('review-tally').waitFor();

    // The loaded model judges the same two models' answers (the first question: each reply prefills the whole review
    // prompt), in both orders. A 3M-parameter judge writes no scores worth reading in 6 tokens: the question is marked
    // unreadable, never guessed.
    await page.getByTestId('judge-max-tokens').fill('6');
    await page.getByTestId('judge-limit').fill('1');
    await page.getByTestId('judge-start').click();
    await page.getByTestId('judge-row').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('judge-row').textContent()).toMatch(/judged by built-in demo model.* · 2\/2 replies · done/);
    expect(await page.getByTestId('judge-notes').textContent()).toMatch(/1 question with no readable scores \(left out\)/);
    expect(await page.getByTestId('judge-totals').count()).toBe(0); // no totals made of nothing
    // Why no scores could be read can be checked: the judge's own replies, in both orders, as it wrote them.
    await page.getByTestId('judge-row').getByText('Scores per question').click();
    await page.getByTestId('judge-replies').locator('summary').click();
    expect(await page.getByTestId('judge-reply').count()).toBe(2);
    expect(await page.getByTestId('judge-replies').textContent()).toMatch(/shown first:[\s\S]*shown first:/);
    // web-llm can judge too, once one of its models is loaded (its picker shows what this GPU can run).
    await page.getByTestId('judge-backend').selectOption('web-llm');
    expect(await page.getByTestId('judge-start').getAttribute('title')).toBe('Load a web-llm model first.');
    await page.getByTestId('webllm-panel').waitFor();
    await page.getByTestId('judge-backend').selectOption('engine');
    await screenshot(page, 'eval-4-judge');

    // A reward model from the hub's layout (served locally) on onnxruntime-web scores every answer, as the float64
    // reference of the same weights does.
    await page.getByTestId('reward-source').fill('lab/tiny-reward');
    await page.getByTestId('reward-load').click();
    await page.getByTestId('reward-info').waitFor({ timeout: 120_000 });
    const info = await page.getByTestId('reward-info').textContent();
    expect(info).toMatch(/lab\/tiny-reward@main \(onnx\/model\.onnx\) on onnxruntime-web (WebGPU|wasm)/);
    console.log(`reward model in Chromium: ${info}`);
    await page.getByTestId('reward-score').click();
    await page.getByTestId('reward-table').waitFor({ timeout: 120_000 });
    const scored = await page.getByTestId('answer-reward').evaluateAll((tds) => tds.map((td) => ({ id: td.getAttribute('data-example')!, score: Number(td.getAttribute('data-reward')), answer: td.nextElementSibling!.textContent! })));
    expect(scored).toHaveLength(4);
    const examples = new Map(userOrientedSet(new Uint8Array(readFileSync(new URL('../../public/data/eval/user_oriented_instructions.jsonl', import.meta.url)))).map((e) => [e.id, e]));
    const tok = new TextTokenizer(JSON.parse(readFileSync(rewardDir + 'tokenizer.json', 'utf8')), JSON.parse(readFileSync(rewardDir + 'tokenizer_config.json', 'utf8')), null);
    const weights = readF32Weights(new Uint8Array(readFileSync(rewardDir + 'reference-weights.safetensors')));
    const config = JSON.parse(readFileSync(rewardDir + 'config.json', 'utf8')) as RewardConfig;
    let worst = 0;
    for (const c of scored) {
      const e = examples.get(c.id)!;
      const question = e.input.trim() ? `${e.instruction}\n\n${e.input}` : e.instruction;
      const ids = tok.encode(tok.renderChat([{ role: 'user', content: question }, { role: 'assistant', content: c.answer }], false), false);
      worst = Math.max(worst, Math.abs(c.score - rewardReference(weights, config, ids)));
    }
    console.log(`reward model in Chromium, largest |score - float64| over 4 answers: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-4);
    await screenshot(page, 'eval-5-reward');

    // Best-of-n in the Compare view, with the same reward model: each column's samples ranked best first.
    await page.getByTestId('compare-tab').click();
    await page.getByTestId('bestof-panel').locator('summary').click();
    await page.getByTestId('bestof-n').fill('2');
    await page.getByLabel('Max new tokens').fill('8');
    await page.getByLabel('Temperature').fill('0');
    expect(await page.getByTestId('bestof-why-not').textContent()).toMatch(/raise the temperature/);
    await page.getByLabel('Temperature').fill('0.9');
    await page.getByTestId('compare-prompt').fill('Name a colour.');
    await page.getByTestId('compare-run').click();
    await page.getByTestId('ranked-columns').waitFor({ timeout: 120_000 });
    const columns = page.getByTestId('ranked-column');
    expect(await columns.count()).toBe(await page.getByTestId('column-spec').count());
    for (let c = 0; c < await columns.count(); c++) {
      const ranked = await columns.nth(c).getByTestId('ranked-sample').evaluateAll((lis) => lis.map((li) => ({ score: Number(li.getAttribute('data-score')), text: li.querySelector('pre')!.textContent! })));
      expect(ranked).toHaveLength(2);
      expect(ranked[0].score).toBeGreaterThanOrEqual(ranked[1].score);
      expect(await columns.nth(c).getByTestId('ranked-best').textContent()).toBe(ranked[0].text);
      const ids = tok.encode(tok.renderChat([{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: ranked[0].text }], false), false);
      expect(Math.abs(ranked[0].score - rewardReference(weights, config, ids))).toBeLessThanOrEqual(1e-4);
    }
    await screenshot(page, 'eval-6-best-of');
    await page.getByTestId('evaluate-tab').click();
    expect(errors).toEqual([]);
  });

  it('a stopped evaluation is kept and resumes to a complete one', async () => {
    // The form kept its settings through the review page.
    expect(await page.getByTestId('eval-adapter').first().isChecked()).toBe(true);
    expect(await page.getByTestId('eval-limit').inputValue()).toBe('2');
    await page.getByTestId('eval-limit').fill('4');
    // ROUGE-L and answers only this time: the references' loss (one step per reference token) was shown above.
    await page.getByTestId('eval-loss').uncheck();
    await page.getByTestId('eval-run').click();
    await page.waitForFunction(() => /^[1-3] \/ 4 examples/.test(document.querySelector('[data-testid=eval-progress] .muted')?.textContent ?? ''), null, { timeout: 180_000 });
    await page.getByTestId('eval-stop').click();
    await page.waitForFunction(() => document.documentElement.dataset.engineState === 'ready', null, { timeout: 120_000 });
    const row = page.getByTestId('eval-run-row').first();
    expect(await row.textContent()).toMatch(/[1-3]\/4 examples · stopped/);
    await row.getByRole('button', { name: 'Resume' }).click();
    await page.waitForFunction(() => /4\/4 examples · done/.test(document.querySelector('[data-testid=eval-run-row]')?.textContent ?? ''), null, { timeout: 240_000 });
    await screenshot(page, 'eval-4-resumed');
    const rows = await page.locator('[data-testid=eval-summary] tbody tr').allTextContents();
    expect(rows).toEqual([expect.stringMatching(/^base4/), expect.stringMatching(/^demo-short@14/)]);
    expect(await page.getByTestId('answer-group').count()).toBe(4); // each example once,
    expect(await page.locator('.answers tbody tr:not(.example)').count()).toBe(8); // with each model's answer once
  });
});
