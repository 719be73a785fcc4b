#!/usr/bin/env python3
"""A small, real transformer sequence classifier with one output logit, written as ONNX for the reward-model tests.

Seeded random weights (it ranks nothing usefully; it tests that onnxruntime-web computes what the architecture says).
Architecture, as GPT-2/OPT-style reward models are: token + learned position embeddings; pre-LayerNorm blocks of
causal multi-head attention and a GELU MLP; a final LayerNorm; a linear score head read at each row's last real
token (attention_mask marks real tokens; rows are right-padded). Inputs input_ids and attention_mask (int64,
[batch, seq]); output logits (float32, [batch, num_labels]).

Writes, in the layout transformers.js uses (tokenizer from the built-in model, public/models/demo):
  tests/fixtures/reward-tiny/{onnx/model.onnx, config.json, tokenizer.json, tokenizer_config.json,
                              reference-weights.safetensors (the same weights, for the float64 reference in tests)}
  tests/fixtures/reward-two-labels/model.onnx (a two-logit head: a model the loader must refuse)

Needs Debian's python3-onnx and python3-numpy. Run from the repository root:
  /usr/bin/python3 scripts/reward/make-test-model.py
"""
import json
import os
import shutil
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 20230406  # the paper's arXiv date
D, HEADS, LAYERS, FFN, MAX_POS = 32, 2, 2, 64, 256
EPS = 1e-5
OUT = 'tests/fixtures/reward-tiny'
TOKENIZER_FROM = 'public/models/demo'


def weights(vocab: int, labels: int, rng: np.random.Generator) -> dict:
    w = {'embed_tokens': rng.normal(0, 0.3, (vocab, D)), 'embed_positions': rng.normal(0, 0.1, (MAX_POS, D))}
    lin = lambda i, o: rng.normal(0, 1 / np.sqrt(i), (i, o))
    for l in range(LAYERS):
        p = f'layers.{l}.'
        for n in ('ln1', 'ln2'):
            w[p + n + '.weight'] = 1 + rng.normal(0, 0.1, D)
            w[p + n + '.bias'] = rng.normal(0, 0.1, D)
        for n in ('q', 'k', 'v', 'o'):
            w[p + n + '.weight'] = lin(D, D)
            w[p + n + '.bias'] = rng.normal(0, 0.05, D)
        w[p + 'fc1.weight'], w[p + 'fc1.bias'] = lin(D, FFN), rng.normal(0, 0.05, FFN)
        w[p + 'fc2.weight'], w[p + 'fc2.bias'] = lin(FFN, D), rng.normal(0, 0.05, D)
    w['final_ln.weight'], w['final_ln.bias'] = 1 + rng.normal(0, 0.1, D), rng.normal(0, 0.1, D)
    w['score.weight'], w['score.bias'] = lin(D, labels), rng.normal(0, 0.1, labels)
    return {k: v.astype(np.float32) for k, v in w.items()}


def graph(w: dict, labels: int) -> onnx.ModelProto:
    nodes, inits = [], [numpy_helper.from_array(v, k) for k, v in w.items()]
    const = lambda name, arr: inits.append(numpy_helper.from_array(np.asarray(arr), name)) or name
    n = 0

    def op(kind, inputs, **attrs):
        nonlocal n
        n += 1
        out = f'{kind.lower()}_{n}'
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    hd = D // HEADS
    one_i = const('one_i64', np.array(1, np.int64))
    big = const('big', np.array(1e9, np.float32))
    one_f = const('one_f', np.array(1.0, np.float32))
    # Positions count real tokens (right padding keeps them 0..n-1); the last real token's index per row.
    pos = op('Sub', [op('CumSum', ['attention_mask', const('axis1', np.array(1, np.int64))]), one_i])
    pos = op('Max', [pos, const('zero_i64', np.array(0, np.int64))])
    last = op('Sub', [op('ReduceSum', ['attention_mask', const('axes1', np.array([1], np.int64))], keepdims=0), one_i])
    h = op('Add', [op('Gather', ['embed_tokens', 'input_ids']), op('Gather', ['embed_positions', pos])])  # [B,S,D]
    # Additive masks: causal [S,S] and padding [B,1,1,S]; 0 where attention is allowed, -1e9 where not.
    s = op('Slice', [op('Shape', ['input_ids']), const('s1', np.array([1], np.int64)), const('s2', np.array([2], np.int64))])
    ones = op('ConstantOfShape', [op('Concat', [s, s], axis=0)], value=numpy_helper.from_array(np.array([1.0], np.float32)))
    causal = op('Mul', [op('Sub', [op('Trilu', [ones], upper=0), one_f]), big])
    pad = op('Mul', [op('Sub', [op('Cast', ['attention_mask'], to=TensorProto.FLOAT), one_f]), big])
    pad = op('Unsqueeze', [pad, const('axes12', np.array([1, 2], np.int64))])
    split = const('split_shape', np.array([0, 0, HEADS, hd], np.int64))
    merge = const('merge_shape', np.array([0, 0, D], np.int64))
    scale = const('scale', np.array(1 / np.sqrt(hd), np.float32))
    ln = lambda x, p: op('LayerNormalization', [x, p + '.weight', p + '.bias'], axis=-1, epsilon=EPS)
    lin = lambda x, p: op('Add', [op('MatMul', [x, p + '.weight']), p + '.bias'])
    for l in range(LAYERS):
        p = f'layers.{l}.'
        a = ln(h, p + 'ln1')
        q = op('Transpose', [op('Reshape', [lin(a, p + 'q'), split])], perm=[0, 2, 1, 3])  # [B,H,S,hd]
        k = op('Transpose', [op('Reshape', [lin(a, p + 'k'), split])], perm=[0, 2, 3, 1])  # [B,H,hd,S]
        v = op('Transpose', [op('Reshape', [lin(a, p + 'v'), split])], perm=[0, 2, 1, 3])
        att = op('Add', [op('Add', [op('Mul', [op('MatMul', [q, k]), scale]), causal]), pad])
        o = op('MatMul', [op('Softmax', [att], axis=-1), v])
        o = op('Reshape', [op('Transpose', [o], perm=[0, 2, 1, 3]), merge])
        h = op('Add', [h, lin(o, p + 'o')])
        m = lin(ln(h, p + 'ln2'), p + 'fc1')
        gelu = op('Mul', [op('Mul', [m, const(f'half{l}', np.array(0.5, np.float32))]),
                          op('Add', [op('Erf', [op('Mul', [m, const(f'isqrt2_{l}', np.array(1 / np.sqrt(2), np.float32))])]), one_f])])
        h = op('Add', [h, lin(gelu, p + 'fc2')])
    scores = lin(ln(h, 'final_ln'), 'score')  # [B,S,L]
    seq = op('Range', [const('zero_s', np.array(0, np.int64)), op('Squeeze', [s, const('axes0', np.array([0], np.int64))]), one_i])
    pick = op('Cast', [op('Equal', [op('Unsqueeze', [last, const('axes_last', np.array([1], np.int64))]), seq])], to=TensorProto.FLOAT)  # [B,S]
    picked = op('Mul', [scores, op('Unsqueeze', [pick, const('axes_m1', np.array([-1], np.int64))])])
    nodes.append(helper.make_node('ReduceSum', [picked, const('axes_seq', np.array([1], np.int64))], ['logits'], keepdims=0))
    g = helper.make_graph(
        nodes, 'lora-lab-tiny-reward',
        [helper.make_tensor_value_info('input_ids', TensorProto.INT64, ['batch', 'sequence']),
         helper.make_tensor_value_info('attention_mask', TensorProto.INT64, ['batch', 'sequence'])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['batch', labels])],
        inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)], producer_name='lora-lab scripts/reward/make-test-model.py')
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_safetensors(path: str, w: dict) -> None:
    header, offset, blobs = {}, 0, []
    for k in sorted(w):
        b = w[k].astype('<f4').tobytes()
        header[k] = {'dtype': 'F32', 'shape': list(w[k].shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def main() -> None:
    vocab = len(json.load(open(f'{TOKENIZER_FROM}/tokenizer.json'))['model']['vocab'])
    rng = np.random.default_rng(SEED)
    w = weights(vocab, 1, rng)
    os.makedirs(f'{OUT}/onnx', exist_ok=True)
    onnx.save(graph(w, 1), f'{OUT}/onnx/model.onnx')
    write_safetensors(f'{OUT}/reference-weights.safetensors', w)
    for f in ('tokenizer.json', 'tokenizer_config.json'):
        shutil.copyfile(f'{TOKENIZER_FROM}/{f}', f'{OUT}/{f}')
    config = {
        'model_type': 'lora-lab-tiny-reward', 'architectures': ['TinyRewardForSequenceClassification'], 'num_labels': 1,
        'id2label': {'0': 'LABEL_0'}, 'label2id': {'LABEL_0': 0}, 'vocab_size': vocab, 'hidden_size': D,
        'num_attention_heads': HEADS, 'num_hidden_layers': LAYERS, 'ffn_dim': FFN, 'max_position_embeddings': MAX_POS,
        'layer_norm_eps': EPS, 'seed': SEED,
    }
    json.dump(config, open(f'{OUT}/config.json', 'w'), indent=1)
    os.makedirs('tests/fixtures/reward-two-labels', exist_ok=True)
    onnx.save(graph(weights(vocab, 2, np.random.default_rng(SEED + 1)), 2), 'tests/fixtures/reward-two-labels/model.onnx')
    print('wrote', OUT, 'and tests/fixtures/reward-two-labels')


if __name__ == '__main__':
    main()
