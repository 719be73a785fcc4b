// Light or dark: the system's setting unless the person picked one (kept in this browser). The choice is applied as
// data-theme on the root element, where app.css switches its colour variables; charts read the same variables.

export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'lora-lab:theme';

function saved(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

class Theme {
  choice = $state<ThemeChoice>(saved());
  #systemDark = $state(typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)').matches : true);

  constructor() {
    if (typeof matchMedia === 'function') matchMedia('(prefers-color-scheme: dark)').addEventListener('change', (e) => { this.#systemDark = e.matches; });
  }

  /** The theme in effect. */
  get resolved(): 'light' | 'dark' {
    return this.choice === 'system' ? (this.#systemDark ? 'dark' : 'light') : this.choice;
  }

  set(choice: ThemeChoice): void {
    this.choice = choice;
    try {
      if (choice === 'system') localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // not kept: it still applies until the page closes
    }
  }
}

export const theme = new Theme();

/** A colour variable of app.css as the theme in effect defines it (read when a chart is configured). */
export function cssVar(name: string, resolved: 'light' | 'dark' = theme.resolved): string {
  void resolved; // a dependency, so charts configured in $derived follow the theme
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
