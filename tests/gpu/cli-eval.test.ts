// lora-lab eval as a user runs it: the paper's user-oriented set through the built-in model and a demo adapter,
// one JSON line per example and model then a summary per model; a run stopped halfway (and torn mid-line) resumes
// from --out and gives exactly the results of an uninterrupted run.

import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliHere, jsonLines } from '../helpers/cli.js';

const byKey = (rows: { id: string; model: string }[]) => Object.fromEntries(rows.map((r) => [`${r.id}|${r.model}`, r]));

describe('lora-lab eval', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-lab-eval-'));
  const base = ['eval', '--model', 'builtin', '--adapter', 'builtin:demo-short@0.5', '--set', 'user-oriented', '--max-new-tokens', '6', '--json'];

  it('prints a line per example and model, then per-model summaries; a stopped run resumes to the same results', async () => {
    const whole = await cli(...base, '--limit', '3', '--out', join(dir, 'a.jsonl'));
    expect(whole.code).toBe(0);
    const out = jsonLines(whole.stdout);
    const rows = out.filter((l) => l.type !== 'summary');
    expect(rows.length).toBe(6);
    expect(rows[0]).toMatchObject({ id: 'user_oriented_task_0', model: 'base' });
    expect(rows[1]).toMatchObject({ id: 'user_oriented_task_0', model: 'demo-short@0.5' });
    for (const r of rows) {
      expect(typeof r.prediction).toBe('string');
      expect(typeof r.reference).toBe('string');
      expect(r.rougeL).toBeGreaterThanOrEqual(0);
      expect(r.loss).toBeGreaterThan(0);
    }
    const summaries = out.filter((l) => l.type === 'summary');
    expect(summaries.map((s) => s.model)).toEqual(['base', 'demo-short@0.5']);
    expect(Object.keys(summaries[0].rougeLByLength)).toEqual(['0-2', '3-5', '6-10', '>10']);
    expect(summaries[0].examples).toBe(3);
    expect(Math.abs(summaries[0].perplexity / Math.exp(summaries[0].loss) - 1)).toBeLessThan(1e-5);
    expect(summaries[0].loss).not.toBe(summaries[1].loss);

    // Stopped after one example, and killed while writing a line: resuming gives the uninterrupted results.
    const half = await cli(...base, '--limit', '1', '--out', join(dir, 'b.jsonl'));
    expect(half.code).toBe(0);
    appendFileSync(join(dir, 'b.jsonl'), '{"id":"user_oriented_task_1","mod');
    const resumed = await cli(...base, '--limit', '3', '--out', join(dir, 'b.jsonl'));
    expect(resumed.code).toBe(0);
    const again = jsonLines(resumed.stdout).filter((l) => l.type !== 'summary');
    expect(byKey(again)).toEqual(byKey(rows));
    expect(jsonLines(resumed.stdout).filter((l) => l.type === 'summary').map((s) => [s.rougeL, s.loss])).toEqual(summaries.map((s) => [s.rougeL, s.loss]));
    const kept = readFileSync(join(dir, 'b.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
    // The settings line first, then the six results (the torn line stays, skipped).
    expect(JSON.parse(kept[0])).toMatchObject({ type: 'lora-lab-eval', settings: { model: 'lora-lab/built-in-demo', set: 'user-oriented', maxNewTokens: 6 } });
    expect(kept.slice(1).filter((l) => { try { JSON.parse(l); return true; } catch { return false; } }).length).toBe(6);
  });

  it('resumes only under the settings the results were made with, and reads back only results it wrote', async () => {
    const file = join(dir, 'c.jsonl');
    expect((await cliHere(...base, '--limit', '1', '--out', file)).code).toBe(0);
    const other = await cliHere(...base.map((a) => (a === '6' ? '7' : a)), '--limit', '2', '--out', file);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/holds results made with --max-new-tokens 6, not 7: resuming would mix them/);
    const strength = await cliHere(...base.map((a) => (a === 'builtin:demo-short@0.5' ? 'builtin:demo-zh@0.5' : a)), '--limit', '2', '--out', file);
    expect(strength.code, strength.stderr).toBe(0); // another adapter is another column: its results are new
    const lines = readFileSync(file, 'utf8').split('\n');
    const edited = (change: Record<string, unknown>) => (l: string) => JSON.stringify({ ...JSON.parse(l), ...change });
    for (const [edit, why] of [
      [edited({ rougeL: 99 }), /line 2: its ROUGE-L 99 is not in \[0, 1\]/],
      [edited({ nll: -3 }), /line 2: its loss -3 is not a finite number >= 0/],
      [() => 'null', /line 2: not a result object/],
      [edited({ prediction: 7 }), /line 2: its "prediction" is not text/],
    ] as const) {
      const bad = join(dir, `bad-${Math.random().toString(36).slice(2)}.jsonl`);
      writeFileSync(bad, [lines[0], edit(lines[1]), ...lines.slice(2)].join('\n'));
      const r = await cliHere(...base, '--limit', '2', '--out', bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    const headless = join(dir, 'headless.jsonl');
    writeFileSync(headless, lines.slice(1).join('\n'));
    expect((await cliHere(...base, '--limit', '2', '--out', headless)).stderr).toMatch(/line 1: the first line is not the settings line/);
  });

  it('refuses what it cannot do, saying what to give', async () => {
    expect((await cli('eval', '--model', 'builtin')).stderr).toMatch(/needs --model and --set/);
    expect((await cliHere('eval', '--model', 'builtin', '--set', 'nowhere.jsonl')).stderr).toMatch(/--set nowhere\.jsonl: not a file, nor one of user-oriented, vicuna80/);
    expect((await cliHere('eval', '--model', 'builtin', '--set', 'vicuna80', '--adapter', 'builtin:demo-short@3')).stderr).toMatch(/not a built-in adapter|out of range/);
  });
});
