#!/usr/bin/env python3
"""Quantization vectors of the GGML types LoRA Lab writes (GGUF export), made by ggml itself.

Seeded random rows (weights-like, with outliers, an all-zero block, a constant stretch and a block of tiny values)
are quantized with ggml's reference quantizers, quantize_row_<type>_ref, called through ctypes from libggml-base.so of
node-llama-cpp's prebuilt CPU build (nothing compiled). Writes the input floats and the blocks ggml made for them to
tests/fixtures/ggml-quant-vectors.json; tests/unit/gguf-quantize.test.ts checks that our quantizers write the same
bytes.

  python3 scripts/gguf/ggml-quant-vectors.py <node-llama-cpp>/bins/linux-x64/libggml-base.so [tests/fixtures/ggml-quant-vectors.json]
"""
import base64
import ctypes
import json
import sys

import numpy as np

# name: (ggml type id, elements per block, bytes per block, function suffix)
TYPES = {
    "Q8_0": (8, 32, 34, "q8_0"),
    "Q5_0": (6, 32, 22, "q5_0"),
    "Q4_K": (12, 256, 144, "q4_K"),
    "Q6_K": (14, 256, 210, "q6_K"),
}


def main():
    lib = ctypes.CDLL(sys.argv[1])
    out_path = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/ggml-quant-vectors.json"
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_type_size.restype = ctypes.c_size_t
    rng = np.random.default_rng(20261206)
    vectors = {}
    for name, (tid, per, size, fn) in TYPES.items():
        assert lib.ggml_blck_size(tid) == per and lib.ggml_type_size(tid) == size, name
        blocks = 64 if per == 32 else 16
        n = blocks * per
        x = rng.normal(0, 0.05, n).astype(np.float32)
        x[rng.integers(0, n, 12)] *= 40
        x[per : 2 * per] = 0
        x[2 * per : 2 * per + per // 2] = 0.125
        x[3 * per : 4 * per] *= 1e-6
        x[4 * per : 5 * per] = np.abs(x[4 * per : 5 * per])  # all positive: the min is 0
        q = (ctypes.c_uint8 * (blocks * size))()
        fp = ctypes.POINTER(ctypes.c_float)
        getattr(lib, f"quantize_row_{fn}_ref")(x.ctypes.data_as(fp), q, ctypes.c_int64(n))
        vectors[name] = {
            "type": tid, "elements": n, "blockElements": per, "blockBytes": size,
            "input": base64.b64encode(x.tobytes()).decode(),
            "blocks": base64.b64encode(bytes(q)).decode(),
        }
    doc = {
        "made_by": "scripts/gguf/ggml-quant-vectors.py: ggml's quantize_row_*_ref (libggml-base.so, node-llama-cpp 3.21.1 prebuilt, linux-x64)",
        "vectors": vectors,
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}: " + ", ".join(f"{k} ({v['elements']} values)" for k, v in vectors.items()))


if __name__ == "__main__":
    main()
