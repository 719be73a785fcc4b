// Download progress with speed and time left: per file and in total. Speed is measured over the last few seconds, so
// a stall shows as a falling speed rather than a frozen estimate.

export interface FileProgress {
  name: string;
  loaded: number;
  /** Size when known (hub listings and Content-Length), else 0. */
  total: number;
  done: boolean;
}

export interface DownloadProgress {
  phase: 'download';
  /** The file that moved last. */
  file: string;
  loaded: number;
  total: number;
  allLoaded: number;
  allTotal: number;
  files: FileProgress[];
  bytesPerSecond: number;
  /** Time left at the current speed; NaN until there is a speed. */
  etaMs: number;
  /** Bytes already on this device before this download started (resumed files). */
  resumedBytes: number;
}

const WINDOW_MS = 5000;

export class ProgressMeter {
  readonly files = new Map<string, FileProgress>();
  #samples: [number, number][] = [];
  #lastReport = 0;
  resumedBytes = 0;

  constructor(private readonly report: (p: DownloadProgress) => void, private readonly everyMs = 100, private readonly now = () => performance.now()) {}

  plan(name: string, total: number): void {
    this.files.set(name, { name, loaded: 0, total, done: false });
  }

  /** Sets how many bytes of `name` are on this device; reports at most every `everyMs` (and always when done). */
  update(name: string, loaded: number, total?: number, done = false): void {
    const f = this.files.get(name) ?? { name, loaded: 0, total: 0, done: false };
    f.loaded = loaded;
    if (total !== undefined) f.total = total;
    f.done = done;
    this.files.set(name, f);
    const t = this.now();
    if (!done && t - this.#lastReport < this.everyMs) return;
    this.#lastReport = t;
    this.report(this.snapshot(name, t));
  }

  snapshot(name: string, t = this.now()): DownloadProgress {
    const all = [...this.files.values()];
    const allLoaded = all.reduce((a, f) => a + f.loaded, 0);
    const allTotal = all.reduce((a, f) => a + Math.max(f.total, f.loaded), 0);
    this.#samples.push([t, allLoaded]);
    while (this.#samples.length > 2 && t - this.#samples[0][0] > WINDOW_MS) this.#samples.shift();
    const [t0, b0] = this.#samples[0];
    const bytesPerSecond = t > t0 ? ((allLoaded - b0) / (t - t0)) * 1000 : 0;
    const f = this.files.get(name)!;
    return {
      phase: 'download', file: name, loaded: f.loaded, total: f.total, allLoaded, allTotal,
      files: all.map((x) => ({ ...x })), bytesPerSecond,
      etaMs: bytesPerSecond > 0 ? ((allTotal - allLoaded) / bytesPerSecond) * 1000 : NaN,
      resumedBytes: this.resumedBytes,
    };
  }
}
