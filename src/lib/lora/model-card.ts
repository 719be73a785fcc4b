// The README.md that goes into an exported adapter folder: what it is, what it applies to, and, for a run trained
// here, how it was trained and on what, so the folder explains itself on the hub or on a colleague's disk.

import type { AdapterInfo } from '../engine.js';
import type { StoredCheckpoint } from '../store/checkpoints.js';

const BUNDLED = 'the GPT-4 Alpaca sample bundled with LoRA Lab (Peng et al. 2023, "Instruction Tuning with GPT-4"; CC BY-NC 4.0, research use)';

export function adapterCard(info: AdapterInfo, folder: string, run?: StoredCheckpoint): string {
  const modules = Array.isArray(info.targetModules) ? info.targetModules.join(', ') : info.targetModules;
  const lines = [
    `# ${info.name}`, '',
    'A LoRA adapter (PEFT format) exported from LoRA Lab.', '',
    `- base model: ${info.baseModel ?? 'not recorded'}`,
    `- rank ${info.rank}, alpha ${info.alpha}${info.useRslora ? ', rsLoRA' : ''}; target modules: ${modules}`,
    `- ${info.parameters.toLocaleString('en-US')} parameters`,
  ];
  if (run) {
    const c = run.checkpoint.config;
    const last = (s: [number, number][]) => (s.length ? s[s.length - 1][1].toFixed(4) : 'none');
    const data = run.dataset.kind === 'builtin' ? BUNDLED : `"${run.dataset.name}"`;
    lines.push(
      '', '## Training', '',
      `- data: ${data}, ${run.maxRecords ? `the first ${run.maxRecords} records` : 'all records'}, ${run.format === 'chat' ? "the model's chat template" : 'the Alpaca prompt template'}${c.trainOnInputs ? ', loss on prompts too' : ', loss on responses only'}`,
      `- ${run.checkpoint.step} of ${run.totalSteps} steps${run.checkpoint.step < run.totalSteps ? ' (stopped early)' : ''}; micro-batch ${c.microBatch} × ${c.gradAccumulation} accumulated; cutoff ${c.cutoff} tokens`,
      `- AdamW, learning rate ${c.learningRate} (${c.schedule}, ${c.warmupSteps} warmup steps), weight decay ${c.weightDecay}, dropout ${c.dropout}, gradient clip ${c.maxGradNorm}, seed ${c.seed}`,
      `- last train loss ${last(run.checkpoint.history.train)}, last validation loss ${last(run.checkpoint.history.validation)}`,
    );
  }
  lines.push('', '## Use', '', `With PEFT: \`PeftModel.from_pretrained(base, "${folder}")\`. In LoRA Lab: drop this folder or its .zip on the adapter shelf.`, '');
  return lines.join('\n');
}
