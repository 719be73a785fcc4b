#!/usr/bin/env python3
"""Reference vectors of GGML block types, made by ggml itself.

Seeded random rows are quantized with ggml's reference quantizers (quantize_row_<type>_ref), called through ctypes
from libggml-base.so of node-llama-cpp's prebuilt CPU build (nothing compiled); block sizes are checked against
ggml_blck_size / ggml_type_size. Two fixtures:

  tests/fixtures/ggml-vectors.json        the types LoRA Lab reads beside the usual ones: the blocks, and the floats
                                          ggml's dequantize_row_<type> gives for them (f32 bytes: compared bit for bit)
  tests/fixtures/ggml-quant-vectors.json  the types LoRA Lab writes (GGUF export): the input rows and the blocks ggml's
                                          quantizer makes of them (our quantizers must write the same bytes)

  python3 scripts/gguf/ggml-vectors.py <node-llama-cpp>/bins/linux-x64/libggml-base.so [fixtures folder]

(see ../shared/tools/llamacpp-peer/README.md or `npm i node-llama-cpp` in a scratch folder for the library)
"""
import base64
import ctypes
import json
import os
import sys

import numpy as np

# name: (ggml type id, elements per block, bytes per block, function suffix)
READ_TYPES = {
    "Q5_0": (6, 32, 22, "q5_0"),
    "Q5_1": (7, 32, 24, "q5_1"),
    "Q2_K": (10, 256, 84, "q2_K"),
    "Q3_K": (11, 256, 110, "q3_K"),
    "Q5_K": (13, 256, 176, "q5_K"),
    "IQ4_NL": (20, 32, 18, "iq4_nl"),
    "IQ4_XS": (23, 256, 136, "iq4_xs"),
}
WRITE_TYPES = {
    "Q8_0": (8, 32, 34, "q8_0"),
    "Q5_0": (6, 32, 22, "q5_0"),
    "Q4_K": (12, 256, 144, "q4_K"),
    "Q6_K": (14, 256, 210, "q6_K"),
}
MADE_BY = "scripts/gguf/ggml-vectors.py: ggml's quantize_row_*_ref{} (libggml-base.so, node-llama-cpp 3.21.1 prebuilt, linux-x64)"
b64 = lambda b: base64.b64encode(bytes(b)).decode()


def rows(rng, per, blocks, more):
    """Rows like weights (normal), with outliers, an all-zero block and a constant stretch; `more`: a block of tiny
    values and an all-positive one too."""
    n = blocks * per
    x = rng.normal(0, 0.05, n).astype(np.float32)
    x[rng.integers(0, n, 12 if more else 6)] *= 40
    x[per : 2 * per] = 0
    x[2 * per : 2 * per + per // 2] = 0.125
    if more:
        x[3 * per : 4 * per] *= 1e-6
        x[4 * per : 5 * per] = np.abs(x[4 * per : 5 * per])
    return x


def quantize(lib, tid, per, size, fn, x):
    assert lib.ggml_blck_size(tid) == per and lib.ggml_type_size(tid) == size, fn
    q = (ctypes.c_uint8 * (len(x) // per * size))()
    getattr(lib, f"quantize_row_{fn}_ref")(x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), q, ctypes.c_int64(len(x)))
    return q


def write(path, made_by, vectors):
    with open(path, "w") as f:
        json.dump({"made_by": made_by, "vectors": vectors}, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: " + ", ".join(f"{k} ({v['elements']} values)" for k, v in vectors.items()))


def main():
    lib = ctypes.CDLL(sys.argv[1])
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures"
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_type_size.restype = ctypes.c_size_t
    lib.ggml_type_name.restype = ctypes.c_char_p
    fp = ctypes.POINTER(ctypes.c_float)

    rng = np.random.default_rng(20261206)
    read = {}
    for name, (tid, per, size, fn) in READ_TYPES.items():
        assert lib.ggml_type_name(tid).decode().upper() == name, name
        x = rows(rng, per, 8 if per == 32 else 4, False)
        q = quantize(lib, tid, per, size, fn, x)
        y = np.zeros(len(x), dtype=np.float32)
        getattr(lib, f"dequantize_row_{fn}")(q, y.ctypes.data_as(fp), ctypes.c_int64(len(x)))
        read[name] = {"type": tid, "elements": len(x), "blockElements": per, "blockBytes": size, "blocks": b64(q), "floats": b64(y.tobytes())}
    write(os.path.join(out, "ggml-vectors.json"), MADE_BY.format(" and dequantize_row_*"), read)

    rng = np.random.default_rng(20261206)
    written = {}
    for name, (tid, per, size, fn) in WRITE_TYPES.items():
        x = rows(rng, per, 64 if per == 32 else 16, True)
        q = quantize(lib, tid, per, size, fn, x)
        written[name] = {"type": tid, "elements": len(x), "blockElements": per, "blockBytes": size, "input": b64(x.tobytes()), "blocks": b64(q)}
    write(os.path.join(out, "ggml-quant-vectors.json"), MADE_BY.format(""), written)


if __name__ == "__main__":
    main()
