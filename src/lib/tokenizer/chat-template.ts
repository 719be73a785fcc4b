// A chat template is code from a model's files (tokenizer_config.json, chat_template.jinja, GGUF metadata): it is run
// by @huggingface/jinja's interpreter under a step budget and a time limit, so a template that loops for ever (or over
// range(10**12)) ends in a typed error instead of hanging the worker or the CLI.
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { TokenizerError } from '../errors.js';

/** Interpreter steps (statements and expressions evaluated) one rendering may take: real templates take a few thousand. */
export const TEMPLATE_STEPS = 500_000;
/** Wall-clock limit of one rendering, checked every 4096 steps. */
export const TEMPLATE_MS = 5_000;

export interface TemplateLimits {
  steps: number;
  ms: number;
}

class TemplateLimitError extends Error {}

/** The interpreter with every evaluation counted against the limits. */
class BoundedInterpreter extends Interpreter {
  #left: number;
  readonly #deadline: number;

  constructor(env: Environment, readonly limits: TemplateLimits) {
    super(env);
    this.#left = limits.steps;
    this.#deadline = Date.now() + limits.ms;
  }

  /** Counts `n` steps of work done outside evaluate() (a range's items, each a loop iteration to come). */
  charge(n: number, what: () => string): void {
    this.#left -= n;
    if (this.#left < 0) throw new TemplateLimitError(what());
    if (Date.now() > this.#deadline) throw new TemplateLimitError(`it ran for more than ${this.limits.ms / 1000} s`);
  }

  override evaluate(...args: Parameters<Interpreter['evaluate']>): ReturnType<Interpreter['evaluate']> {
    if (--this.#left < 0) throw new TemplateLimitError(`it took more than ${this.limits.steps.toLocaleString('en-US')} steps`);
    if ((this.#left & 4095) === 0 && Date.now() > this.#deadline) throw new TemplateLimitError(`it ran for more than ${this.limits.ms / 1000} s`);
    return super.evaluate(...args);
  }
}

/**
 * Python's range() for templates. Its items are charged as steps when it is made: a loop with an empty body evaluates
 * nothing per iteration, so nested ranges would otherwise run unbounded between two counted steps.
 */
function boundedRange(interpreter: () => BoundedInterpreter) {
  return (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    for (const v of [start, stop, step]) if (!Number.isSafeInteger(v)) throw new Error('range() takes integers');
    if (step === 0) throw new Error('range() step must not be zero');
    const length = Math.max(0, Math.ceil((stop - start) / step));
    interpreter().charge(length, () => `range() of ${length.toLocaleString('en-US')} items went past the ${interpreter().limits.steps.toLocaleString('en-US')} steps it may take`);
    return Array.from({ length }, (_, i) => start + i * step);
  };
}

/** strftime_now as the templates use it (Llama 3.1 writes today's date): the common directives, in English. */
function strftimeNow(format: string): string {
  const d = new Date();
  const month = (style: 'long' | 'short') => new Intl.DateTimeFormat('en-US', { month: style }).format(d);
  const weekday = (style: 'long' | 'short') => new Intl.DateTimeFormat('en-US', { weekday: style }).format(d);
  const pad = (n: number) => String(n).padStart(2, '0');
  const directives: Record<string, () => string> = {
    Y: () => String(d.getFullYear()), y: () => pad(d.getFullYear() % 100), m: () => pad(d.getMonth() + 1), d: () => pad(d.getDate()),
    b: () => month('short'), B: () => month('long'), a: () => weekday('short'), A: () => weekday('long'),
    H: () => pad(d.getHours()), M: () => pad(d.getMinutes()), S: () => pad(d.getSeconds()), '%': () => '%',
  };
  return format.replace(/%(.)/g, (all, c: string) => directives[c]?.() ?? all);
}

/**
 * Renders `template` with `items` (messages, add_generation_prompt, tokens) as Template.render does, with the same
 * globals, but bounded. Throws TokenizerError naming the limit when the template runs past it.
 */
export function renderBounded(template: Template, items: Record<string, unknown>, limits: TemplateLimits = { steps: TEMPLATE_STEPS, ms: TEMPLATE_MS }): unknown {
  const env = new Environment();
  let interpreter: BoundedInterpreter | undefined;
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (message: unknown) => { throw new Error(String(message)); },
    range: boundedRange(() => interpreter!),
    strftime_now: strftimeNow,
    ...items,
  };
  for (const [key, value] of Object.entries(globals)) env.set(key, value);
  interpreter = new BoundedInterpreter(env, limits);
  try {
    return interpreter.run(template.parsed).value;
  } catch (e) {
    if (e instanceof TemplateLimitError) {
      throw new TokenizerError(`The model's chat template was stopped: ${e.message}, so it likely loops without end. Fix chat_template in the model's files, or use the Alpaca or raw prompt format.`);
    }
    throw e;
  }
}
