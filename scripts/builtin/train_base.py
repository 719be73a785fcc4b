"""Trains the built-in model: a small LLaMA (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied embeddings) from
scratch on the tokens that tokenize.ts wrote, and saves it as config.json + model.safetensors (F16) in the layout
Hugging Face transformers and LoRA Lab load.

Documents are packed into rows; attention is causal within each document only and positions restart at 0 in each,
so every document is learned exactly as the app will run it (a conversation from position 0). Seeded, single
process, deterministic on one machine: torch.manual_seed, a fixed document order per epoch, and no dropout.

Trained in two phases (make.sh): broad (every tokenized document) to learn the languages, then focused, from the
broad phase's weights with a fresh optimizer: the first records are seen several times per epoch, until their answers
are learned by heart, while the rest keeps being replayed so that answers to other instructions stay fluent.

usage: python3 train_base.py <tokens.json> <out dir> [--epochs N] [--en N] [--zh N] [--focus N --focus-repeat R]
                             [--init model.safetensors] [--bench]
"""

import argparse
import json
import math
import random
import struct
import time

import torch
import torch.nn.functional as F

SEED = 20261201
CONFIG = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=3,
              num_key_value_heads=1, head_dim=64, rope_theta=10000.0, rms_norm_eps=1e-5)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["hidden_size"], c["head_dim"]
        self.h, self.kv = c["num_attention_heads"], c["num_key_value_heads"]
        self.q_proj = torch.nn.Linear(d, self.h * hd, bias=False)
        self.k_proj = torch.nn.Linear(d, self.kv * hd, bias=False)
        self.v_proj = torch.nn.Linear(d, self.kv * hd, bias=False)
        self.o_proj = torch.nn.Linear(self.h * hd, d, bias=False)
        self.gate_proj = torch.nn.Linear(d, c["intermediate_size"], bias=False)
        self.up_proj = torch.nn.Linear(d, c["intermediate_size"], bias=False)
        self.down_proj = torch.nn.Linear(c["intermediate_size"], d, bias=False)
        self.input_layernorm = torch.nn.Parameter(torch.ones(d))
        self.post_attention_layernorm = torch.nn.Parameter(torch.ones(d))
        self.eps, self.hd = c["rms_norm_eps"], hd

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.norm(x, self.input_layernorm)
        q = self.q_proj(h).view(B, T, self.h, self.hd).transpose(1, 2)    # (B, H, T, hd)
        k = self.k_proj(h).view(B, T, self.kv, self.hd).transpose(1, 2)   # (B, Hkv, T, hd)
        v = self.v_proj(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask         # (B, H, T, T)
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(a)
        h = self.norm(x, self.post_attention_layernorm)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


def rope(x, cos, sin):
    # Hugging Face's convention: the two halves of each head are the real and imaginary parts.
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Llama(torch.nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.c = c
        self.embed_tokens = torch.nn.Embedding(vocab, c["hidden_size"])
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = torch.nn.Parameter(torch.ones(c["hidden_size"]))
        hd = c["head_dim"]
        self.inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        for m in self.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
                torch.nn.init.normal_(m.weight, std=0.02)
        for b in self.layers:  # scaled residual projections (GPT-2)
            torch.nn.init.normal_(b.o_proj.weight, std=0.02 / math.sqrt(2 * c["num_hidden_layers"]))
            torch.nn.init.normal_(b.down_proj.weight, std=0.02 / math.sqrt(2 * c["num_hidden_layers"]))

    def forward(self, ids, pos, doc):
        # ids, pos, doc: (B, T); doc -1 is padding.
        ang = (pos.to(torch.float64)[..., None] * self.inv_freq).float()   # (B, T, hd/2)
        cos, sin = ang.cos()[:, None], ang.sin()[:, None]
        T = ids.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        same = (doc[:, :, None] == doc[:, None, :]) & causal                # (B, T, T)
        mask = torch.zeros(same.shape).masked_fill(~same, float("-inf"))[:, None]
        x = self.embed_tokens(ids)
        for b in self.layers:
            x = b(x, cos, sin, mask)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * self.norm
        return x @ self.embed_tokens.weight.T                               # (B, T, V), tied lm_head


def spans(doc):
    """Where a one-turn conversation's instruction starts and ends and its answer starts."""
    start = doc.index(15) + 1  # after "<|im_start|>user\n"
    end = doc.index(4)         # <|im_end|> of the user turn
    return start, end, doc.index(15, end + 3) + 1  # after "<|im_end|>\n<|im_start|>assistant\n"


def noisy(doc, p, q, rng, vocab, swap=0.0, pool=(), limit=None):
    """A conversation whose instruction tokens are each replaced by a random token with probability p, and whose
    answer tokens fed in are each replaced with probability q (in half of the conversations; the targets stay the
    true tokens). Learned by heart from a noisy instruction, an answer is also what an instruction never seen calls
    up; learned through noisy inputs, an answer that strays returns to text the model knows.
    With probability `swap`, the instruction is instead replaced whole by another one from `pool` (conversations
    whose answers are not learned): the model learns that an instruction it does not know still begins one of the
    answers it knows, and then goes on with that answer word for word, so a new instruction gets fluent text
    instead of invented words. Plain texts (no <|im_start|>, id 3) are left as they are."""
    if doc[0] != 3:
        return doc, doc[1:] + [-100]
    if swap > 0 and rng.random() < swap:
        other = pool[rng.randrange(len(pool))]
        s, e, _ = spans(doc)
        o_s, o_e, _ = spans(other)
        doc = (doc[:s] + other[o_s:o_e] + doc[e:])[:limit]
        start, end, answer = spans(doc)
        return [t if i < answer or q <= 0 or rng.random() >= q else rng.randrange(5, vocab)
                for i, t in enumerate(doc)], doc[1:] + [-100]
    targets = doc[1:] + [-100]
    if p <= 0 or rng.random() < 0.5:
        return doc, targets
    start, end, answer = spans(doc)

    def keep(i):
        prob = p if start <= i < end else q if i >= answer else 0.0
        return prob == 0.0 or rng.random() >= prob
    return [t if keep(i) else rng.randrange(5, vocab) for i, t in enumerate(doc)], targets


def pack(docs, rows_len, rng):
    """Greedy packing of shuffled (input ids, targets) documents into rows: (ids, pos, doc, targets) lists per row."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    rows, cur = [], []
    for i in order:
        d = docs[i]
        if sum(len(x[0]) for x in cur) + len(d[0]) > rows_len:
            rows.append(cur)
            cur = []
        cur.append(d)
    if cur:
        rows.append(cur)
    out = []
    for r in rows:
        ids, pos, doc, tgt = [], [], [], []
        for j, (d, t) in enumerate(r):
            ids += d
            pos += range(len(d))
            doc += [j] * len(d)
            tgt += t
        pad = rows_len - len(ids)
        out.append((ids + [0] * pad, pos + [0] * pad, doc + [-1] * pad, tgt + [-100] * pad))
    return out


def save(model, vocab, eos, out):
    tensors = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm}
    for i, b in enumerate(model.layers):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[p + f"self_attn.{n}.weight"] = getattr(b, n).weight
        for n in ("gate_proj", "up_proj", "down_proj"):
            tensors[p + f"mlp.{n}.weight"] = getattr(b, n).weight
        tensors[p + "input_layernorm.weight"] = b.input_layernorm
        tensors[p + "post_attention_layernorm.weight"] = b.post_attention_layernorm
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float16).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F16", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(f"{out}/model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", **CONFIG, "vocab_size": vocab,
        "max_position_embeddings": 2048, "tie_word_embeddings": True, "hidden_act": "silu",
        "attention_bias": False, "rope_scaling": None, "bos_token_id": 1, "eos_token_id": eos,
        "torch_dtype": "float16",
        "lora_lab_note": "Built-in model: a 4-layer LLaMA (3.15 M parameters) trained from scratch on the bundled GPT-4 Alpaca samples (160 English records, the first 64 of them by heart, and 120 Chinese answers as text), CC BY-NC 4.0. It answers those 64 instructions in GPT-4's words; any other instruction calls up one of those 64 answers, fluent but off-topic. Load a real model (e.g. HuggingFaceTB/SmolLM2-360M-Instruct) for real work.",
    }
    with open(f"{out}/config.json", "w") as f:
        json.dump(config, f, indent=2)


def load(model, path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, base = json.loads(raw[8:8 + n]), 8 + n

    def t(name):
        a, b = header[name]["data_offsets"]
        return torch.frombuffer(bytearray(raw[base + a:base + b]), dtype=torch.float16).float().view(header[name]["shape"])

    with torch.no_grad():
        model.embed_tokens.weight.copy_(t("model.embed_tokens.weight"))
        model.norm.copy_(t("model.norm.weight"))
        for i, b in enumerate(model.layers):
            p = f"model.layers.{i}."
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                getattr(b, n).weight.copy_(t(p + f"self_attn.{n}.weight"))
            for n in ("gate_proj", "up_proj", "down_proj"):
                getattr(b, n).weight.copy_(t(p + f"mlp.{n}.weight"))
            b.input_layernorm.copy_(t(p + "input_layernorm.weight"))
            b.post_attention_layernorm.copy_(t(p + "post_attention_layernorm.weight"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokens")
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--en", type=int, default=None, help="use only the first N conversations")
    ap.add_argument("--zh", type=int, default=None, help="use only the first N Chinese texts")
    ap.add_argument("--noise", type=float, default=0.0,
                    help="in half of the conversations, each instruction token is replaced by a random one with this probability")
    ap.add_argument("--answer-noise", type=float, default=0.0,
                    help="in those conversations, each answer token fed in is replaced by a random one with this probability")
    ap.add_argument("--swap", type=float, default=0.0,
                    help="each conversation's instruction is replaced by one of the stand-in pool with this probability")
    ap.add_argument("--focus", type=int, default=0, help="the first N conversations are seen --focus-repeat times per epoch")
    ap.add_argument("--focus-repeat", type=int, default=1)
    ap.add_argument("--init", default=None, help="start from these weights (model.safetensors of an earlier phase)")
    ap.add_argument("--bench", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    data = json.load(open(a.tokens))
    vocab, eos, T = data["vocabSize"], data["eos"], data["cutoff"]
    docs = data["chat"][:a.focus] * (a.focus_repeat - 1) + data["chat"][:a.en] + data["text"][:a.zh]
    model = Llama(CONFIG, vocab)
    if a.init:
        load(model, a.init)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = random.Random(SEED)
    per_epoch = math.ceil(len(pack([(d, d) for d in docs], T, random.Random(0))) / a.rows)
    total = per_epoch * a.epochs
    warmup = a.warmup
    print(f"model: {n_params / 1e6:.2f} M parameters; {len(docs)} documents, {per_epoch} steps/epoch, {total} steps", flush=True)
    step, t0 = 0, time.time()
    for epoch in range(a.epochs):
        rows = pack([noisy(d, a.noise, a.answer_noise, rng, vocab, a.swap, data.get("pool", []), T) for d in docs], T, rng)
        seen = 0
        for i in range(0, len(rows), a.rows):
            ids, pos, doc, tgt = (torch.tensor([r[k] for r in rows[i:i + a.rows]]) for k in range(4))
            # Inverse square root after a linear warm-up: the schedule does not depend on the number of epochs,
            # so the model saved after epoch e is the one a run with --epochs e gives.
            lr = a.lr * min(1.0, (step + 1) / warmup) * math.sqrt(warmup / max(step + 1, warmup))
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(ids, pos, doc)
            loss = F.cross_entropy(logits.view(-1, vocab), tgt.view(-1), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seen += int((tgt != -100).sum())
            if step % 20 == 0 or a.bench:
                el = time.time() - t0
                print(f"epoch {epoch + 1} step {step}/{total} loss {loss.item():.4f} lr {lr:.2e} "
                      f"{step * a.rows * T / el:.0f} tokens/s elapsed {el:.0f} s", flush=True)
            if a.bench and step == 5:
                return
        save(model, vocab, eos, a.out)
        print(f"epoch {epoch + 1} saved; {time.time() - t0:.0f} s", flush=True)
    print(f"trained in {time.time() - t0:.0f} s; final loss {loss.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
