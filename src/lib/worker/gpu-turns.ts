// The GPU's turns: one job at a time, in the order they asked. A job holds its turn until it ends, or lends it out
// (a paused training run: chat and compare go on meanwhile) and queues again to go on.

export class GpuTurns {
  #tail: Promise<void> = Promise.resolve();
  /** Who holds a turn, by request id: the function that hands it on. */
  readonly #held = new Map<number, () => void>();

  /** Waits for request `id`'s turn (behind every job that asked before). */
  async take(id: number): Promise<void> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const before = this.#tail;
    this.#tail = before.then(() => mine);
    await before;
    this.#held.set(id, release);
  }

  /** Hands request `id`'s turn on (to the next job waiting, if any); nothing when it holds none. */
  give(id: number): void {
    this.#held.get(id)?.();
    this.#held.delete(id);
  }
}
