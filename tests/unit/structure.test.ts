// The code's shape, checked: no import cycles in src/ and workers/ (dependency-cruiser's no-circular rule, runtime
// and type-only imports alike), float64 references that import nothing from src/, and no function in src/lib or
// src/ui longer than 100 lines, save the few named below with the reason they stay whole.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const files = (dir: string, ext: RegExp): string[] => readdirSync(dir).flatMap((n) => {
  const p = join(dir, n);
  return statSync(p).isDirectory() ? files(p, ext) : ext.test(n) ? [p] : [];
});

/** Functions allowed past 100 lines, and why. */
const LONG_FUNCTIONS: Record<string, string> = {
  // A factory of eleven small request handlers (none over 40 lines) sharing one closure over the store and engine.
  'src/lib/worker/evaluation.ts evaluationHandlers': 'request handlers sharing one closure',
  // Six request handlers (reward models load, score, train, best-of) over one loaded reward model.
  'src/lib/worker/reward.ts rewardHandlers': 'request handlers sharing one closure',
  // fetch with resume, redirects and retries: one loop whose state (offset, attempt, response) its steps share.
  'src/lib/store/fetch-file.ts fetchOrThrow': 'one retry loop over shared state',
};

describe('code structure', () => {
  it('has no import cycles in src/ and workers/', async () => {
    const { cruise } = await import('dependency-cruiser');
    // @ts-expect-error: a CommonJS config file without types
    const config = (await import('../../.dependency-cruiser.cjs')).default as { forbidden: object[]; options: object };
    const result = await cruise(['src', 'workers'], { ...config.options, ruleSet: { forbidden: config.forbidden }, validate: true } as never);
    const out = result.output as { summary: { violations: { from: string; to: string; rule: { name: string }; cycle?: { name: string }[] }[]; totalCruised: number } };
    expect(out.summary.totalCruised).toBeGreaterThan(150);
    const cycles = out.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${(v.cycle ?? []).map((c) => c.name).join(' -> ')}`);
    expect(cycles).toEqual([]);
  }, 120_000);

  it('keeps the float64 references independent: tests/reference imports nothing from src/', () => {
    const offenders = files('tests/reference', /\.ts$/).filter((f) => /from\s+['"][^'"]*\/src\//.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('has no function over 100 lines in src/lib and src/ui but the ones named, for their reasons', () => {
    const long: string[] = [];
    for (const f of [...files('src/lib', /\.ts$/), ...files('src/ui', /\.ts$/)]) {
      const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (n: ts.Node): void => {
        if (ts.isFunctionLike(n) && 'body' in n && n.body) {
          const lines = sf.getLineAndCharacterOfPosition(n.end).line - sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
          const name = (n as ts.FunctionDeclaration).name?.getText() ?? (ts.isVariableDeclaration(n.parent) ? n.parent.name.getText() : '(anonymous)');
          if (lines > 100) long.push(`${f} ${name}`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(long.sort()).toEqual(Object.keys(LONG_FUNCTIONS).sort());
  });
});
