// The adapter shelf of the loaded model: which adapters are loaded (and where each came from, for "Copy link"),
// loading one (from a folder, a repo, a URL, a .zip, what is kept), removing one, and exporting one as a PEFT folder,
// a .zip or merged into the base.

import type { AdapterInfo } from '../lib/engine.js';
import type { ModelSource } from '../lib/hub/source.js';
import type { GgufExportType } from '../lib/formats/gguf-export.js';
import { download, type Host } from './host.ts';
import { pickFolder, writeFolder } from './save-folder.js';

export class ShelfState {
  adapters = $state.raw<AdapterInfo[]>([]);
  /** Each loaded adapter's source, for "Copy link". */
  sources = $state.raw<Map<string, ModelSource>>(new Map());
  /** A load or an export is under way. */
  busy = $state(false);
  /** What it is, in words, shown beside the shelf's buttons while it runs ('' when nothing runs). */
  doing = $state('');

  constructor(private readonly host: Host, private readonly importFile: (file: File) => Promise<{ kind: string; id: string } | null>) {}

  /** A new model starts with an empty shelf (or the worker died with the old one). */
  clear(): void {
    this.adapters = [];
    this.sources = new Map();
  }

  /** Adds or replaces an adapter on the shelf; `source` is remembered for links. */
  put(info: AdapterInfo, source?: ModelSource): void {
    this.adapters = [...this.adapters.filter((a) => a.name !== info.name), info];
    if (source) this.sources = new Map(this.sources).set(info.name, source);
  }

  async load(source: ModelSource, name?: string): Promise<void> {
    this.host.clearError();
    this.busy = true;
    this.doing = `Loading the adapter ${name ?? ''}`.trim();
    try {
      const info = await this.host.client.loadAdapter(source, name);
      this.put(info, source.kind === 'files' ? { kind: 'kept', name: info.name } : source);
      this.host.announce(`Adapter ${info.name} is loaded.`);
      this.host.keptChanged();
    } catch (e) {
      this.host.fail(e, 'adapter');
    } finally {
      this.busy = false;
      this.doing = '';
    }
  }

  async remove(name: string): Promise<void> {
    try {
      this.adapters = await this.host.client.removeAdapter(name);
      const sources = new Map(this.sources);
      sources.delete(name);
      this.sources = sources;
    } catch (e) {
      this.host.fail(e, 'adapter');
    }
  }

  /** Downloads the adapter as a .zip holding a PEFT folder (it loads back here and in PEFT). */
  async export(name: string): Promise<void> {
    try {
      const f = await this.host.client.request('exportAdapterZip', { name });
      download(f.name, f.blob);
    } catch (e) {
      this.host.fail(e, 'adapter');
    }
  }

  /**
   * Writes the adapter's PEFT folder into a folder the person picks (File System Access, where the browser has it).
   * Returns the folder's name, or null when the dialog was cancelled or the writing failed (the error is shown).
   */
  async saveToFolder(name: string): Promise<string | null> {
    try {
      const parent = await pickFolder();
      if (!parent) return null;
      const f = await this.host.client.request('exportAdapterFolder', { name });
      await writeFolder(parent, f.folder, f.files);
      this.host.announce(`Adapter ${name} saved as the folder ${parent.name}/${f.folder}.`);
      return f.folder;
    } catch (e) {
      this.host.fail(e, 'adapter');
      return null;
    }
  }

  /** An adapter .zip (PEFT folder inside) is kept, then loaded onto the shelf. */
  async loadZip(file: File): Promise<void> {
    const r = await this.importFile(file);
    if (r?.kind === 'adapter') await this.load({ kind: 'kept', name: r.id }, r.id);
  }

  /** Downloads the base with the adapter merged in, as a .zip holding a model folder (it loads back as it is). */
  async exportMerged(name: string): Promise<void> {
    this.busy = true;
    this.doing = `Merging ${name} into a copy of the base and zipping the model folder`;
    try {
      const f = await this.host.client.exportMerged(name, 1);
      download(f.name, f.blob);
    } catch (e) {
      this.host.fail(e, 'adapter');
    } finally {
      this.busy = false;
      this.doing = '';
    }
  }

  /**
   * Downloads a GGUF file for llama.cpp, Ollama and LM Studio: the base with `adapter` merged in (or the base alone,
   * null) at `type`, or with type "lora" the adapter as a GGUF LoRA file.
   */
  async exportGguf(adapter: string | null, type: GgufExportType | 'lora'): Promise<void> {
    this.host.clearError();
    this.busy = true;
    this.doing = type === 'lora' ? `Writing ${adapter} as a GGUF LoRA file` : `Writing ${adapter ? `the base with ${adapter} merged` : 'the base model'} as a ${type.toUpperCase()} GGUF file`;
    try {
      const f = await this.host.client.exportGguf(adapter, type, 1);
      download(f.name, f.blob);
      this.host.announce(`${f.name} is ready.`);
    } catch (e) {
      this.host.fail(e, 'adapter');
    } finally {
      this.busy = false;
      this.doing = '';
    }
  }

  /** A loaded run's checkpoint as an adapter on the shelf. */
  async loadCheckpoint(name: string): Promise<void> {
    try {
      this.put(await this.host.client.loadCheckpointAdapter(name));
    } catch (e) {
      this.host.fail(e, 'train');
    }
  }
}
