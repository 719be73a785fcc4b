// The charts' colours on the app's dark theme, and the action every chart.js chart is drawn with.

import { Chart, type ChartConfiguration } from 'chart.js';

export const CHART_TEXT = '#9aa3b2';
export const CHART_GRID = '#2a2f3a';
export const CHART_LEGEND = { labels: { color: '#e6e8ee' } };

/** An axis with the theme's ticks and grid, and a title when given. */
export function themedAxis(title?: string) {
  return {
    ticks: { color: CHART_TEXT },
    grid: { color: CHART_GRID },
    ...(title ? { title: { display: true, text: title, color: CHART_TEXT } } : {}),
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
