// npm run fuzz [-- --cases N] [--seed S] [--only safetensors|peft|dataset|chat-template|gguf]
// Mutation fuzzing of every parser over real files (tests/fuzz/fuzzers.ts): at least 100,000 cases per parser by
// default. Exits 1 on the first case that throws anything but a typed error, hangs, or is accepted wrongly.

import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { FUZZERS, type FuzzStats } from '../tests/fuzz/fuzzers.js';
import { lastCase } from '../tests/fuzz/gguf-fuzzer.js';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' }, only: { type: 'string' } }, strict: true });
const cases = Number(values.cases);
const seed = Number(values.seed);
if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed)) throw new Error('--cases and --seed take integers');
const names = values.only ? [values.only] : Object.keys(FUZZERS);
for (const name of names) {
  const fuzz = FUZZERS[name as keyof typeof FUZZERS];
  if (!fuzz) throw new Error(`--only ${name}: use one of ${Object.keys(FUZZERS).join(', ')}`);
  const t0 = performance.now();
  let stats: FuzzStats;
  try {
    stats = await fuzz(cases, seed);
  } catch (e) {
    console.error(`FAIL ${name}: ${(e as Error).message}`);
    if (name === 'gguf') {
      writeFileSync('fuzz-failure.gguf', lastCase.file);
      console.error(`The failing ${lastCase.adapter ? 'adapter' : 'model'} is in fuzz-failure.gguf.`);
    }
    process.exit(1);
  }
  const refused = Object.entries(stats.refused).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  const peak = process.resourceUsage().maxRSS / 1024; // KiB -> MiB, over the whole run so far
  console.log(`${name}: ${stats.cases} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s, slowest ${stats.slowestMs.toFixed(1)} ms, peak memory ${peak.toFixed(0)} MiB; accepted ${stats.accepted}; refused: ${refused}`);
}
