import { svelte } from '@sveltejs/vite-plugin-svelte';
import { playwright } from '@vitest/browser-playwright';
import { existsSync } from 'node:fs';
import { VitePWA } from 'vite-plugin-pwa';
import { defineConfig } from 'vitest/config';

// Chromium flags that give WebGPU on SwiftShader on machines without a GPU (see README, "Running without a GPU").
export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan',
  '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader', '--use-angle=swiftshader',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-quic', '--disable-dev-shm-usage',
];
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Node GPU tests run on lavapipe 25 (it has shader-f16) when scripts/setup-lavapipe.sh has run, else SwiftShader.
const nodeDriver = process.env.LORA_LAB_DRIVER ?? (existsSync('.cache/lavapipe/lvp_icd.json') ? 'lavapipe' : 'swiftshader');

// The installable, offline app shell (Workbox through vite-plugin-pwa): the app, the engine worker, the built-in model,
// the demo adapters and the bundled data are precached, so the app starts with the network off. Models downloaded
// from Hugging Face are kept by the app itself (OPFS / IndexedDB), never in the service worker's cache.
const pwa = VitePWA({
  registerType: 'prompt',
  injectRegister: false,
  manifest: {
    name: 'LoRA Lab',
    short_name: 'LoRA Lab',
    description: 'Load, compare and finetune small language models with LoRA, in the browser, on WebGPU. Works offline.',
    theme_color: '#0f1115',
    background_color: '#0f1115',
    display: 'standalone',
    start_url: '.',
    scope: '.',
    icons: [
      { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png' },
      { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png' },
      { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
      { src: 'icons/icon.svg', sizes: 'any', type: 'image/svg+xml' },
    ],
  },
  workbox: {
    globPatterns: ['**/*.{js,css,html,svg,png,json,jinja,safetensors,md,txt}', '**/DATA_LICENSE*'],
    // web-llm (two 5.5 MB chunks: its page side and its worker) is fetched only when a person picks a web-llm model,
    // then kept by the runtime cache below, like onnxruntime-web's wasm.
    globIgnores: ['**/assets/webllm.worker-*.js', '**/assets/lib-*.js'],
    // The built-in model's weights are the largest precached file (~8 MB).
    maximumFileSizeToCacheInBytes: 32 << 20,
    navigateFallback: 'index.html',
    cleanupOutdatedCaches: true,
    // onnxruntime-web's wasm (~25 MB, reward models only) is not precached: it is kept the first time a reward model
    // loads, and from then on works offline.
    runtimeCaching: [
      { urlPattern: /\.wasm$/, handler: 'CacheFirst', options: { cacheName: 'lora-lab-wasm', expiration: { maxEntries: 4 } } },
      { urlPattern: /\/assets\/(webllm\.worker|lib)-[\w-]+\.js$/, handler: 'CacheFirst', options: { cacheName: 'lora-lab-webllm', expiration: { maxEntries: 4 } } },
    ],
  },
});

// The packages the page and the engine worker import, bundled by Vite's dependency optimizer before the first page
// load. Vite finds the page's imports by scanning index.html, but not those of a worker started with
// `new Worker(new URL(...))`: left to discovery, they are bundled while the worker is loading, Vite reloads the page
// and the worker's script fails to load (a fresh checkout's first browser test run lost its worker that way).
// web-llm stays out: it is loaded only when a person picks a web-llm model, and is large.
const browserDeps = [
  '@huggingface/gguf', '@huggingface/hub', '@huggingface/jinja', '@huggingface/tokenizers', '@noble/hashes/legacy.js',
  '@noble/hashes/sha2.js', '@noble/hashes/utils.js', '@zip.js/zip.js', 'chart.js', 'dompurify', 'hyparquet', 'idb',
  'marked', 'onnxruntime-web', 'onnxruntime-web/webgpu', 're2js', 'stemmer', 'yaml',
];

export default defineConfig({
  plugins: [svelte(), pwa],
  optimizeDeps: { entries: ['index.html', 'workers/*.ts'], include: browserDeps },
  worker: { format: 'es' },
  build: { target: 'es2022' },
  server: { port: 5173 },
  test: {
    projects: [
      {
        extends: true,
        // The GPU and browser projects run beside these on two cores: a test of a second alone can take ten.
        test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node', testTimeout: 60_000 },
      },
      {
        extends: true,
        test: {
          name: 'gpu',
          include: ['tests/gpu/**/*.test.ts'],
          setupFiles: ['tests/helpers/gpu-setup.ts'],
          environment: 'node',
          env: { LORA_LAB_DRIVER: nodeDriver },
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // One Dawn device per file; files run one at a time (a software GPU already keeps a core busy; more at once
          // only made each slower, measured on 2 cores).
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['tests/browser/**/*.test.ts'],
          testTimeout: 300_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: chromiumPath, args: chromiumArgs } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          env: { LORA_LAB_DRIVER: nodeDriver },
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
