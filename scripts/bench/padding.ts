// The padding section of `npm run bench` (--only padding): how many token positions an epoch of training computes on
// the bundled GPT-4 Alpaca sample (SmolLM2's tokenizer, the Alpaca prompt, the default micro-batch and cutoff), with
// each micro-batch padded to its length bucket: the buckets of data/batches.ts against powers of two (the rule
// before them), and packed rows. A step's time grows with its rows (the matmuls), so this is the work an epoch does.

import { readFileSync } from 'node:fs';
import { epochBatches, lengthBucket } from '../../src/lib/data/batches.js';
import { toExample } from '../../src/lib/data/examples.js';
import { parseDataset } from '../../src/lib/data/records.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';

/** The rule before finer buckets: a power of two from 16, at most `max`. */
function powerOfTwoBucket(n: number, max: number): number {
  let b = 16;
  while (b < n) b *= 2;
  return Math.min(b, max);
}

export interface PaddingFigures { records: number; batch: number; cutoff: number; realTokens: number; powerOfTwo: number; buckets: number; packed: number }

export async function paddingFigures(): Promise<PaddingFigures> {
  const at = (p: string) => new URL(p, import.meta.url);
  const records = await parseDataset(new Uint8Array(readFileSync(at('../../public/data/alpaca-gpt4-sample-en.json'))), 'alpaca-gpt4-sample-en.json');
  const dir = '../../tests/fixtures/SmolLM2-135M-Instruct/';
  const tok = new TextTokenizer(JSON.parse(readFileSync(at(dir + 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(at(dir + 'tokenizer_config.json'), 'utf8')), null);
  const { microBatch: B, cutoff, seed } = DEFAULT_TRAIN_CONFIG;
  const examples = records.map((r) => toExample(tok, r, { format: 'alpaca', cutoff, trainOnInputs: false, eosId: tok.eosTokenIds[0] }));
  const T = Math.min(cutoff, Math.max(...examples.map((e) => e.ids.length)));
  const batches = epochBatches(examples, B, T, seed, 0, 'length');
  const positions = (bucket: (n: number, max: number) => number) => batches.reduce((s, b) => s + B * bucket(Math.max(...b.rowLengths), T), 0);
  return {
    records: records.length, batch: B, cutoff, realTokens: batches.reduce((s, b) => s + b.realTokens, 0),
    powerOfTwo: positions(powerOfTwoBucket), buckets: positions(lengthBucket),
    packed: epochBatches(examples, B, T, seed, 0, 'packed').length * B * T,
  };
}
