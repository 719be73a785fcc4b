// Stop strings over streamed text: generation ends at the first occurrence of any stop string, which is cut from the
// answer, and nothing streamed is ever taken back: the tail that could still grow into a stop string is held back
// until it cannot (or the generation ends). Pure, so it is tested without a model.

export class StopFilter {
  readonly #stops: string[];
  readonly #holdBack: number;
  /** The answer so far, cut before a stop string once one is found. */
  text = '';
  /** Whether a stop string was found. */
  stopped = false;
  #emitted = 0;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
    this.#holdBack = Math.max(0, ...this.#stops.map((s) => s.length - 1));
  }

  /** Adds newly decoded text; returns what may be shown now (possibly ''). After a stop, adds nothing. */
  push(delta: string): string {
    if (this.stopped) return '';
    this.text += delta;
    let stopAt = -1;
    for (const s of this.#stops) {
      // Only where a stop could newly appear: it cannot lie wholly inside text already shown.
      const i = this.text.indexOf(s, Math.max(0, this.#emitted - s.length + 1));
      if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
    }
    if (stopAt >= 0) {
      this.text = this.text.slice(0, stopAt);
      this.stopped = true;
    }
    const safe = this.stopped ? this.text.length : Math.max(this.#emitted, this.text.length - this.#holdBack);
    return this.#emit(safe);
  }

  /** The generation ended: adds the decoder's last text and releases everything held back (still cut at a stop). */
  finish(delta = ''): string {
    const out = this.push(delta);
    return out + this.#emit(this.text.length);
  }

  #emit(upTo: number): string {
    const out = this.text.slice(this.#emitted, upTo);
    this.#emitted = Math.max(this.#emitted, upTo);
    return out;
  }
}
