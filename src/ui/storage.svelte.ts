// What this browser keeps, as the Storage view shows it: the listing with sizes against the quota, persistence,
// deleting and exporting a kept thing, importing a file the app exported, and the Hugging Face token.

import type { DatasetSource } from '../lib/store/checkpoints.js';
import type { GgufExportType } from '../lib/formats/gguf-export.js';
import type { KeptKind, StorageListing } from '../lib/worker/storage.js';
import { download, type ErrorPlace, type Host } from './host.ts';

/** The window event the Storage page sends when it deletes a conversation (detail: its id). */
export const CONVERSATION_DELETED = 'lora-lab:conversation-deleted';

export class StorageState {
  listing = $state.raw<StorageListing | null>(null);
  /** navigator.storage.persist()'s answer: true when the browser will not evict what is kept. */
  persisted = $state<boolean | null>(null);

  constructor(private readonly host: Host, private readonly runsChanged: () => void) {}

  async refresh(): Promise<void> {
    try {
      this.listing = await this.host.client.request('storageList', {});
      this.persisted = (await navigator.storage?.persisted?.()) ?? null;
    } catch (e) {
      // A browser without IndexedDB (some private windows) keeps nothing; the Storage page says so.
      if ((e as Error).name !== 'InvalidArgumentError') this.host.fail(e, 'storage');
    }
  }

  /** Asks the browser not to evict what is kept; the answer is shown on the Storage page. */
  async requestPersistence(): Promise<void> {
    try {
      this.persisted = (await navigator.storage?.persist?.()) ?? false;
    } catch {
      this.persisted = false;
    }
  }

  async delete(kind: KeptKind, id: string): Promise<void> {
    try {
      this.listing = await this.host.client.request('deleteKept', { kind, id });
      if (kind === 'run') this.runsChanged();
      // The Chat view holds its conversations in memory: it drops this one (and leaves it, if it was open).
      if (kind === 'conversation') dispatchEvent(new CustomEvent(CONVERSATION_DELETED, { detail: id }));
    } catch (e) {
      this.host.fail(e, 'storage');
    }
  }

  /** Downloads a kept thing as a file; a model as GGUF of type `gguf` when given (else its archive). */
  async export(kind: KeptKind, id: string, as?: 'json' | 'jsonl', gguf?: GgufExportType): Promise<void> {
    try {
      const { name, blob } = await this.host.client.request('exportKept', { kind, id, as, gguf });
      download(name, blob);
    } catch (e) {
      this.host.fail(e, 'storage');
    }
  }

  async importFile(file: File, where: ErrorPlace = 'storage'): Promise<{ kind: KeptKind; id: string } | null> {
    this.host.clearError();
    try {
      const r = await this.host.client.request('importFile', { file });
      await this.refresh();
      this.host.announce(`Imported ${file.name}.`);
      return r;
    } catch (e) {
      this.host.fail(e, where);
      return null;
    }
  }

  /**
   * A dataset file the person picked, kept in this browser at once (so the Train form, a reload and later runs find
   * it); held in memory when it cannot be kept (no IndexedDB, or not a dataset: the preview then says what is wrong).
   */
  async keepDataset(file: File): Promise<DatasetSource> {
    try {
      const r = await this.host.client.request('importFile', { file });
      void this.refresh();
      if (r.kind === 'dataset') return { kind: 'kept', name: r.id };
    } catch {
      // falls through to the bytes in memory
    }
    return { kind: 'file', name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
  }

  async setToken(token: string | null): Promise<void> {
    try {
      await this.host.client.request('setToken', { token });
    } catch (e) {
      this.host.fail(e, 'model');
    }
  }
}
