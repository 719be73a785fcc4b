// A view's settings and inputs as state above the view, kept in this browser: they survive switching views (the
// components come and go, the state stays) and reloads. What is read back is checked against the defaults' shape,
// so an old or hand-edited entry can never put a wrong type into a form.

/**
 * The saved value where it has the default's type (objects key by key, recursively; extra keys when they are plain
 * values); the default elsewhere.
 */
export function merge<T>(defaults: T, saved: unknown): T {
  if (saved === undefined) return defaults;
  if (defaults === null) return saved as T;
  if (Array.isArray(defaults)) return (Array.isArray(saved) ? saved : defaults) as T;
  if (typeof defaults === 'object') {
    if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) return defaults;
    const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
    for (const [k, v] of Object.entries(saved)) {
      // Keys the default lacks (a union's other case: { kind: 'kept', name }) are taken when they are plain values.
      if (!(k in out) && ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
    }
    for (const [k, d] of Object.entries(defaults as Record<string, unknown>)) out[k] = merge(d, (saved as Record<string, unknown>)[k]);
    return out as T;
  }
  return (typeof saved === typeof defaults ? saved : defaults) as T;
}

function read(key: string): unknown {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? undefined : JSON.parse(raw);
  } catch {
    return undefined; // unreadable or storage refused (some private windows): start from the defaults
  }
}

/**
 * Deep reactive state under `key` in localStorage, saved on every change. `toSaved` picks what is written (a picked
 * file's bytes, say, are not).
 */
export function persisted<T extends object>(key: string, defaults: T, toSaved: (v: T) => unknown = (v) => v): T {
  const state = $state(merge(defaults, read(`lora-lab:${key}`)));
  $effect.root(() => {
    $effect(() => {
      const json = JSON.stringify(toSaved($state.snapshot(state) as T));
      try {
        localStorage.setItem(`lora-lab:${key}`, json);
      } catch {
        // A full or refused localStorage costs only this convenience; nothing else depends on it.
      }
    });
  });
  return state;
}
