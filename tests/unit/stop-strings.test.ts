// The stop-string filter on its own: what is shown while streaming, what is held back, and where the answer ends.

import { describe, expect, it } from 'vitest';
import { StopFilter } from '../../src/lib/model/stop-strings.js';
import { Rng } from '../../src/lib/util/rng.js';

function run(stops: string[], pieces: string[], tail = '') {
  const f = new StopFilter(stops);
  const shown = pieces.map((p) => f.push(p));
  shown.push(f.finish(tail));
  return { shown, text: f.text, stopped: f.stopped };
}

describe('StopFilter', () => {
  it('without stop strings shows everything at once', () => {
    expect(run([], ['Hel', 'lo', ' world'])).toEqual({ shown: ['Hel', 'lo', ' world', ''], text: 'Hello world', stopped: false });
    expect(run([''], ['a', 'b']).shown).toEqual(['a', 'b', '']); // empty stop strings are ignored
  });

  it('a stop string split over pieces is never shown, and ends the answer', () => {
    const r = run(['\nUser:'], ['Hello', '\nUs', 'er: more', ' ignored']);
    expect(r.text).toBe('Hello');
    expect(r.stopped).toBe(true);
    expect(r.shown.join('')).toBe('Hello');
    expect(r.shown[0]).toBe(''); // the last 5 characters (the stop's length - 1) are held back
  });

  it('holds back only what could still become a stop string, and releases it at the end', () => {
    const r = run(['END'], ['abcE', 'x', 'yE']);
    expect(r.shown).toEqual(['ab', 'c', 'Ex', 'yE']);
    expect(r.text).toBe('abcExyE');
    expect(r.stopped).toBe(false);
  });

  it('the earliest of several stops found together wins; a stop at the very start leaves an empty answer', () => {
    expect(run(['cd', 'b'], ['abcd']).text).toBe('a');
    expect(run(['###'], ['###', 'x']).text).toBe('');
  });

  it('a stop string in the decoder\'s final text is cut too', () => {
    const r = run(['</s>'], ['Done'], '</s>extra');
    expect(r.text).toBe('Done');
    expect(r.shown.join('')).toBe('Done');
  });

  it('for random texts, pieces and stops: shown text is the answer, a prefix of the text, free of stop strings', () => {
    const rng = new Rng(17);
    const alphabet = 'ab\n:#';
    for (let trial = 0; trial < 2000; trial++) {
      const full = Array.from({ length: rng.int(40) }, () => alphabet[rng.int(alphabet.length)]).join('');
      const stops = Array.from({ length: rng.int(3) }, () => Array.from({ length: 1 + rng.int(4) }, () => alphabet[rng.int(alphabet.length)]).join(''));
      const pieces: string[] = [];
      for (let o = 0; o < full.length;) { const n = 1 + rng.int(5); pieces.push(full.slice(o, o + n)); o += n; }
      const r = run(stops, pieces);
      expect(r.shown.join('')).toBe(r.text);
      expect(full.startsWith(r.text)).toBe(true);
      for (const s of stops) expect(r.text.includes(s)).toBe(false);
      if (!stops.some((s) => full.includes(s))) expect(r.text).toBe(full);
    }
  });
});
