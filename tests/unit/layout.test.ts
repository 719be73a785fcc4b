// Shared layouts are declared once (gpu/layout.ts): the WGSL struct or word offsets and the TypeScript packer and
// decoder come from one declaration, so a field added or moved changes both sides together.

import { describe, expect, it } from 'vitest';
import { layout, offsetConstants, packBlock, packRecords, readRecord, recordWords, structCode } from '../../src/lib/gpu/layout.js';
import { kernelCode } from '../../src/lib/gpu/program.js';
import { ROW_INFO_LAYOUT, STEP_LAYOUT } from '../../src/lib/kernels/common.js';
import { TOPK, TOPK_ROW_LAYOUT, topkStage2Kernel } from '../../src/lib/kernels/topk.js';
import { ADAMW_STEP_LAYOUT, adamwKernel } from '../../src/lib/kernels/train/optimizer.js';
import { loraShrinkTrainKernel } from '../../src/lib/kernels/train/lora-backward.js';

describe('declared layouts', () => {
  it('a uniform block: the WGSL struct and the packed bytes follow one declaration, padded to 16 bytes', () => {
    const l = layout('Blk', { a: 'u32', b: 'f32', c: 'u32', d: 'f32', e: 'u32' });
    expect(structCode(l)).toBe('struct Blk { a: u32, b: f32, c: u32, d: f32, e: u32, pad0_: u32, pad1_: u32, pad2_: u32 }');
    const u = packBlock(l, { e: 5, d: -2.5, c: 0xfffffffe, b: 0.125, a: 7 });
    expect(u.length).toBe(8);
    expect([u[0], new Float32Array(u.buffer)[1], u[2], new Float32Array(u.buffer)[3], u[4]]).toEqual([7, 0.125, 0xfffffffe, -2.5, 5]);
    expect(() => packBlock(l, { a: 1, b: 2, c: 3, d: 4 } as never)).toThrow(/field "e" has no value/);
    expect(() => packBlock(l, { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 } as never)).toThrow(/no field "f"/);
  });

  it('records in an array<u32>: the word-offset constants name the positions the packer writes and the decoder reads', () => {
    const c = offsetConstants(ROW_INFO_LAYOUT);
    expect(c).toEqual({ RI: 4, RI_SLOT: 0, RI_POS: 1, RI_LORA_SLOT: 2, RI_LORA_SCALE: 3 });
    const words = packRecords(ROW_INFO_LAYOUT, 3, (m) => ({ slot: m, pos: 10 + m, loraSlot: 2 * m, loraScale: 0.5 * m }));
    for (let m = 0; m < 3; m++) {
      expect(words[c.RI * m + c.RI_POS]).toBe(10 + m);
      expect(new Float32Array(words.buffer)[c.RI * m + c.RI_LORA_SCALE]).toBe(0.5 * m);
      expect(readRecord(ROW_INFO_LAYOUT, words, m).header).toEqual({ slot: m, pos: 10 + m, loraSlot: 2 * m, loraScale: 0.5 * m });
    }
  });

  it('the top-k row: a header and a list, read back as the kernels write it', () => {
    const c = offsetConstants(TOPK_ROW_LAYOUT);
    expect(recordWords(TOPK_ROW_LAYOUT)).toBe(2 + 2 * TOPK);
    const words = new Uint32Array(2 * c.ROW);
    const f = new Float32Array(words.buffer);
    f[c.ROW + c.ROW_LSE] = 3.5;
    words[c.ROW + c.ROW_COUNT] = 1;
    f[c.ROW + c.ROW_LIST + c.ROW_ENTRY * 1 + c.ROW_ENTRY_LOGIT] = -1.25;
    words[c.ROW + c.ROW_LIST + c.ROW_ENTRY * 1 + c.ROW_ENTRY_ID] = 42;
    const r = readRecord(TOPK_ROW_LAYOUT, words, 1);
    expect(r.header).toEqual({ lse: 3.5, count: 1 });
    expect(r.list).toHaveLength(TOPK);
    expect(r.list[1]).toEqual({ logit: -1.25, id: 42 });
  });

  it('kernels declare these layouts from the same declarations', () => {
    expect(kernelCode(adamwKernel())).toContain(structCode(ADAMW_STEP_LAYOUT));
    expect(kernelCode(loraShrinkTrainKernel())).toContain('struct Seed { seed: u32, pad0_: u32, pad1_: u32, pad2_: u32 }');
    const topk = kernelCode(topkStage2Kernel());
    expect(topk).toContain(structCode(STEP_LAYOUT));
    for (const [name, v] of Object.entries(offsetConstants(TOPK_ROW_LAYOUT))) expect(topk).toContain(`const ${name}: u32 = ${v}u;`);
    // No kernel addresses a row field by a literal position any more.
    expect(topk).not.toMatch(/result\[out \+ \du/);
  });
});
