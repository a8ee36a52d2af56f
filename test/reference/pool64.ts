// float64 references for 2-D max and average pooling over [N, C, H, W] (forward and
// backward), written directly from the definitions: a scatter-style backward, unlike the
// GPU's gather, so the two share no index arithmetic.

export interface PoolGeom {
  N: number;
  C: number;
  H: number;
  W: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  PH: number;
  PW: number;
}

export function poolOut(g: PoolGeom): [number, number] {
  return [Math.floor((g.H + 2 * g.PH - g.KH) / g.SH) + 1, Math.floor((g.W + 2 * g.PW - g.KW) / g.SW) + 1];
}

/** Calls f(plane, flat output index, in-bounds window cells, kernel area) for every output. */
function forWindows(g: PoolGeom, f: (nc: number, o: number, cells: [number, number][], area: number) => void): void {
  const [OH, OW] = poolOut(g);
  for (let nc = 0; nc < g.N * g.C; nc++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const cells: [number, number][] = [];
        for (let kh = 0; kh < g.KH; kh++) {
          for (let kw = 0; kw < g.KW; kw++) {
            const h = oh * g.SH - g.PH + kh;
            const w = ow * g.SW - g.PW + kw;
            if (h >= 0 && h < g.H && w >= 0 && w < g.W) cells.push([h, w]);
          }
        }
        f(nc, (nc * OH + oh) * OW + ow, cells, g.KH * g.KW);
      }
    }
  }
}

/** Max pooling; returns y and the flat input index of each window's first maximum. */
export function maxPool64(x: ArrayLike<number>, g: PoolGeom): { y: Float64Array; arg: Int32Array } {
  const [OH, OW] = poolOut(g);
  const y = new Float64Array(g.N * g.C * OH * OW);
  const arg = new Int32Array(y.length);
  forWindows(g, (nc, o, cells) => {
    let best = -Infinity;
    let bi = -1;
    for (const [h, w] of cells) {
      const i = (nc * g.H + h) * g.W + w;
      if (bi < 0 || x[i]! > best) {
        best = x[i]!;
        bi = i;
      }
    }
    y[o] = best;
    arg[o] = bi;
  });
  return { y, arg };
}

export function maxPoolBackward64(x: ArrayLike<number>, dy: ArrayLike<number>, g: PoolGeom): Float64Array {
  const { arg } = maxPool64(x, g);
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  for (let o = 0; o < arg.length; o++) dx[arg[o]!]! += dy[o]!;
  return dx;
}

export function avgPool64(x: ArrayLike<number>, g: PoolGeom, countIncludePad: boolean): Float64Array {
  const [OH, OW] = poolOut(g);
  const y = new Float64Array(g.N * g.C * OH * OW);
  forWindows(g, (nc, o, cells, area) => {
    let s = 0;
    for (const [h, w] of cells) s += x[(nc * g.H + h) * g.W + w]!;
    y[o] = s / (countIncludePad ? area : cells.length);
  });
  return y;
}

export function avgPoolBackward64(dy: ArrayLike<number>, g: PoolGeom, countIncludePad: boolean): Float64Array {
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  forWindows(g, (nc, o, cells, area) => {
    const d = dy[o]! / (countIncludePad ? area : cells.length);
    for (const [h, w] of cells) dx[(nc * g.H + h) * g.W + w]! += d;
  });
  return dx;
}
