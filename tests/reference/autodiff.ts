// A scalar reverse-mode autodiff tape in float64, written plainly: every value is a node with at most two parents
// and the local derivatives. It is slow and obviously right, which is what a reference for gradients should be;
// tests check it against central finite differences.

export class Tape {
  readonly val: number[] = [];
  readonly #p1: number[] = [];
  readonly #p2: number[] = [];
  readonly #d1: number[] = [];
  readonly #d2: number[] = [];

  node(v: number, p1 = -1, d1 = 0, p2 = -1, d2 = 0): number {
    this.val.push(v);
    this.#p1.push(p1);
    this.#d1.push(d1);
    this.#p2.push(p2);
    this.#d2.push(d2);
    return this.val.length - 1;
  }

  leaf(v: number): number { return this.node(v); }
  add(a: number, b: number): number { return this.node(this.val[a] + this.val[b], a, 1, b, 1); }
  sub(a: number, b: number): number { return this.node(this.val[a] - this.val[b], a, 1, b, -1); }
  mul(a: number, b: number): number { return this.node(this.val[a] * this.val[b], a, this.val[b], b, this.val[a]); }
  scale(a: number, c: number): number { return this.node(this.val[a] * c, a, c); }
  addConst(a: number, c: number): number { return this.node(this.val[a] + c, a, 1); }
  exp(a: number): number { const e = Math.exp(this.val[a]); return this.node(e, a, e); }
  log(a: number): number { return this.node(Math.log(this.val[a]), a, 1 / this.val[a]); }
  /** a^-1/2 */
  rsqrt(a: number): number { const v = this.val[a]; return this.node(v ** -0.5, a, -0.5 * v ** -1.5); }
  sin(a: number): number { return this.node(Math.sin(this.val[a]), a, Math.cos(this.val[a])); }
  tanh(a: number): number { const t = Math.tanh(this.val[a]); return this.node(t, a, 1 - t * t); }
  sigmoid(a: number): number { const s = 1 / (1 + Math.exp(-this.val[a])); return this.node(s, a, s * (1 - s)); }

  sum(xs: number[]): number {
    let acc = xs[0];
    for (let i = 1; i < xs.length; i++) acc = this.add(acc, xs[i]);
    return acc;
  }

  dot(a: number[], b: number[]): number {
    return this.sum(a.map((x, i) => this.mul(x, b[i])));
  }

  /** d(output)/d(node) for every node. */
  grad(output: number): Float64Array {
    const g = new Float64Array(this.val.length);
    g[output] = 1;
    for (let i = output; i >= 0; i--) {
      if (g[i] === 0) continue;
      if (this.#p1[i] >= 0) g[this.#p1[i]] += g[i] * this.#d1[i];
      if (this.#p2[i] >= 0) g[this.#p2[i]] += g[i] * this.#d2[i];
    }
    return g;
  }
}
