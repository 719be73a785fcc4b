// Headless Chromium (Debian's package, SwiftShader WebGPU) driven by playwright-core, and the built app served by
// `vite preview` on 127.0.0.1. Screenshots land in test-results/ for a person to look at.

import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { chromiumArgs } from '../../vite.config.js';

export const SCREENSHOTS = new URL('../../test-results/', import.meta.url).pathname;

export async function startApp(): Promise<{ url: string; server: PreviewServer }> {
  const server = await preview({ preview: { port: 0, host: '127.0.0.1', strictPort: false }, logLevel: 'warn' });
  const url = server.resolvedUrls!.local[0];
  return { url, server };
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs, headless: true });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}${name}.png`;
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The built app in a fresh browser with one page (desktop size): page errors are collected in `errors`. */
export interface AppSession {
  url: string;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  errors: string[];
  close(): Promise<void>;
}

export async function openApp(contextOptions: BrowserContextOptions = {}): Promise<AppSession> {
  const app = await startApp();
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...contextOptions });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { url: app.url, browser, context, page, errors, close: async () => { await browser.close(); await app.server.close(); } };
}

/** Waits until the engine reports `state` on the page's root element (ready, idle, loading, ...). */
export function engineState(page: Page, state: string, timeout = 180_000): Promise<unknown> {
  return page.waitForFunction((s) => document.documentElement.dataset.engineState === s, state, { timeout });
}
