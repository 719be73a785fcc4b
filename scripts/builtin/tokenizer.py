"""Trains the built-in model's tokenizer and writes it as tokenizer.json + tokenizer_config.json.

A SentencePiece BPE model (byte fallback, so any text encodes) is trained on the bundled GPT-4 Alpaca samples,
English and Chinese, then converted to the LLaMA layout of tokenizer.json that @huggingface/tokenizers reads: spaces
as "▁", a BPE model whose merges are rebuilt from the SentencePiece vocabulary (as transformers' SentencePieceExtractor
does), and a decoder that turns "▁" back into spaces and fuses byte pieces. Unlike LLaMA's, no "▁" is prepended to the
text: a reply then encodes to the same tokens alone as inside a rendered conversation, which lets a chat reuse its KV
cache across turns and keeps training (prompt and response encoded apart) equal to inference.

usage: python3 tokenizer.py <data dir> <out dir> [vocab size]
"""

import io
import json
import sys

import sentencepiece as spm

SPECIALS = ["<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def corpus(data_dir):
    for name in ("alpaca-gpt4-sample-en.json", "alpaca-gpt4-sample-zh.json"):
        with open(f"{data_dir}/{name}", encoding="utf-8") as f:
            for r in json.load(f):
                for k in ("instruction", "input", "output"):
                    for line in r[k].split("\n"):
                        if line.strip():
                            yield line


def train(data_dir, vocab_size):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus(data_dir),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=0.9995,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        user_defined_symbols=SPECIALS,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        max_sentence_length=16384,
        num_threads=2,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def tokenizer_json(sp):
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    special = {i for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i) or sp.id_to_piece(i) in SPECIALS}
    normal = {p: i for p, i in vocab.items() if i not in special and not sp.is_byte(i)}
    merges = []
    for piece, pid in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                merges.append((pid, normal[left], normal[right], left, right))
    merges.sort()
    added = [
        {"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i in sorted(special)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [[m[3], m[4]] for m in merges],
        },
    }


def main():
    data_dir, out = sys.argv[1], sys.argv[2]
    vocab_size = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
    sp = train(data_dir, vocab_size)
    with open(f"{out}/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(sp), f, ensure_ascii=False)
    config = {
        "tokenizer_class": "LlamaTokenizerFast",
        "bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>", "pad_token": "<|im_end|>",
        "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": 2048, "chat_template": CHAT_TEMPLATE,
    }
    with open(f"{out}/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    print(f"tokenizer: {sp.get_piece_size()} pieces")


if __name__ == "__main__":
    main()
