// A reasoning model's answer (Qwen3 with thinking on) starts with its thinking in <think>…</think>; the chat shows
// that folded above the answer. While it streams, the thinking may not be closed yet.

export interface ThinkingSplit {
  /** The thinking (trimmed), or null when the answer has none. */
  thinking: string | null;
  /** The thinking is closed: what follows is the answer. */
  done: boolean;
  answer: string;
}

export function splitThinking(content: string): ThinkingSplit {
  const start = /^\s*<think>/.exec(content);
  if (!start) return { thinking: null, done: true, answer: content };
  const rest = content.slice(start[0].length);
  const end = rest.indexOf('</think>');
  if (end < 0) return { thinking: rest.trim(), done: false, answer: '' };
  return { thinking: rest.slice(0, end).trim(), done: true, answer: rest.slice(end + '</think>'.length).replace(/^\s+/, '') };
}
