// The built-in model writes real text, and its demo adapters do what they say, on our engine (lavapipe here):
//   - greedy answers to 20 instructions of its training data reach a mean ROUGE-L of at least 0.5 against GPT-4's;
//   - answers to instructions it never saw (made up here, and records of the bundled sample no training phase used)
//     are fluent English: GPT-4's own sentences, which it learned by heart, most of their word 4-grams found verbatim
//     in the bundled answers (token soup has none), though off-topic (scripts/builtin/make.sh, phase 3);
//   - through demo-zh, answers to the same English instructions are mostly CJK characters (over the 10 together),
//     the base's have none;
//   - through demo-short, answers are at most a third as long as the base's;
//   - a follow-up turn prefills exactly its new tokens (the model's answers encode back to the tokens it wrote).

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine, type GenerateResult } from '../../src/lib/engine.js';
import { rougeL } from '../../src/lib/eval/rouge.js';
import { NodeDirFiles } from '../../src/lib/hub/node-files.js';
import { testGpu } from '../helpers/gpu.js';
import { engineBackend } from '../../src/lib/assist/backend.js';
import { newTeacherJob, runTeacher, teacherDataset, type TeacherJob } from '../../src/lib/assist/teacher.js';
import { parseDataset } from '../../src/lib/data/records.js';
import { buildExamples } from '../../src/lib/training/session.js';
import { DEFAULT_TRAIN_CONFIG } from '../../src/lib/training/train-config.js';

const dir = (p: string) => new URL(`../../public/${p}/`, import.meta.url).pathname;
const en = JSON.parse(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url), 'utf8')) as { instruction: string; input: string; output: string }[];
const prompt = (r: { instruction: string; input: string }) => (r.input.trim() ? `${r.instruction}\n\n${r.input}` : r.instruction);
// The base learned the first 64 English records by heart (scripts/builtin/make.sh); 20 of them, every third (two
// batches of ten in flight: the test's cost is two decodes of 320 steps).
const SEEN = Array.from({ length: 20 }, (_, i) => en[i * 3]);
// Records 900.. are in no training phase (the stand-in instructions of phase 3 are records 160-899).
const UNSEEN = ['Give three tips for staying healthy.', 'What is the capital of France?', 'Write a short poem about the sea.', 'Explain why the sky is blue.',
  ...Array.from({ length: 8 }, (_, i) => prompt(en[900 + 12 * i]))];

const cjkShare = (s: string) => {
  const chars = [...s.replace(/\s/g, '')];
  return chars.length ? chars.filter((c) => /[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]/.test(c)).length / chars.length : 0;
};

let engine: Engine;

const IN_FLIGHT = 10;

/** Greedy answers to `prompts` through `adapter`, ten in flight at a time (decoded as one batch). */
async function answers(prompts: string[], adapter: string | null, maxNewTokens: number): Promise<GenerateResult[]> {
  const out: GenerateResult[] = [];
  for (let i = 0; i < prompts.length; i += IN_FLIGHT) {
    const items = prompts.slice(i, i + IN_FLIGHT).map((p) => ({ promptIds: engine.promptIds({ prompt: p, format: 'chat' }), adapter, strength: 1 }));
    out.push(...(await engine.generateMany(items, { maxNewTokens, sampling: { temperature: 0, repetitionPenalty: 1 } })));
  }
  return out;
}

let base: GenerateResult[];
/** The adapters are compared with the base on every other one of SEEN (records 0, 6, ..., 54): one batch. */
const TEN = SEEN.filter((_, i) => i % 2 === 0);
const baseTen = () => base.filter((_, i) => i % 2 === 0);

beforeAll(async () => {
  engine = new Engine(await testGpu(), { contextLength: 512, slots: IN_FLIGHT });
  await engine.load(new NodeDirFiles('built-in model', dir('models/demo'), 'lora-lab/built-in-demo'));
  await engine.loadAdapter(new NodeDirFiles('demo-zh', dir('adapters/demo-zh')), 'demo-zh');
  await engine.loadAdapter(new NodeDirFiles('demo-short', dir('adapters/demo-short')), 'demo-short');
  base = await answers(SEEN.map(prompt), null, 320);
});

describe('the built-in model', () => {
  it('answers instructions from its data close to GPT-4 (mean ROUGE-L >= 0.5 over 20)', () => {
    const scores = SEEN.map((r, i) => rougeL(r.output, base[i].text).fmeasure);
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    console.log(`built-in model, ROUGE-L over 20 seen instructions: mean ${mean.toFixed(3)}, min ${Math.min(...scores).toFixed(3)}`);
    expect(mean).toBeGreaterThanOrEqual(0.5);
  });

  it('answers new instructions in fluent English: GPT-4 sentences it learned, word for word', async () => {
    const r = await answers(UNSEEN, null, 96);
    // Whitespace runs count as one space in both (a list's line breaks are not a seam).
    const gpt4 = en.map((x) => x.output).join('\n').replace(/\s+/g, ' ');
    const verbatim = r.map((a) => {
      const ws = a.text.split(/\s+/).filter(Boolean);
      expect(cjkShare(a.text), a.text).toBeLessThan(0.05);
      if (ws.length < 4) return 0;
      let found = 0;
      for (let j = 0; j + 4 <= ws.length; j++) if (gpt4.includes(ws.slice(j, j + 4).join(' '))) found++;
      return found / (ws.length - 3);
    });
    const mean = verbatim.reduce((a, b) => a + b, 0) / verbatim.length;
    console.log(`new instructions: word 4-grams found in GPT-4's answers, per answer ${verbatim.map((v) => v.toFixed(2)).join(' ')}; mean ${mean.toFixed(2)}`);
    for (const [i, a] of r.entries()) console.log(`  ${UNSEEN[i].split('\n')[0].slice(0, 60)} -> ${a.text.slice(0, 100).replace(/\n/g, ' ')}`);
    // Measured: 11 of the 12 answers at 0.90-1.00 (whole GPT-4 answers to other instructions), one that strays after
    // its first sentence at 0.12; mean 0.91. Before the stand-in phase the made-up ones scored 0.17 (invented words).
    expect(mean).toBeGreaterThanOrEqual(0.8);
    expect(verbatim.filter((v) => v >= 0.85).length).toBeGreaterThanOrEqual(10);
  });

  it('demo-zh answers the same English instructions mostly in Chinese; the base does not', async () => {
    const zh = await answers(TEN.map(prompt), 'demo-zh', 48);
    const share = zh.map((a) => cjkShare(a.text));
    const baseShare = baseTen().map((a) => cjkShare(a.text));
    console.log(`CJK share: demo-zh mean ${(share.reduce((a, b) => a + b, 0) / share.length).toFixed(2)}, base mean ${(baseShare.reduce((a, b) => a + b, 0) / baseShare.length).toFixed(2)}; over 0.25: ${share.filter((x) => x > 0.25).length} of ${share.length}`);
    // Measured: mean 0.56, 8 of the 10 answers over a quarter CJK (not fluent Chinese); base 0.
    expect(share.reduce((a, b) => a + b, 0) / share.length).toBeGreaterThan(0.5);
    expect(share.filter((s) => s > 0.25).length).toBeGreaterThanOrEqual(7);
    expect(Math.max(...baseShare)).toBeLessThan(0.05);
  });

  it('demo-short answers are at most a third as long as the base', async () => {
    const short = await answers(TEN.map(prompt), 'demo-short', 320);
    const len = (r: GenerateResult[]) => r.reduce((n, a) => n + a.tokens.length, 0);
    console.log(`tokens: demo-short ${len(short)}, base ${len(baseTen())}; ended by end-of-turn: ${short.filter((x) => x.stopReason === 'eos').length} of ${short.length}`);
    expect(len(short)).toBeLessThanOrEqual(len(baseTen()) / 3);
    // Measured: 221 tokens against the base's 1945; all 10 ended by the end-of-turn token.
    expect(short.filter((a) => a.stopReason === 'eos').length).toBeGreaterThanOrEqual(9);
  });

  it('a follow-up turn prefills exactly its new tokens', async () => {
    const messages = [{ role: 'user' as const, content: prompt(SEEN[3]) }];
    const sampling = { temperature: 0, repetitionPenalty: 1 };
    const first = await engine.chat({ messages, sampling, maxNewTokens: 64 });
    const follow = [...messages, { role: 'assistant' as const, content: first.text }, { role: 'user' as const, content: 'Thank you. Can you say more?' }];
    // The answer encodes back to the tokens the model wrote (its end-of-turn token is in the template).
    const rendered = engine.tokenizer.encode(engine.tokenizer.renderChat(follow, true), false);
    const written = [...first.promptIds, ...first.tokens.filter((t) => !engine.eosIds.includes(t))];
    expect(rendered.slice(0, written.length)).toEqual(written);
    const second = await engine.chat({ messages: follow, sampling, maxNewTokens: 16 });
    // Everything the slot held is kept: the first prompt and all but the last token written.
    expect(second.reusedTokens).toBe(first.promptIds.length + first.tokens.length - 1);
    expect(second.prefilledTokens).toBe(rendered.length - second.reusedTokens);
  });

  it('as a teacher, answers instructions into a dataset, through Stop and resume, that the trainer accepts', async () => {
    const teacher = engineBackend((req, onText, signal) => engine.chat(req, onText, signal), 'built-in model');
    const instructions = [SEEN[0], SEEN[1], SEEN[2]].map((r) => ({ instruction: r.instruction, input: r.input }));
    const settings = { maxNewTokens: 24, sampling: { temperature: 0, repetitionPenalty: 1 } };
    let job = newTeacherJob({ name: 'taught', instructionsFrom: 'built-in sample', instructions, systemPrompt: '', settings, teacher: { kind: teacher.kind, model: teacher.model } });
    const kept: TeacherJob[] = [];
    // Stop lands in the middle of the second answer: the first is kept, the half-written second is not.
    const stop = new AbortController();
    job = await runTeacher(job, teacher, { onAnswer: (j) => void kept.push(j), onText: (i) => { if (i === 1) stop.abort(); } }, stop.signal);
    expect(job.status).toBe('stopped');
    expect(job.answers.map((a) => a !== null)).toEqual([true, false, false]);
    expect(kept).toHaveLength(1);
    // Resumed from what storage kept: only the two missing answers are written.
    let written = 0;
    const done = await runTeacher(kept[0], teacher, { onAnswer: () => void written++ });
    expect(written).toBe(2);
    expect(done.status).toBe('done');
    expect(done.answers[0]).toEqual(job.answers[0]);
    // Greedy answers are the ones the model gives on its own.
    const direct = await engine.chat({ messages: [{ role: 'user', content: prompt(SEEN[2]) }], maxNewTokens: 24, sampling: settings.sampling });
    expect(done.answers[2]!.output).toBe(direct.text.trim());
    const records = await parseDataset(teacherDataset(done), 'taught.json');
    expect(records.map((r) => r.kind === 'alpaca' && r.instruction)).toEqual(instructions.map((x) => x.instruction));
    const data = buildExamples(engine.tokenizer, engine.eosIds[0], { name: 'x', records, format: 'alpaca', config: {}, baseModel: null }, { ...DEFAULT_TRAIN_CONFIG, validationFraction: 0 });
    expect(data.train.length).toBe(3);
  });
});
