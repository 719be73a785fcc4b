// The TRL script of a recipe: SFTTrainer with the run's LoraConfig and training arguments (recipe/settings.ts, as
// JSON at the top of the script, read back by the tests), on the exported tokens and masks. Written for TRL 0.20+
// (SFTConfig.max_length, completion_only_loss, a dataset with input_ids is used as it is). Not run here: there is no
// Python trainer or GPU on the machines LoRA Lab is built on.

import { runSettings, type RecipeRun } from './settings.js';

export function trlScript(run: RecipeRun): string {
  const settings = JSON.stringify(runSettings(run), null, 2);
  return `#!/usr/bin/env python3
"""Re-runs the LoRA Lab run ${JSON.stringify(run.name)} with TRL's SFTTrainer, on one GPU or many.

  python train_trl.py                                          # one GPU
  accelerate launch --config_file accelerate/ddp.yaml train_trl.py     # DDP over the GPUs of one machine
  accelerate launch --config_file accelerate/zero2.yaml train_trl.py   # DeepSpeed ZeRO-2
  accelerate launch --config_file accelerate/fsdp.yaml train_trl.py    # FSDP

  --base REPO   another base model: the data is tokenized again from its prompt/completion text
  --out DIR     where the adapter goes (default: out/)

The settings below are the run's, exactly as LoRA Lab used them (see README.md for what differs on a cluster).
"""
import argparse
import json

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

RUN = json.loads(r"""${settings}""")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=RUN["base_model"])
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    retokenize = args.base != RUN["base_model"]

    # LoRA Lab trained in float32; on GPUs with bfloat16 the base is loaded and run in it (see README.md).
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForCausalLM.from_pretrained(args.base, torch_dtype=torch.bfloat16 if bf16 else torch.float32)

    files = {"train": "data/train.jsonl"}
    if RUN["data"]["validation_examples"] > 0:
        files["validation"] = "data/validation.jsonl"
    data = load_dataset("json", data_files=files)
    if retokenize:
        # Another tokenizer: TRL tokenizes prompt and completion from the text and learns the completion only.
        data = data.remove_columns(["input_ids", "completion_mask"])
    else:
        # LoRA Lab's own tokens and loss mask, used as they are.
        data = data.remove_columns(["prompt", "completion"])

    peft_config = LoraConfig(**RUN["lora"])
    training = {k: v for k, v in RUN["training"].items() if v is not None}
    if "validation" not in data:
        training["eval_strategy"] = "no"
        training.pop("eval_steps", None)
    config = SFTConfig(
        output_dir=args.out,
        report_to="none",
        bf16=bf16,
        completion_only_loss=RUN["sft"]["completion_only_loss"],
        max_length=RUN["sft"]["max_length"],
        packing=RUN["sft"]["packing"],
        **training,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=data["train"],
        eval_dataset=data.get("validation"),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train()
    # A PEFT folder (adapter_config.json, adapter_model.safetensors): LoRA Lab loads it onto the shelf as it is.
    trainer.save_model(args.out)


if __name__ == "__main__":
    main()
`;
}

/** The settings JSON embedded in a TRL script (what the tests read back). */
export function readTrlSettings(script: string): ReturnType<typeof runSettings> {
  const m = /RUN = json\.loads\(r"""([\s\S]*?)"""\)/.exec(script);
  if (!m) throw new Error('no RUN settings in the script');
  return JSON.parse(m[1]);
}
