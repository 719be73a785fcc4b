// Arrow keys on a tab list, as the ARIA tabs pattern has it: Left/Right move to the previous/next tab (wrapping),
// Home/End to the first/last, and the tab moved to is selected. Only the selected tab is in the Tab order.

export function tablist(node: HTMLElement) {
  const tabs = () => [...node.querySelectorAll<HTMLElement>('[role=tab]')];
  const sync = () => { for (const t of tabs()) t.tabIndex = t.getAttribute('aria-selected') === 'true' ? 0 : -1; };
  const keydown = (e: KeyboardEvent) => {
    const all = tabs();
    const i = all.indexOf(document.activeElement as HTMLElement);
    if (i < 0) return;
    const next = { ArrowRight: (i + 1) % all.length, ArrowLeft: (i - 1 + all.length) % all.length, Home: 0, End: all.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    all[next].focus();
    all[next].click();
  };
  const observer = new MutationObserver(sync);
  observer.observe(node, { subtree: true, attributes: true, attributeFilter: ['aria-selected'], childList: true });
  sync();
  node.addEventListener('keydown', keydown);
  return { destroy() { observer.disconnect(); node.removeEventListener('keydown', keydown); } };
}
