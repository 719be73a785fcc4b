// The charts' colours, read from the theme's colour variables (so they follow light and dark), and the action every
// chart.js chart is drawn with.

import { Chart, type ChartConfiguration } from 'chart.js';
import { cssVar, theme } from './theme.svelte.ts';

/** Series colours in order: accent, accent2, warn, danger, a violet. */
export function seriesColors(): string[] {
  const t = theme.resolved;
  return ['--accent', '--accent2', '--warn', '--danger', '--chart-4'].map((v) => cssVar(v, t));
}

export function chartLegend() {
  return { labels: { color: cssVar('--text', theme.resolved) } };
}

/** An axis with the theme's ticks and grid, and a title when given. */
export function themedAxis(title?: string) {
  const text = cssVar('--muted', theme.resolved);
  return {
    ticks: { color: text },
    grid: { color: cssVar('--border', theme.resolved) },
    ...(title ? { title: { display: true, text: title, color: text } } : {}),
  };
}

/** A Svelte action that draws a chart.js chart on its canvas and redraws it, without animation, when the config changes. */
export function chart(canvas: HTMLCanvasElement, config: ChartConfiguration) {
  const c = new Chart(canvas, config);
  return {
    update(next: ChartConfiguration) {
      c.data = next.data;
      c.options = next.options ?? {};
      c.update('none');
    },
    destroy() { c.destroy(); },
  };
}
