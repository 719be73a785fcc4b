#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (a dependency), so `npx lora-lab` works straight from a checkout.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// A pipe's reader may be slower than we write: what is queued for stdout and stderr goes out before the exit (an empty
// write's callback runs once every earlier write is flushed).
await Promise.all([process.stdout, process.stderr].map((s) => new Promise((r) => s.write('', r))));
process.exit(code);
