// Float64 reference of the DLR loss (untargeted and targeted) and its gradient, written
// from the formula by sorting each row (independent of the kernel's single-pass top-4).
// Ties rank the lower class index first, as the kernels do.

export interface Dlr64 {
  loss: Float64Array;
  /** d(sum_i w_i L_i)/dz for the given per-example weights w (dy). */
  grad: (dy: ArrayLike<number>) => Float64Array;
}

export function dlr64(z: ArrayLike<number>, N: number, C: number, y: ArrayLike<number>, t?: ArrayLike<number>): Dlr64 {
  const loss = new Float64Array(N);
  const parts: { num: number; den: number; top: number[]; yc: number; other: number }[] = [];
  for (let r = 0; r < N; r++) {
    const row = Array.from({ length: C }, (_, c) => z[r * C + c]!);
    const order = row.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((p) => p[1]);
    const yc = y[r]!;
    let other = -1;
    for (const c of order) if (c !== yc) { other = c; break; }
    const tc = t ? t[r]! : other;
    const num = -(row[yc]! - row[tc]!);
    const den = t ? row[order[0]!]! - 0.5 * (row[order[2]!]! + row[order[3]!]!) + 1e-12 : row[order[0]!]! - row[order[2]!]! + 1e-12;
    loss[r] = num / den;
    parts.push({ num, den, top: order.slice(0, 4), yc, other: tc });
  }
  const grad = (dy: ArrayLike<number>): Float64Array => {
    const g = new Float64Array(N * C);
    parts.forEach((p, r) => {
      const w = dy[r]!;
      const o = r * C;
      g[o + p.yc]! += -w / p.den;
      g[o + p.other]! += w / p.den;
      const q = (w * p.num) / (p.den * p.den);
      g[o + p.top[0]!]! -= q;
      if (t) {
        g[o + p.top[2]!]! += 0.5 * q;
        g[o + p.top[3]!]! += 0.5 * q;
      } else g[o + p.top[2]!]! += q;
    });
    return g;
  };
  return { loss, grad };
}
