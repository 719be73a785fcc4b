// WebGPU in Node through the `webgpu` package (Dawn). Dawn needs a Vulkan driver: a real GPU's, or on machines
// without one a software driver. When Dawn finds no adapter with the environment as given, the software drivers
// we know are tried in turn (lavapipe 25 set up by scripts/setup-lavapipe.sh, which has shader-f16, then the
// SwiftShader that Debian's chromium ships), and otherwise the error says what to install.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebGPUUnavailableError } from '../errors.js';
import { Gpu, type GpuOptions } from './device.js';

const projectRoot = fileURLToPath(new URL('../../../', import.meta.url));

export const SOFTWARE_DRIVERS: Record<string, string> = {
  lavapipe: `${projectRoot}.cache/lavapipe/lvp_icd.json`,
  swiftshader: '/usr/lib/chromium/vk_swiftshader_icd.json',
};

export interface NodeGpuOptions extends GpuOptions {
  /** 'auto' (default): the environment's driver, then the known software ones. */
  driver?: 'auto' | 'lavapipe' | 'swiftshader';
}

let webgpuModule: typeof import('webgpu') | undefined;
const instances: GPU[] = [];

async function tryCreate(icd: string | undefined, opts: GpuOptions): Promise<Gpu | null> {
  webgpuModule ??= await import('webgpu');
  Object.assign(globalThis, webgpuModule.globals);
  if (icd) process.env.VK_ICD_FILENAMES = icd;
  const gpu = webgpuModule.create([]);
  instances.push(gpu); // a collected instance can take Dawn down with it while another is alive
  const adapter = await gpu.requestAdapter();
  if (!adapter) return null;
  return Gpu.create(gpu, opts);
}

export async function createNodeGpu(opts: NodeGpuOptions = {}): Promise<Gpu> {
  const driver = opts.driver ?? ((process.env.LORA_LAB_DRIVER as NodeGpuOptions['driver']) || 'auto');
  const candidates: (string | undefined)[] = [];
  if (driver === 'auto') {
    candidates.push(process.env.VK_ICD_FILENAMES);
    for (const icd of Object.values(SOFTWARE_DRIVERS)) if (existsSync(icd)) candidates.push(icd);
  } else {
    candidates.push(SOFTWARE_DRIVERS[driver]);
  }
  for (const icd of candidates) {
    const gpu = await tryCreate(icd, opts);
    if (gpu) return gpu;
  }
  throw new WebGPUUnavailableError(
    'Dawn found no WebGPU adapter. With a GPU, install its Vulkan driver. Without one, install a software driver: ' +
      '`sudo apt-get install -y chromium libvulkan1` (SwiftShader) or run `sudo scripts/setup-lavapipe.sh` (lavapipe 25, with f16).',
  );
}
