#!/usr/bin/env python3
"""Reference vectors of GGML block types, made by ggml itself.

Seeded random rows are quantized with ggml's reference quantizers (quantize_row_<type>_ref) and dequantized with its
dequantize_row_<type>, both called through ctypes from libggml-base.so of node-llama-cpp's prebuilt CPU build (nothing
compiled). The block sizes are checked against ggml_blck_size / ggml_type_size. Writes the blocks and the floats ggml
gives for them (as the bytes of f32 values, so the test compares bit for bit) to tests/fixtures/ggml-vectors.json.

  python3 scripts/gguf/ggml-vectors.py <node-llama-cpp>/bins/linux-x64/libggml-base.so [tests/fixtures/ggml-vectors.json]

(see ../shared/tools/llamacpp-peer/README.md or `npm i node-llama-cpp` in a scratch folder for the library)
"""
import base64
import ctypes
import json
import sys

import numpy as np

# name: (ggml type id, elements per block, bytes per block, function suffix)
TYPES = {
    "Q5_0": (6, 32, 22, "q5_0"),
    "Q5_1": (7, 32, 24, "q5_1"),
    "Q2_K": (10, 256, 84, "q2_K"),
    "Q3_K": (11, 256, 110, "q3_K"),
    "Q5_K": (13, 256, 176, "q5_K"),
    "IQ4_NL": (20, 32, 18, "iq4_nl"),
    "IQ4_XS": (23, 256, 136, "iq4_xs"),
}


def main():
    lib = ctypes.CDLL(sys.argv[1])
    out_path = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/ggml-vectors.json"
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_type_size.restype = ctypes.c_size_t
    lib.ggml_type_name.restype = ctypes.c_char_p
    rng = np.random.default_rng(20261206)
    vectors = {}
    for name, (tid, per, size, fn) in TYPES.items():
        assert lib.ggml_blck_size(tid) == per and lib.ggml_type_size(tid) == size, name
        assert lib.ggml_type_name(tid).decode().upper() == name, name
        blocks = 8 if per == 32 else 4
        n = blocks * per
        # Rows like weights (normal), with a few outliers, an all-zero block-sized stretch and a constant one.
        x = rng.normal(0, 0.05, n).astype(np.float32)
        x[rng.integers(0, n, 6)] *= 40
        x[per : 2 * per] = 0
        x[2 * per : 2 * per + per // 2] = 0.125
        q = (ctypes.c_uint8 * (blocks * size))()
        fp = ctypes.POINTER(ctypes.c_float)
        getattr(lib, f"quantize_row_{fn}_ref")(x.ctypes.data_as(fp), q, ctypes.c_int64(n))
        y = np.zeros(n, dtype=np.float32)
        getattr(lib, f"dequantize_row_{fn}")(q, y.ctypes.data_as(fp), ctypes.c_int64(n))
        vectors[name] = {
            "type": tid, "elements": n, "blockElements": per, "blockBytes": size,
            "blocks": base64.b64encode(bytes(q)).decode(),
            "floats": base64.b64encode(y.tobytes()).decode(),
        }
    doc = {
        "made_by": "scripts/gguf/ggml-vectors.py: ggml's quantize_row_*_ref and dequantize_row_* (libggml-base.so, node-llama-cpp 3.21.1 prebuilt, linux-x64)",
        "vectors": vectors,
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}: " + ", ".join(f"{k} ({v['elements']} values)" for k, v in vectors.items()))


if __name__ == "__main__":
    main()
