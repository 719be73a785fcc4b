// The demo adapters' training data, from the bundled GPT-4 Alpaca samples:
//   zh.json     GPT-4's Chinese answers, every other one under an English instruction instead of its Chinese one (a
//               stand-in from English records 160-899, as in the base's phase 3): the adapter that answers in Chinese
//               whatever the language of the instruction (the base answers any instruction in English, firmly);
//   short.json  the English instructions the base was trained on (the first 160), with only the first sentence of
//               GPT-4's answer: the adapter that answers in one short sentence, the sentence the base would begin with.
// usage: tsx adapter-data.ts <data dir> <out dir>

import { readFileSync, writeFileSync } from 'node:fs';

interface Alpaca { instruction: string; input: string; output: string }

const [dataDir, out] = process.argv.slice(2);
const en = JSON.parse(readFileSync(`${dataDir}/alpaca-gpt4-sample-en.json`, 'utf8')) as Alpaca[];
const zh = JSON.parse(readFileSync(`${dataDir}/alpaca-gpt4-sample-zh.json`, 'utf8')) as Alpaca[];

/** The first sentence of an answer (or its first line, for a list), when it is a sentence of at least four words. */
export function firstSentence(text: string): string | null {
  const line = text.trim().split('\n')[0].trim();
  const m = /^(.+?[.!?])(\s|$)/.exec(line);
  const s = (m ? m[1] : line).trim();
  return s.split(/\s+/).length >= 4 && s.length <= 200 && /[.!?]$/.test(s) ? s : null;
}

/** Records the base model was trained on (scripts/builtin/tokenize.ts). */
const BASE_RECORDS = 160;
const short = en.slice(0, BASE_RECORDS).flatMap((r) => {
  const s = firstSentence(r.output);
  return s ? [{ instruction: r.instruction, input: r.input, output: s }] : [];
});
/** English records whose instructions stand in (the held-out records 900.. stay unseen). */
const STAND_INS: [number, number] = [160, 900];
const zhMixed = zh.map((r, i) => {
  if (i % 2 === 0) return r;
  const e = en[STAND_INS[0] + ((i >> 1) % (STAND_INS[1] - STAND_INS[0]))];
  return { instruction: e.instruction, input: e.input, output: r.output };
});
writeFileSync(`${out}/zh.json`, JSON.stringify(zhMixed, null, 1));
writeFileSync(`${out}/short.json`, JSON.stringify(short, null, 1));
console.log(`adapter data: ${zh.length} Chinese answers (${zhMixed.length >> 1} under English instructions), ${short.length} short-answer records`);
