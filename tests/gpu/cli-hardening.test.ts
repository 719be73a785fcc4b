// lora-lab against careless and hostile use: every misuse is refused naming the option; --out is checked before any
// work; training killed with SIGKILL at random moments leaves the previous adapter or a new one, complete, never a
// mix; a killed run resumed with --resume gives the losses of an uninterrupted run; a huge record trains in bounded
// memory; exported configs carry no local paths.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryFiles } from '../../src/lib/model-files.js';
import { loadPeftAdapter } from '../../src/lib/lora/adapter-files.js';

import { recoverFolder } from '../../src/lib/store/atomic-node.js';
import { putBlob } from '../../src/lib/store/blobs.js';
import { diskCache } from '../../src/lib/store/disk-catalog.js';
import { Rng } from '../../src/lib/util/rng.js';
import { cliHere } from '../helpers/cli.js';

// Downloads go to a cache folder of this test file's own, never the user's ~/.cache.
process.env.LORA_LAB_CACHE = mkdtempSync(join(tmpdir(), 'lora-lab-cli-cache-'));

const bin = new URL('../../bin/lora-lab.js', import.meta.url).pathname;
const demo = new URL('../../public/models/demo/', import.meta.url).pathname;
const tmp = () => mkdtempSync(join(tmpdir(), 'lora-lab-cli-'));

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs lora-lab; `onStdout` may kill the process (it gets the child and the output so far). */
function cli(args: string[], opts: { killAfterMs?: number; onStdout?: (out: string, kill: (s: NodeJS.Signals) => void) => void; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('node', [bin, ...args], { env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    const kill = (s: NodeJS.Signals) => child.kill(s);
    child.stdout.on('data', (d) => { stdout += d; opts.onStdout?.(stdout, kill); });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = opts.killAfterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs) : null;
    child.on('close', (code, signal) => { if (timer) clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

const lines = (out: string) => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const losses = (out: string) => lines(out).filter((l) => l.type === 'step').map((l) => [l.step, l.loss]);

describe('misuse is refused, naming the option and what it accepts', () => {
  it.each([
    [['generate', '--model', 'builtin', '--prompt', 'x', '--temprature', '0'], /Unknown option '--temprature'/],
    [['generate', '--model', 'builtin', '--prompt-ids', ''], /--prompt-ids "" has an empty item/],
    [['generate', '--model', 'builtin', '--prompt-ids', '1,,2'], /--prompt-ids "1,,2" has an empty item/],
    [['generate', '--model', 'builtin', '--prompt-ids', '1,x'], /--prompt-ids "x" is not an integer/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--seed', '4294967296'], /--seed 4294967296 is out of range: give an integer in 0\.\.4294967295/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--context=-5'], /--context -5 is out of range/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--context', '-5'], /'--context' argument is ambiguous/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--temperature', '0x'], /--temperature "0x" is not a number/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--format', 'yaml'], /--format "yaml" is not one of chat, alpaca, raw/],
    [['generate', '--model', 'builtin', '--prompt', 'x', 'stray'], /Unexpected argument 'stray'/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--adapter', 'builtin:../../models/demo'], /UnsafePathError/],
    [['generate', '--model', 'builtin', '--prompt', 'x', '--adapter', 'builtin:nope'], /builtin:nope is not a built-in adapter: use one of builtin:demo-short, builtin:demo-zh/],
    [['train', '--model', 'builtin', '--data', 'builtin', '--out', '/tmp/x', '--max-records', '0'], /--max-records 0 is out of range/],
    [['train', '--model', 'builtin', '--data', 'builtin', '--out', '/tmp/x', '--schedule', 'bogus'], /--schedule "bogus" is not one of cosine, linear, constant/],
    [['train', '--model', 'builtin', '--data', 'builtin', '--out', '/tmp/x', '--eval-every=-1'], /--eval-every -1 is out of range/],
    [['train', '--model', 'builtin', '--data', 'builtin', '--out', '/tmp/x', '--seed', '99999999999'], /--seed 99999999999 is out of range/],
    [['train', '--model', 'builtin', '--data', 'builtin', '--out', '/tmp/x', '--targets', 'q_proj,,v_proj'], /--targets "q_proj,,v_proj" has an empty item/],
    [['train', '--model', 'builtin', '--data', 'builtin', '--out', '/tmp/x', '--steps', '3', '--epochs', '1'], /Give --steps or --epochs, not both/],
    [['train', '--resume', '/tmp', '--rank', '4'], /--resume continues a run with the settings of its checkpoint: drop --rank/],
    [['train', '--resume', '/tmp'], /there is no checkpoint in this folder/],
    [['eval', '--model', 'builtin', '--set', '/dev/zero'], /--set \/dev\/zero is not a regular file \(a folder, a device or a pipe\)/],
    [['eval', '--model', 'builtin', '--set', '/tmp'], /--set \/tmp is not a regular file/],
    [['eval', '--model', 'builtin', '--set', 'vicuna80', '--out', '/tmp'], /--out \/tmp is not a regular file/],
    [['eval', '--model', 'builtin', '--set', 'vicuna80', '--out', '/no/such/folder/results.jsonl'], /--out \/no\/such\/folder\/results.jsonl: the folder \/no\/such\/folder does not exist/],
    [['frobnicate'], /Unknown command "frobnicate"/],
  ])('%j', async (args, message) => {
    // The command itself for one case; the rest in this process (the same main(), without seconds of start-up each).
    const r = args[0] === 'frobnicate' ? await cli(args) : await cliHere(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('each subcommand has --help', async () => {
    const [g, t] = await Promise.all([cli(['generate', '--help']), cli(['train', '--help'])]);
    expect(g.code).toBe(0);
    expect(g.stdout).toMatch(/lora-lab generate .*--prompt-ids/s);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/--resume .*--checkpoint-every/s);
  });

  it('--out is checked before the model loads: a file, a folder of other files, a missing parent', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), 'x');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const base = ['train', '--model', 'builtin', '--data', 'builtin', '--steps', '1'];
    const asFile = await cli([...base, '--out', join(dir, 'file')]);
    expect(asFile.stderr).toMatch(/--out .* is a file, not a folder/);
    const foreign = await cli([...base, '--out', dir]);
    expect(foreign.stderr).toMatch(/holds other files \(file, notes\.txt\)/);
    const noParent = await cli([...base, '--out', join(dir, 'a', 'b')]);
    expect(noParent.stderr).toMatch(/does not exist; create it first/);
    for (const r of [asFile, foreign, noParent]) {
      expect(r.code).toBe(2);
      expect(r.stderr).not.toMatch(/loaded/);
    }
  });
});

const TRAIN = ['--data', 'builtin', '--max-records', '24', '--cutoff', '72', '--batch', '1', '--grad-accum', '1', '--json'];

async function adapterIn(dir: string) {
  const files = new Map(['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  return { files, adapter: await loadPeftAdapter(new MemoryFiles(dir, files)) };
}

// Kill trials: 3 of each kind in the test command (each is a training run or a 60 MB import); `npm run soak` runs 20.
const TRIALS = Number(process.env.LORA_LAB_KILL_TRIALS ?? 3);

describe('training output survives being killed', () => {
  it(`SIGKILL at random moments leaves the previous adapter or a new one, complete, never a mix (${TRIALS} trials)`, async () => {
    const dir = tmp();
    const out = join(dir, 'adapter');
    const first = await cli(['train', '--model', 'builtin', ...TRAIN, '--out', out, '--steps', '2', '--rank', '2']);
    expect(first.code).toBe(0);
    // How long a run takes, so the kills spread over start-up, steps and the checkpoint writes.
    const t0 = performance.now();
    const timed = await cli(['train', '--model', 'builtin', ...TRAIN, '--out', join(dir, 'timed'), '--steps', '4', '--checkpoint-every', '1', '--rank', '4']);
    expect(timed.code).toBe(0);
    const duration = performance.now() - t0;
    const rng = new Rng(2024);
    const outcomes = { previous: 0, new: 0 };
    for (let trial = 0; trial < TRIALS; trial++) {
      const before = await adapterIn(out);
      const rank = before.adapter.config.r === 2 ? 4 : 2; // every run differs from the one before in rank and seed
      const r = await cli(['train', '--model', 'builtin', ...TRAIN, '--out', out, '--steps', '4', '--checkpoint-every', '1', '--rank', String(rank), '--seed', String(trial)],
        // The first trial is killed during start-up and the last is given time to finish, so both outcomes are always
        // exercised; the others land anywhere in the run.
        { killAfterMs: trial === 0 ? duration * 0.05 : trial === TRIALS - 1 ? duration * 4 : duration * (0.15 + 0.9 * rng.next()) });
      // The next lora-lab run on this folder first finishes an interrupted swap (recoverFolder); so does this check.
      recoverFolder(out);
      const after = await adapterIn(out); // loads: config and tensors agree (rank included), every value finite
      const copy = new Map(['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join(out, 'checkpoint', f)))]));
      if (Buffer.from(after.files.get('adapter_model.safetensors')!).equals(before.files.get('adapter_model.safetensors')!)) {
        expect(Buffer.from(after.files.get('adapter_config.json')!).equals(before.files.get('adapter_config.json')!)).toBe(true);
        outcomes.previous++;
      } else {
        expect(after.adapter.config.r).toBe(rank);
        outcomes.new++;
      }
      for (const f of copy.keys()) expect(Buffer.from(copy.get(f)!).equals(after.files.get(f)!)).toBe(true);
      void r;
    }
    console.log(`${TRIALS} kills: ${outcomes.previous} left the previous adapter, ${outcomes.new} a new one`);
    expect(outcomes.previous + outcomes.new).toBe(TRIALS);
    expect(outcomes.new).toBeGreaterThan(0);
    expect(outcomes.previous).toBeGreaterThan(0);
  });

  it('killed and resumed with --resume, a run has the losses and the adapter of an uninterrupted one', async () => {
    const dir = tmp();
    const model = join(dir, 'my-model');
    cpSync(demo, model, { recursive: true });
    const args = ['--model', model, ...TRAIN, '--steps', '5', '--checkpoint-every', '2', '--eval-every', '3'];
    const whole = await cli(['train', ...args, '--out', join(dir, 'whole')]);
    expect(whole.code).toBe(0);

    const out = join(dir, 'killed');
    let killedAt = 0;
    const killed = await cli(['train', ...args, '--out', out], {
      onStdout: (so, kill) => {
        const cp = lines(so).find((l) => l.type === 'checkpoint' && l.step >= 4);
        if (cp && !killedAt) { killedAt = cp.step; kill('SIGKILL'); }
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAt).toBe(4);
    const resumed = await cli(['train', '--resume', out, '--model', model, '--json']);
    expect(resumed.code).toBe(0);
    expect(losses(resumed.stdout)).toEqual(losses(whole.stdout).filter(([step]) => step > killedAt));
    expect(lines(resumed.stdout).filter((l) => l.type === 'eval')).toEqual(lines(whole.stdout).filter((l) => l.type === 'eval' && l.step > killedAt));
    expect(readFileSync(join(out, 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'whole', 'adapter_model.safetensors')))).toBe(true);

    // Exports name the base by its folder's name, never by the absolute path it was loaded from.
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(config.base_model_name_or_path).toBe('my-model');
    expect(readFileSync(join(out, 'checkpoint', 'trainer_state.json'), 'utf8')).not.toContain(model);

    // SIGINT stops after the current step, writes a checkpoint, and exits 130; --resume then finishes the run.
    const out2 = join(dir, 'interrupted');
    let sent = false;
    const interrupted = await cli(['train', ...args, '--out', out2], {
      onStdout: (so, kill) => { if (!sent && lines(so).some((l) => l.type === 'step' && l.step === 1)) { sent = true; kill('SIGINT'); } },
    });
    expect(interrupted.code).toBe(130);
    expect(lines(interrupted.stdout).at(-1)).toMatchObject({ type: 'stopped', signal: 'SIGINT' });
    const finished = await cli(['train', '--resume', out2, '--model', model, '--json']);
    expect(finished.code).toBe(0);
    expect(readFileSync(join(out2, 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'whole', 'adapter_model.safetensors')))).toBe(true);

    // A changed dataset is refused on resume.
    const other = join(dir, 'data.json');
    writeFileSync(other, JSON.stringify([{ instruction: 'a', input: '', output: 'b' }]));
    const wrongData = await cli(['train', '--resume', out2, '--model', model, '--data', other]);
    expect(wrongData.stderr).toMatch(/is not the file this run was trained on/);
  });

  it('a 100 MB JSONL whose first record holds 50 MB trains in bounded memory', async () => {
    const dir = tmp();
    const data = join(dir, 'big.jsonl');
    const sample = JSON.parse(readFileSync(new URL('../../public/data/alpaca-gpt4-sample-en.json', import.meta.url), 'utf8')) as object[];
    const huge = JSON.stringify({ instruction: 'Repeat the word.', input: '', output: 'word '.repeat(10_000_000) });
    const rest: string[] = [];
    for (let size = huge.length, i = 0; size < 100_000_000; i++) {
      const line = JSON.stringify(sample[i % sample.length]);
      rest.push(line);
      size += line.length + 1;
    }
    writeFileSync(data, [huge, ...rest].join('\n') + '\n');
    const r = await cli(['train', '--model', 'builtin', '--data', data, '--out', join(dir, 'out'), '--max-records', '6', '--steps', '2', '--cutoff', '64', '--batch', '2', '--json'],
      { env: { NODE_OPTIONS: '--max-old-space-size=1024' } });
    expect(r.stderr).not.toMatch(/heap out of memory/);
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'out', 'adapter_model.safetensors'))).toBe(true);
  });
});

describe('a folder left between the two renames of a replace', () => {
  it('is put back by the commands that read it (generate --adapter), as train --resume would', async () => {
    const dir = tmp();
    const out = join(dir, 'adapter');
    expect((await cliHere('train', '--model', 'builtin', ...TRAIN, '--out', out, '--steps', '1', '--rank', '2')).code).toBe(0);
    // A kill between "the old folder aside" and "the new one in": only the aside copy is there.
    renameSync(out, join(dir, `.adapter.old-${process.pid}-deadbeef`));
    writeFileSync(join(dir, '.adapter.tmp-1-cafe'), 'a writer may be filling this');
    const r = await cliHere('generate', '--model', 'builtin', '--adapter', out, '--prompt-ids', '1,2,3', '--max-new-tokens', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    // A reader leaves temporary folders alone (a writer may be using one).
    expect(existsSync(join(dir, '.adapter.tmp-1-cafe'))).toBe(true);
  });
});

describe('kills between the two renames of a folder replace (a failpoint: the moment a timed kill rarely hits)', () => {
  it(`leave the previous adapter, whole, for every command that reads it (${TRIALS} kills)`, async () => {
    const dir = tmp();
    const out = join(dir, 'adapter');
    expect((await cli(['train', '--model', 'builtin', ...TRAIN, '--out', out, '--steps', '2', '--rank', '2'])).code).toBe(0);
    const before = await adapterIn(out);
    const readers: [string, () => ReturnType<typeof cliHere>][] = [
      ['generate', () => cliHere('generate', '--model', 'builtin', '--adapter', out, '--prompt-ids', '1,2,3', '--max-new-tokens', '2', '--json')],
      ['eval', () => cliHere('eval', '--model', 'builtin', '--adapter', out, '--set', 'vicuna80', '--limit', '1', '--max-new-tokens', '2', '--json')],
      ['train --resume', () => cliHere('train', '--resume', out, '--model', 'builtin', '--json')],
    ];
    for (let trial = 0; trial < TRIALS; trial++) {
      const r = await cli(['train', '--model', 'builtin', ...TRAIN, '--out', out, '--steps', '3', '--checkpoint-every', '1', '--rank', String(3 + (trial % 3)), '--seed', String(trial)],
        { env: { LORA_LAB_FAILPOINT: 'folder-swap' } });
      expect(r.signal).toBe('SIGKILL');
      expect(existsSync(out)).toBe(false); // killed between the renames: only the aside copy is there
      const [name, read] = readers[trial % readers.length];
      const got = await read();
      expect(got.code, `${name}: ${got.stderr}`).toBe(0);
      const after = await adapterIn(out); // loads: config and tensors agree, every value finite
      // generate and eval read the previous adapter as it was; train --resume finishes that (finished) run again.
      if (name !== 'train --resume') expect(Buffer.from(after.files.get('adapter_model.safetensors')!).equals(before.files.get('adapter_model.safetensors')!)).toBe(true);
      expect(after.adapter.config.r).toBe(2);
    }
  });
});

describe('cache import killed at random moments', () => {
  it(`leaves the kept snapshot or the imported one, whole, for cache list, export and generate (${TRIALS} kills)`, async () => {
    const ID = `hf/lab/demo/${'d'.repeat(40)}`;
    // Two copies of one snapshot: the built-in model, with 48 MB of filler (so an import takes a while) told apart
    // by a byte.
    const variant = async (v: number) => {
      const files = new Map(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join(demo, f)))]));
      files.set('filler.bin', new Uint8Array(48 << 20).fill(v));
      const c = diskCache(tmp());
      for (const [path, b] of files) await putBlob(c.store, `${ID}/${path}`, b);
      await c.catalog.putSnapshot({
        id: ID, kind: 'model', source: 'hf', repo: 'lab/demo', sha: 'd'.repeat(40), revisions: ['main'], savedAt: 1,
        files: [...files].map(([path, b]) => ({ path, size: b.length, sha256: createHash('sha256').update(b).digest('hex') })), bytes: 0,
      });
      const zip = join(tmp(), `demo-${v}.zip`);
      expect((await cliHere('cache', 'export', ID, '--out', zip, '--cache-dir', c.catalog.root)).code).toBe(0);
      return zip;
    };
    const zips = [await variant(1), await variant(2)];
    const cache = tmp();
    expect((await cli(['cache', 'import', zips[0], '--cache-dir', cache])).code).toBe(0);
    /** The kept copy, read as the files on disk and checked against its record: 1 or 2 (which filler), never a mix. */
    const kept = (): number => {
      const rec = JSON.parse(readFileSync(join(cache, 'snapshots', `${encodeURIComponent(ID)}.json`), 'utf8')) as { id: string; store?: string; files: { path: string; sha256: string }[] };
      for (const f of rec.files) {
        const bytes = readFileSync(join(cache, 'blobs', 'complete', rec.store ?? rec.id, f.path));
        expect(createHash('sha256').update(bytes).digest('hex'), f.path).toBe(f.sha256);
      }
      return readFileSync(join(cache, 'blobs', 'complete', rec.store ?? rec.id, 'filler.bin'))[0];
    };
    const t0 = performance.now();
    expect((await cli(['cache', 'import', zips[1], '--replace', '--cache-dir', cache])).code).toBe(0);
    const duration = performance.now() - t0;
    expect(kept()).toBe(2);
    const rng = new Rng(29);
    const outcomes = { previous: 0, new: 0 };
    for (let trial = 0; trial < TRIALS; trial++) {
      const was = kept();
      const next = was === 1 ? 2 : 1;
      await cli(['cache', 'import', zips[next - 1], '--replace', '--cache-dir', cache],
        { killAfterMs: trial === 0 ? duration * 0.3 : trial === TRIALS - 1 ? duration * 4 : duration * (0.3 + 0.8 * rng.next()) });
      const now = kept();
      if (now === was) outcomes.previous++;
      else outcomes.new++;
      const list = await cliHere('cache', 'list', '--cache-dir', cache);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(/lab\/demo/);
    }
    console.log(`${TRIALS} kills of cache import: ${outcomes.previous} left the kept copy, ${outcomes.new} the imported one`);
    expect(outcomes.previous).toBeGreaterThan(0);
    expect(outcomes.new).toBeGreaterThan(0);
    // Every command reads what is kept: generate from it offline, and export it whole.
    const gen = await cliHere('generate', '--model', 'lab/demo', '--offline', '--cache-dir', cache, '--prompt-ids', '1,2,3', '--max-new-tokens', '2', '--json');
    expect(gen.code, gen.stderr).toBe(0);
    const again = join(tmp(), 'again.zip');
    expect((await cliHere('cache', 'export', ID, '--out', again, '--cache-dir', cache)).code).toBe(0);
    // One more import sweeps what the killed ones left: the cache holds one copy's bytes.
    expect((await cli(['cache', 'import', zips[kept() === 1 ? 1 : 0], '--replace', '--cache-dir', cache])).code).toBe(0);
    const du = (d: string): number => readdirSync(d, { withFileTypes: true }).reduce((t, e) => t + (e.isDirectory() ? du(join(d, e.name)) : statSync(join(d, e.name)).size), 0);
    const record = JSON.parse(readFileSync(join(cache, 'snapshots', `${encodeURIComponent(ID)}.json`), 'utf8')) as { files: { size: number }[] };
    expect(du(join(cache, 'blobs'))).toBe(record.files.reduce((t, f) => t + f.size, 0));
  });
});

describe('train --resume with an edited checkpoint', () => {
  it('refuses counters that do not follow from the run, and settings it does not know, before any step', async () => {
    const dir = tmp();
    const out = join(dir, 'run');
    expect((await cliHere('train', '--model', 'builtin', ...TRAIN, '--out', out, '--steps', '2', '--checkpoint-every', '1', '--rank', '2')).code).toBe(0);
    const statePath = join(out, 'checkpoint', 'trainer_state.json');
    const original = readFileSync(statePath, 'utf8');
    for (const [edit, why] of [
      [(s: Record<string, any>) => { s.step = 1e9; }, /step 1000000000 is past the run's 2 steps/],
      [(s: Record<string, any>) => { s.totalSteps = 5; s.config.steps = 5; s.step = 3; }, /the loss history has 2 steps, not the 3 steps done/],
      [(s: Record<string, any>) => { s.cursor = 1e12; }, /data position 1000000000000 cannot follow from 2 steps/],
      [(s: Record<string, any>) => { s.epoch = 1e9; }, /epoch 1000000000 .* cannot follow from 2 steps/],
      [(s: Record<string, any>) => { s.data.maxRecords = -5; }, /maxRecords is -5/],
      [(s: Record<string, any>) => { s.config.targetModules = ['q_proj', 'bogus_proj']; }, /target module "bogus_proj" is not one of q_proj/],
    ] as const) {
      const s = JSON.parse(original);
      edit(s);
      writeFileSync(statePath, JSON.stringify(s));
      const r = await cliHere('train', '--resume', out, '--json');
      expect(r.code, JSON.stringify(s).slice(0, 80)).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    writeFileSync(statePath, original);
    expect((await cliHere('train', '--resume', out, '--json')).code).toBe(0);
  });
});

describe('a micro-batch too large for one GPU binding', () => {
  it('is refused in words with the largest that fits, and stdout holds nothing but JSON', async () => {
    const dir = tmp();
    const r = await cli(['train', '--model', 'builtin', '--data', 'builtin', '--max-records', '8', '--cutoff', '72', '--grad-accum', '1', '--out', join(dir, 'x'), '--steps', '1', '--batch', '1000', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/A micro-batch of 1000 sequences of \d+ tokens needs a [\d.]+ MB buffer \(\w+\), over the [\d.]+ MB this GPU binds at once: lower the micro-batch to (\d+) or less/);
    // The suggestion is a real batch: above zero and below the one refused.
    const fits = Number(/lower the micro-batch to (\d+)/.exec(r.stderr)![1]);
    expect(fits).toBeGreaterThan(0);
    expect(fits).toBeLessThan(1000);
    for (const line of r.stdout.split('\n').filter((l) => l.trim())) expect(() => JSON.parse(line), line).not.toThrow();
  });
});
