// The cluster side of a recipe: Axolotl's YAML (the run's settings on the pre-tokenized data) and accelerate configs
// for N GPUs of one machine: DDP, DeepSpeed ZeRO-2 (its JSON beside it) and FSDP (full sharding with the original
// parameters kept, as PEFT needs). Written with the `yaml` library from the settings in recipe/settings.ts.

import { stringify } from 'yaml';
import { loraConfig, trainingArguments, type RecipeRun } from './settings.js';

/** Axolotl's config: its own key names for the same settings, on data/tokenized-*.jsonl (no `type`: pre-tokenized). */
export function axolotlConfig(run: RecipeRun, gpus: number): Record<string, unknown> {
  const c = run.config;
  const t = trainingArguments(run);
  const l = loraConfig(c);
  const data = (split: string) => [{ path: `data/tokenized-${split}.jsonl`, ds_type: 'json', type: null }];
  return {
    base_model: run.baseModel,
    datasets: data('train'),
    ...(run.examples.validation > 0 ? { test_datasets: data('validation') } : { val_set_size: 0 }),
    dataset_prepared_path: 'prepared',
    output_dir: 'out-axolotl',
    adapter: 'lora',
    lora_r: l.r,
    lora_alpha: l.lora_alpha,
    lora_dropout: l.lora_dropout,
    lora_target_modules: l.target_modules,
    peft_use_rslora: l.use_rslora,
    sequence_len: c.cutoff,
    sample_packing: c.batching === 'packed',
    micro_batch_size: c.microBatch,
    gradient_accumulation_steps: c.gradAccumulation,
    max_steps: t.max_steps,
    ...(t.num_train_epochs !== undefined ? { num_epochs: t.num_train_epochs } : {}),
    optimizer: t.optim,
    learning_rate: t.learning_rate,
    lr_scheduler: t.lr_scheduler_type,
    warmup_steps: t.warmup_steps,
    weight_decay: t.weight_decay,
    adam_beta1: t.adam_beta1,
    adam_beta2: t.adam_beta2,
    adam_epsilon: t.adam_epsilon,
    max_grad_norm: t.max_grad_norm,
    seed: t.seed,
    ...(t.eval_steps !== undefined && run.examples.validation > 0 ? { eval_steps: t.eval_steps } : {}),
    ...(t.save_steps !== undefined ? { save_steps: t.save_steps } : {}),
    logging_steps: 1,
    bf16: 'auto',
    // The data was made for one device; on N, divide gradient_accumulation_steps by N to keep the run's batch.
    ...(gpus > 1 ? { deepspeed: 'accelerate/ds_zero2.json' } : {}),
  };
}

const machine = (gpus: number) => ({
  compute_environment: 'LOCAL_MACHINE', machine_rank: 0, num_machines: 1, num_processes: gpus, main_training_function: 'main',
  mixed_precision: 'bf16', rdzv_backend: 'static', same_network: true, use_cpu: false,
});

export function accelerateConfigs(run: RecipeRun, gpus: number): Map<string, string> {
  const c = run.config;
  const files = new Map<string, string>();
  files.set('accelerate/ddp.yaml', stringify({ ...machine(gpus), distributed_type: 'MULTI_GPU' }));
  files.set('accelerate/zero2.yaml', stringify({
    ...machine(gpus), distributed_type: 'DEEPSPEED',
    deepspeed_config: { zero_stage: 2, offload_optimizer_device: 'none', offload_param_device: 'none', zero3_init_flag: false, gradient_accumulation_steps: c.gradAccumulation, gradient_clipping: c.maxGradNorm },
  }));
  files.set('accelerate/ds_zero2.json', JSON.stringify({
    zero_optimization: { stage: 2, overlap_comm: true, contiguous_gradients: true, reduce_bucket_size: 'auto' },
    bf16: { enabled: 'auto' }, gradient_accumulation_steps: 'auto', gradient_clipping: 'auto',
    train_batch_size: 'auto', train_micro_batch_size_per_gpu: 'auto',
  }, null, 2) + '\n');
  files.set('accelerate/fsdp.yaml', stringify({
    ...machine(gpus), distributed_type: 'FSDP',
    fsdp_config: {
      fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP', fsdp_sharding_strategy: 'FULL_SHARD', fsdp_backward_prefetch: 'BACKWARD_PRE',
      fsdp_state_dict_type: 'SHARDED_STATE_DICT', fsdp_use_orig_params: true, fsdp_cpu_ram_efficient_loading: true,
      fsdp_sync_module_states: true, fsdp_offload_params: false, fsdp_forward_prefetch: false,
    },
  }));
  return files;
}

export const axolotlYaml = (run: RecipeRun, gpus: number): string => stringify(axolotlConfig(run, gpus));
