// A second, plain ROUGE-L that follows rouge-score's published source step by step (rouge/tokenize.py and
// rouge/rouge_scorer.py: tokenize, _lcs_table, _score_lcs, scoring.fmeasure), to check src/lib/eval/rouge.ts against.
// Written for clarity, not speed: the full (n+1)x(m+1) table, as the original builds it.

// tokenize.py: lowercase; re.sub(r"[^a-z0-9]+", " ", text); re.split(r"\s+", text); keep re.match(r"^[a-z0-9]+$").
export function referenceTokenize(text: string): string[] {
  const lowered = text.toLowerCase();
  let replaced = '';
  let inRun = false;
  for (const ch of lowered) {
    const ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
    if (ok) { replaced += ch; inRun = false; } else if (!inRun) { replaced += ' '; inRun = true; }
  }
  const pieces: string[] = [];
  let current = '';
  for (const ch of replaced) {
    if (/\s/.test(ch)) { pieces.push(current); current = ''; } else current += ch;
  }
  pieces.push(current);
  return pieces.filter((t) => t.length > 0 && [...t].every((c) => (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')));
}

// rouge_scorer._lcs_table: table[i][j] = LCS of ref[:i] and can[:j].
function lcsTable(ref: string[], can: string[]): number[][] {
  const rows = ref.length;
  const cols = can.length;
  const table: number[][] = Array.from({ length: rows + 1 }, () => new Array<number>(cols + 1).fill(0));
  for (let i = 1; i <= rows; i++) {
    for (let j = 1; j <= cols; j++) {
      if (ref[i - 1] === can[j - 1]) table[i][j] = table[i - 1][j - 1] + 1;
      else table[i][j] = Math.max(table[i - 1][j], table[i][j - 1]);
    }
  }
  return table;
}

// scoring.fmeasure
function fmeasure(precision: number, recall: number): number {
  if (precision + recall > 0) return (2 * precision * recall) / (precision + recall);
  return 0;
}

// rouge_scorer._score_lcs(target_tokens, prediction_tokens)
export function referenceRougeL(target: string, prediction: string): { precision: number; recall: number; fmeasure: number } {
  const targetTokens = referenceTokenize(target);
  const predictionTokens = referenceTokenize(prediction);
  if (!targetTokens.length || !predictionTokens.length) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsTable(targetTokens, predictionTokens)[targetTokens.length][predictionTokens.length];
  const precision = lcs / predictionTokens.length;
  const recall = lcs / targetTokens.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}
