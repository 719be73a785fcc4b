// Starts the reward-model thread (ort-node-thread.ts) with tsx registered in it, as bin/lora-lab.js does for the CLI:
// a worker thread does not inherit the main thread's module hooks.
import { register } from 'tsx/esm/api';

register();
await import('./ort-node-thread.ts');
