// Model answers as Markdown, safely. `marked` renders (GitHub-flavoured: lists, tables, fenced code), DOMPurify
// sanitizes the result: no script, no event handlers, no javascript:/data: links, no forms, frames or styles. Remote
// images are never fetched: each becomes a link that says what it would load, so a prompt-injected answer cannot
// beacon anything out. Links open in a new tab without referrer or opener.

import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const marked = new Marked({ gfm: true, breaks: false, async: false });

const purify = DOMPurify();
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});
const CONFIG = {
  FORBID_TAGS: ['style', 'video', 'audio', 'source', 'track', 'picture', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'srcset', 'action', 'formaction', 'background', 'poster'],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
};

/** Markdown text as sanitized HTML for {@html}. Plain text in, never live markup out. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text) as string;
  // Sanitized in DOMPurify's inert document, where nothing loads; images are swapped before the HTML goes live.
  const body = purify.sanitize(html, { ...CONFIG, RETURN_DOM: true }) as HTMLElement;
  for (const img of [...body.querySelectorAll('img')]) {
    const span = body.ownerDocument.createElement('span');
    span.className = 'md-image';
    span.textContent = `[image not loaded: ${img.getAttribute('alt') || 'no description'} (${img.getAttribute('src') ?? ''})]`;
    img.replaceWith(span);
  }
  return body.innerHTML;
}

/**
 * Svelte action for a rendered answer: a copy button on each code block. Runs again whenever the HTML changes
 * (streaming), adding buttons only where they are missing.
 */
export function codeCopy(node: HTMLElement, _html: string) {
  const add = () => {
    for (const pre of node.querySelectorAll('pre')) {
      if (pre.querySelector(':scope > .copy-code')) continue;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'copy-code';
      b.textContent = 'Copy';
      b.setAttribute('aria-label', 'Copy code');
      b.addEventListener('click', () => {
        const code = pre.querySelector('code')?.textContent ?? '';
        void navigator.clipboard?.writeText(code).then(() => { b.textContent = 'Copied'; setTimeout(() => (b.textContent = 'Copy'), 1200); });
      });
      pre.prepend(b);
    }
  };
  add();
  return { update: add };
}
