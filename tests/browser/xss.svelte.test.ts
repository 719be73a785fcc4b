// Model output and dataset text never become live HTML. Hostile Markdown/HTML is rendered as a chat answer (whole and
// while streaming, token by token) in Chromium; nothing may run (each payload would set window.__xss) and nothing may
// load (each would request /__beacon/..., which resource timing would list). A control first shows that the same
// payloads, set as raw HTML, do run and load here: the checks can fail.

import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';
import ChatTurn from '../../src/ui/ChatTurn.svelte';
import { renderMarkdown } from '../../src/ui/markdown.js';

declare global { interface Window { __xss?: number } }

const B = (n: string) => `${location.origin}/__beacon/${n}`;
const RUN = 'window.__xss=(window.__xss||0)+1';

const HOSTILE = [
  `<script>${RUN}</script>`,
  `<img src="${B('img')}" onerror="${RUN}">`,
  `![tracking pixel](${B('md-img')})`,
  `<svg onload="${RUN}"><circle r="5"/></svg>`,
  `<svg><script>${RUN}</script></svg>`,
  `<svg><image href="${B('svg-image')}" /></svg>`,
  `[click me](javascript:${RUN})`,
  `[encoded](&#106;avascript:${RUN})`,
  `<a href="  javascript:${RUN}">spaced</a>`,
  `<a href="data:text/html,<script>${RUN}</script>">data link</a>`,
  `<iframe src="${B('iframe')}"></iframe>`,
  `<iframe srcdoc="<script>parent.${RUN}</script>"></iframe>`,
  `<object data="${B('object')}"></object>`,
  `<embed src="${B('embed')}">`,
  `<div style="background:url(${B('style-attr')})">styled</div>`,
  `<style>body{background:url(${B('style-tag')})}</style>`,
  `<link rel="stylesheet" href="${B('link')}">`,
  `<video poster="${B('poster')}"><source src="${B('video')}"></video>`,
  `<audio src="${B('audio')}" onerror="${RUN}"></audio>`,
  `<form action="${B('form')}"><button formaction="javascript:${RUN}">go</button></form>`,
  `<details open ontoggle="${RUN}">x</details>`,
  `<math><mtext><table><mglyph><style><img src="${B('mxss')}" onerror="${RUN}">`,
  `<noscript><p title="</noscript><img src=${B('noscript')} onerror=${RUN}>">`,
  `<input autofocus onfocus="${RUN}">`,
  `<meta http-equiv="refresh" content="0;url=${B('meta')}">`,
  '```html\n<script>' + RUN + '</script>\n```\n\n| a | b |\n|---|---|\n| <img src=' + B('table') + ' onerror=' + RUN + '> | x |',
];

function beacons(): string[] {
  return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/__beacon/'));
}

const settle = () => new Promise((r) => setTimeout(r, 400));

afterEach(() => {
  delete window.__xss;
  performance.clearResourceTimings();
  document.body.replaceChildren();
});

describe('hostile answers', () => {
  it('rendered as chat answers, whole and streamed token by token, nothing runs and nothing loads', async () => {
    for (const payload of HOSTILE) {
      const target = document.createElement('div');
      document.body.append(target);
      const props = $state({ turn: { role: 'assistant' as const, content: '' }, busy: false, streaming: true, last: true });
      const c = mount(ChatTurn, { target, props });
      // Streamed: every prefix is rendered, as the answer grows.
      for (let i = 4; i < payload.length; i += 7) { props.turn = { role: 'assistant', content: payload.slice(0, i) }; flushSync(); }
      props.turn = { role: 'assistant', content: payload };
      props.streaming = false;
      flushSync();
      await settle();
      expect(window.__xss, payload).toBeUndefined();
      expect(beacons(), payload).toEqual([]);
      const md = target.querySelector('.md')!;
      expect(md.querySelectorAll('script, img, svg, iframe, object, embed, style, link, video, audio, form, input, meta, math').length, payload).toBe(0);
      for (const el of md.querySelectorAll('*')) {
        expect([...el.attributes].filter((a) => /^on/i.test(a.name) || a.name === 'style' || a.name === 'srcdoc').map((a) => a.name), payload).toEqual([]);
      }
      for (const a of md.querySelectorAll('a')) {
        const href = a.getAttribute('href') ?? '';
        expect(href === '' || /^(https?:|mailto:|#)/i.test(href), `${payload} -> ${href}`).toBe(true);
        expect(a.getAttribute('rel')).toContain('noopener');
      }
      unmount(c);
    }
    expect(window.__xss).toBeUndefined();
    expect(beacons()).toEqual([]);
  });

  it('Markdown still renders: lists, tables and code blocks (with a copy button), and an image is named, not loaded', async () => {
    const target = document.createElement('div');
    document.body.append(target);
    const text = '1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```js\nconst x = "<b>not bold</b>";\n```\n\n![a cat](' + B('cat') + ')';
    mount(ChatTurn, { target, props: { turn: { role: 'assistant', content: text }, busy: false, last: true } });
    flushSync();
    await settle();
    expect(target.querySelectorAll('ol > li').length).toBe(2);
    expect(target.querySelector('table td')?.textContent).toBe('1');
    expect(target.querySelector('pre code')?.textContent).toContain('<b>not bold</b>');
    expect(target.querySelector('pre b')).toBeNull();
    expect(target.querySelector('pre .copy-code')?.textContent).toBe('Copy');
    expect(target.querySelector('.md-image')?.textContent).toContain('a cat');
    expect(beacons()).toEqual([]);
    expect(renderMarkdown('<b>bold</b> and **strong**')).toBe('<p><b>bold</b> and <strong>strong</strong></p>\n');
  });

  it("a user's own message is shown as text, markup and all", async () => {
    const target = document.createElement('div');
    document.body.append(target);
    mount(ChatTurn, { target, props: { turn: { role: 'user', content: HOSTILE[1] }, busy: false } });
    flushSync();
    await settle();
    expect(target.querySelector('.text')?.textContent).toBe(HOSTILE[1]);
    expect(target.querySelector('img')).toBeNull();
    expect(window.__xss).toBeUndefined();
  });
  // Last: late events of these live payloads must not leak into the other tests.
  it('control: the payloads run and load when set as raw HTML (so the checks below can fail)', async () => {
    const host = document.createElement('div');
    document.body.append(host);
    host.innerHTML = HOSTILE.join('\n');
    await settle();
    expect(window.__xss ?? 0).toBeGreaterThan(0);
    expect(beacons().length).toBeGreaterThan(0);
  });

});
