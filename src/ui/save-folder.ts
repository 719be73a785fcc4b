// Saving into a folder the person picks (the File System Access API, where the browser has it: Chromium on the
// desktop). Each file goes through a writable stream, which the browser writes aside and swaps in on close(), so a
// file is whole or untouched; a failure aborts the file in progress and says which one.

import { WriteError } from '../lib/errors.js';

/** Whether this browser lets a page write into a folder the person picks. */
export const canSaveToFolder = (): boolean => typeof window !== 'undefined' && 'showDirectoryPicker' in window;

type DirectoryPicker = (o?: { id?: string; mode?: 'read' | 'readwrite'; startIn?: string }) => Promise<FileSystemDirectoryHandle>;

/** Asks for a folder; null when the person cancels the dialog. */
export async function pickFolder(): Promise<FileSystemDirectoryHandle | null> {
  try {
    return await (window as unknown as { showDirectoryPicker: DirectoryPicker }).showDirectoryPicker({ id: 'lora-lab-export', mode: 'readwrite', startIn: 'downloads' });
  } catch (e) {
    if ((e as DOMException).name === 'AbortError') return null;
    throw e;
  }
}

/** Writes `files` into `parent/folder` (created when missing; files of the same names are replaced). */
export async function writeFolder(parent: FileSystemDirectoryHandle, folder: string, files: [string, Uint8Array][]): Promise<void> {
  const dir = await parent.getDirectoryHandle(folder, { create: true });
  for (const [name, bytes] of files) {
    let w: FileSystemWritableFileStream | null = null;
    try {
      w = await (await dir.getFileHandle(name, { create: true })).createWritable();
      await w.write(bytes as Uint8Array<ArrayBuffer>);
      await w.close();
    } catch (e) {
      await w?.abort().catch(() => undefined);
      throw new WriteError(`${folder}/${name} could not be written (${(e as Error).message}): check that the folder is writable and has room, or export a .zip instead.`, { file: `${folder}/${name}` });
    }
  }
}
