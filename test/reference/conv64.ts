// float64 reference for 2-D convolution (NCHW, OIHW, groups, stride, padding, dilation):
// forward, input gradient and filter gradient by direct loops, written independently of
// the GPU kernels (the backward loops scatter from each output, the kernels gather).

export interface Conv64Opts {
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
}

export interface Conv64Geom {
  N: number; C: number; H: number; W: number; O: number; Cg: number; KH: number; KW: number;
  OH: number; OW: number; G: number; sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

export function geom64(xs: readonly number[], ws: readonly number[], o: Conv64Opts = {}): Conv64Geom {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [O, Cg, KH, KW] = ws as [number, number, number, number];
  const [sh, sw] = o.stride ?? [1, 1];
  const [ph, pw] = o.padding ?? [0, 0];
  const [dh, dw] = o.dilation ?? [1, 1];
  const G = o.groups ?? 1;
  if (Cg * G !== C || O % G !== 0) throw new Error('conv64: bad groups');
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  return { N, C, H, W, O, Cg, KH, KW, OH, OW, G, sh, sw, ph, pw, dh, dw };
}

/** Visit every (output element, input element, filter element) triple that multiplies. */
function forEachTap(p: Conv64Geom, f: (yi: number, xi: number, wi: number) => void): void {
  const Og = p.O / p.G;
  for (let n = 0; n < p.N; n++)
    for (let o = 0; o < p.O; o++) {
      const g = Math.floor(o / Og);
      for (let oh = 0; oh < p.OH; oh++)
        for (let ow = 0; ow < p.OW; ow++) {
          const yi = ((n * p.O + o) * p.OH + oh) * p.OW + ow;
          for (let ci = 0; ci < p.Cg; ci++)
            for (let kh = 0; kh < p.KH; kh++) {
              const ih = oh * p.sh - p.ph + kh * p.dh;
              if (ih < 0 || ih >= p.H) continue;
              for (let kw = 0; kw < p.KW; kw++) {
                const iw = ow * p.sw - p.pw + kw * p.dw;
                if (iw < 0 || iw >= p.W) continue;
                const xi = ((n * p.C + g * p.Cg + ci) * p.H + ih) * p.W + iw;
                const wi = ((o * p.Cg + ci) * p.KH + kh) * p.KW + kw;
                f(yi, xi, wi);
              }
            }
        }
    }
}

export function conv64(x: Float64Array, w: Float64Array, b: Float64Array | null, p: Conv64Geom): Float64Array {
  const y = new Float64Array(p.N * p.O * p.OH * p.OW);
  forEachTap(p, (yi, xi, wi) => {
    y[yi]! += x[xi]! * w[wi]!;
  });
  if (b) {
    const hw = p.OH * p.OW;
    for (let i = 0; i < y.length; i++) y[i]! += b[Math.floor(i / hw) % p.O]!;
  }
  return y;
}

export function conv64BackwardInput(dy: Float64Array, w: Float64Array, p: Conv64Geom): Float64Array {
  const dx = new Float64Array(p.N * p.C * p.H * p.W);
  forEachTap(p, (yi, xi, wi) => {
    dx[xi]! += dy[yi]! * w[wi]!;
  });
  return dx;
}

export function conv64BackwardFilter(dy: Float64Array, x: Float64Array, p: Conv64Geom): Float64Array {
  const dw = new Float64Array(p.O * p.Cg * p.KH * p.KW);
  forEachTap(p, (yi, xi, wi) => {
    dw[wi]! += dy[yi]! * x[xi]!;
  });
  return dw;
}

export function conv64BackwardBias(dy: Float64Array, p: Conv64Geom): Float64Array {
  const db = new Float64Array(p.O);
  const hw = p.OH * p.OW;
  for (let i = 0; i < dy.length; i++) db[Math.floor(i / hw) % p.O]! += dy[i]!;
  return db;
}

/** Sum of |x_i * w_j| over taps per output (error scale for float32 accumulation). */
export function conv64AbsForward(x: Float64Array, w: Float64Array, p: Conv64Geom): Float64Array {
  return conv64(x.map(Math.abs), w.map(Math.abs), null, p);
}
