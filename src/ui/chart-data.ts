// The loss chart's data work, apart from drawing: TensorBoard's smoothing and the CSV a person exports.

export type Series = [step: number, value: number][];

/**
 * Exponential moving average with TensorBoard's debiasing: the first points are not pulled toward zero, and a weight
 * of 0 returns the series as it is. Non-finite values are passed through and do not enter the average.
 */
export function smooth(points: Series, weight: number): Series {
  if (!(weight > 0)) return points;
  let last = 0;
  let n = 0;
  return points.map(([x, y]) => {
    if (!Number.isFinite(y)) return [x, y];
    last = last * weight + (1 - weight) * y;
    n++;
    return [x, last / (1 - weight ** n)];
  });
}

export interface RunCurves {
  name: string;
  train: Series;
  validation: Series;
  /** Learning rate per step, when known (the run in progress). */
  lr?: Series;
}

/** One row per run and step: run,step,train_loss,validation_loss,learning_rate (empty where a run has no value). */
export function curvesCsv(runs: RunCurves[]): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = ['run,step,train_loss,validation_loss,learning_rate'];
  for (const r of runs) {
    const at = (s: Series | undefined) => new Map((s ?? []).map(([x, y]) => [x, y]));
    const train = at(r.train);
    const val = at(r.validation);
    const lr = at(r.lr);
    const steps = [...new Set([...train.keys(), ...val.keys(), ...lr.keys()])].sort((a, b) => a - b);
    for (const s of steps) rows.push([quote(r.name), s, train.get(s) ?? '', val.get(s) ?? '', lr.get(s) ?? ''].join(','));
  }
  return `${rows.join('\n')}\n`;
}
