// Taking work out of the browser, as the views offer it: a saved run's cluster recipe (.zip), and pushes to the
// Hugging Face Hub, each answered beside the form that asked (busy, then the commit's link or what went wrong).

import type { PushResult } from '../lib/hub/push.js';
import type { PushSource } from '../lib/worker/protocol.js';
import { download, type Host } from './host.ts';

export interface PushOutcome {
  ok: boolean;
  text: string;
  url?: string;
}

export class SharingState {
  /** The key of the push or export under way (one at a time). */
  busy = $state<string | null>(null);
  /** Each form's last outcome, by its key. */
  outcomes = $state.raw<Record<string, PushOutcome>>({});

  constructor(private readonly host: Host) {}

  #set(key: string, o: PushOutcome): void {
    this.outcomes = { ...this.outcomes, [key]: o };
  }

  /** Downloads a saved run's recipe for a cluster (TRL, Axolotl, accelerate) as a .zip. */
  async exportRecipe(name: string, gpus?: number): Promise<void> {
    const key = `recipe:${name}`;
    this.busy = key;
    try {
      const f = await this.host.client.request('exportRecipe', { name, gpus });
      download(f.name, f.blob);
      this.#set(key, { ok: true, text: `${f.name} downloaded: its README says how to run it.` });
    } catch (e) {
      this.#set(key, { ok: false, text: (e as Error).message });
    } finally {
      this.busy = null;
    }
  }

  /** Pushes `what` to `repo` as one commit; the outcome shows under `key`. */
  async push(key: string, what: PushSource, repo: string, opts: { private?: boolean; token?: string; message?: string } = {}): Promise<PushResult | null> {
    this.busy = key;
    this.#set(key, { ok: true, text: 'Pushing…' });
    try {
      const r = await this.host.client.request('pushToHub', { what, repo, ...opts });
      this.#set(key, { ok: true, text: `Pushed to ${repo}${r.created ? ' (a new repo)' : ''}.`, url: r.commitUrl });
      this.host.announce(`Pushed to ${repo}.`);
      return r;
    } catch (e) {
      this.#set(key, { ok: false, text: (e as Error).message });
      return null;
    } finally {
      this.busy = null;
    }
  }
}
