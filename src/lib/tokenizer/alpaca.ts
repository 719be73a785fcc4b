// The Alpaca prompt templates (Stanford Alpaca, reused by alpaca-lora and "Instruction Tuning with GPT-4").

const WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
const WITHOUT_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

export function alpacaPrompt(instruction: string, input = ''): string {
  const t = input.trim() ? WITH_INPUT.replace('{input}', () => input) : WITHOUT_INPUT;
  return t.replace('{instruction}', () => instruction);
}

/** An Alpaca record as one chat user message: the instruction, then its input (when there is one) after a blank line. */
export function userMessage(instruction: string, input: string): string {
  return input.trim() ? `${instruction}\n\n${input}` : instruction;
}
