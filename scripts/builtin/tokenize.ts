// Tokenizes the built-in model's training data with the tokenizer it will ship with, through the same code the
// engine trains with (src/lib/data/examples.ts), so that what the model learns is exactly what the app feeds it:
//   chat:  the English GPT-4 Alpaca sample as one-turn conversations in the model's chat template;
//   text:  the Chinese sample's answers as plain text (the base learns the language, not to answer in it;
//          answering in Chinese is what the Chinese demo adapter teaches).
// usage: tsx tokenize.ts <data dir> <tokenizer dir> <out.json>

import { readFileSync, writeFileSync } from 'node:fs';
import { toExample } from '../../src/lib/data/examples.js';
import { toRecord } from '../../src/lib/data/records.js';
import { TextTokenizer } from '../../src/lib/tokenizer/tokenizer.js';

const [dataDir, tokDir, out] = process.argv.slice(2);
/** Records the base is trained on; the rest of the English sample is held out (fluency on unseen instructions). */
export const TRAIN_EN = 160;
/** Records whose instructions stand in for a learned record's (train_base.py --swap); 900..998 stay unseen. */
const SWAP_POOL: [number, number] = [160, 900];
const TRAIN_ZH = 120;
const cutoff = 320;
const textCutoff = 192;
const tok = new TextTokenizer(
  JSON.parse(readFileSync(`${tokDir}/tokenizer.json`, 'utf8')),
  JSON.parse(readFileSync(`${tokDir}/tokenizer_config.json`, 'utf8')),
  null,
);
const eos = tok.tokenToId('<|im_end|>')!;
const endOfText = tok.tokenToId('</s>')!;

const en = (JSON.parse(readFileSync(`${dataDir}/alpaca-gpt4-sample-en.json`, 'utf8')) as unknown[]).map(toRecord);
const zh = JSON.parse(readFileSync(`${dataDir}/alpaca-gpt4-sample-zh.json`, 'utf8')) as { output: string }[];

const chat = en.slice(0, TRAIN_EN).map((r) => toExample(tok, r, { format: 'chat', cutoff, trainOnInputs: true, eosId: eos }).ids);
const pool = en.slice(...SWAP_POOL).map((r) => toExample(tok, r, { format: 'chat', cutoff, trainOnInputs: true, eosId: eos }).ids);
const text = zh.slice(0, TRAIN_ZH).map((r) => [...tok.encode(r.output, false).slice(0, textCutoff - 1), endOfText]);
const count = (docs: number[][]) => docs.reduce((n, d) => n + d.length, 0);
writeFileSync(out, JSON.stringify({ cutoff, vocabSize: tok.vocabSize, eos, chat, text, pool }));
console.log(`tokenized: ${chat.length} conversations (${count(chat)} tokens), ${text.length} Chinese texts (${count(text)} tokens), ${pool.length} stand-in instructions`);
