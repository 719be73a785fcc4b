// Entry point of web-llm's own Web Worker: its engine runs here, apart from LoRA Lab's engine worker, and the page
// talks to it through web-llm's WebWorkerMLCEngine. Loaded only when a person picks a web-llm model.

import { WebWorkerMLCEngineHandler } from '@mlc-ai/web-llm';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg: MessageEvent) => handler.onmessage(msg);
