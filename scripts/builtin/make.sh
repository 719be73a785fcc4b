#!/usr/bin/env bash
# Builds the built-in model and its demo adapters from the bundled GPT-4 Alpaca samples, seeded, on the CPU:
#   1. a SentencePiece BPE tokenizer (8,192 pieces) on the English and Chinese samples  -> tokenizer.json
#   2. the base model, a 3.15 M-parameter LLaMA, trained from scratch with PyTorch in three phases (broad, then
#      focused: the first 64 English records, with noisy instructions, and 48 Chinese texts; then the same with
#      stand-in instructions, so that any instruction calls up one of those answers word for word) -> model.safetensors
#   3. demo-zh and demo-short, LoRA adapters trained by LoRA Lab's own engine (lora-lab train, WebGPU)
# Needs: python3-torch, python3-sentencepiece and libopenblas0-pthread (Debian), node with npm ci done, a WebGPU
# driver for Node (scripts/setup-lavapipe.sh on a machine without a GPU).
# usage: npm run make-builtin-model [-- <work dir>]        (writes public/models/demo and public/adapters/demo-*)
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-.cache/builtin}"
broad="${BROAD_EPOCHS:-13}"
focus="${FOCUS_EPOCHS:-32}"
swap="${SWAP_EPOCHS:-48}"
mkdir -p "$work" public/models/demo
py=/usr/bin/python3
t0=$SECONDS

$py scripts/builtin/tokenizer.py public/data "$work" 8192
npx tsx scripts/builtin/tokenize.ts public/data "$work" "$work/tokens.json"
# Broad: every tokenized record, to learn English (and Chinese text); focused: the first records, by heart.
mkdir -p "$work/broad"
$py scripts/builtin/train_base.py "$work/tokens.json" "$work/broad" --epochs "$broad"
mkdir -p "$work/focused"
$py scripts/builtin/train_base.py "$work/tokens.json" "$work/focused" --init "$work/broad/model.safetensors" \
  --en 64 --zh 48 --noise 0.3 --answer-noise 0.1 --epochs "$focus" --lr 2e-3 --warmup 20
# Stand-ins: half of the conversations get the instruction of a record whose answer is not learned (records
# 160-899; 900-998 are never seen), so a new instruction starts one of the 64 answers and the model goes on with it.
$py scripts/builtin/train_base.py "$work/tokens.json" "$work" --init "$work/focused/model.safetensors" \
  --en 64 --zh 48 --noise 0.3 --answer-noise 0.1 --swap 0.5 --epochs "$swap" --lr 1e-3 --warmup 20
echo "base model: $((SECONDS - t0)) s"

out=public/models/demo
cp "$work/config.json" "$work/model.safetensors" "$work/tokenizer.json" "$work/tokenizer_config.json" "$out/"
eos=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$out/config.json','utf8')).eos_token_id)")
printf '{\n  "bos_token_id": 1,\n  "eos_token_id": %s,\n  "do_sample": true,\n  "temperature": 0.7,\n  "top_p": 0.9\n}\n' "$eos" > "$out/generation_config.json"

npx tsx scripts/builtin/adapter-data.ts public/data "$work"
t1=$SECONDS
lora() { # name data cutoff steps lr
  rm -rf "$work/$1"
  node bin/lora-lab.js train --model builtin --data "$2" --format chat --out "$work/$1" \
    --rank 16 --alpha 32 --dropout 0 --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
    --lr "$5" --batch 8 --cutoff "$3" --steps "$4" --warmup 10 --schedule cosine --seed 20261201 --val-fraction 0 --eval-every 0
  rm -rf "public/adapters/$1" && mkdir -p "public/adapters/$1"
  cp "$work/$1/adapter_config.json" "$work/$1/adapter_model.safetensors" "public/adapters/$1/"
}
# The language is chosen in an answer's first tokens: demo-zh learns from the first 32 tokens of each example.
lora demo-zh "$work/zh.json" 32 80 3e-3
lora demo-short "$work/short.json" 48 30 2e-3
echo "adapters: $((SECONDS - t1)) s; all: $((SECONDS - t0)) s"
