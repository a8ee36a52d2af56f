// Float64 checks of the activation references and reference_math (no GPU): gradchecks
// by extrapolated central differences, the properties listed in docs/numerics.md section 2
// (values and curvature at 0, kinks, convergence to ReLU, minima, GELU forms), finiteness
// at extreme inputs, erf against known values, and the table's API and WGSL shape.
// Set KINKLESS_VERBOSE=1 to print the measured gradcheck errors.
import { describe, expect, it } from 'vitest';
import {
  ACTIVATIONS,
  ACTIVATION_KINDS,
  activationConstraint,
  activationDef,
  constrain,
  paramDomainError,
  unconstrain,
  type ActivationDef,
  type ActivationKind,
} from '../../kernels/activations.ts';
import {
  erf64,
  erfc64,
  expm1MinusXExp64,
  normalCdf64,
  sigmoid64,
  softplus64,
  xMinusLog1p64,
} from '../../kernels/reference_math.ts';

const VERBOSE = process.env.KINKLESS_VERBOSE === '1';

// ---------------------------------------------------------------------------------
// Ridders' extrapolation of central differences: the step shrinks by CON each round and
// a Neville tableau removes the h^2, h^4, ... error terms; the estimate with the
// smallest internal error is returned. Far more accurate than one central difference.
function ridders(fn: (t: number) => number, t: number, h0: number): number {
  const CON = 1.4;
  const CON2 = CON * CON;
  const NTAB = 10;
  const SAFE = 2;
  const a: number[][] = Array.from({ length: NTAB }, () => new Array<number>(NTAB).fill(0));
  let h = h0;
  a[0]![0] = (fn(t + h) - fn(t - h)) / (2 * h);
  let best = a[0]![0]!;
  let err = Infinity;
  for (let i = 1; i < NTAB; i++) {
    h /= CON;
    a[0]![i] = (fn(t + h) - fn(t - h)) / (2 * h);
    let fac = CON2;
    for (let j = 1; j <= i; j++) {
      a[j]![i] = (a[j - 1]![i]! * fac - a[j - 1]![i - 1]!) / (fac - 1);
      fac *= CON2;
      const errt = Math.max(
        Math.abs(a[j]![i]! - a[j - 1]![i]!),
        Math.abs(a[j]![i]! - a[j - 1]![i - 1]!),
      );
      if (errt <= err) {
        err = errt;
        best = a[j]![i]!;
      }
    }
    if (Math.abs(a[i]![i]! - a[i - 1]![i - 1]!) >= SAFE * err) break;
  }
  return best;
}

/** |got - want| / max(1, |want|): relative for large values, absolute for small. */
const mixedErr = (got: number, want: number): number =>
  Math.abs(got - want) / Math.max(1, Math.abs(want));

// Parameter sets per kind (effective values) used by the gradchecks.
// Kinds without params need no row (their one set is []).
const PARAM_SETS: Partial<Record<ActivationKind, number[][]>> = {
  relu: [[]],
  softplus: [[1], [0.3], [3], [10]],
  psoftplus: [[1], [2.5]],
  silu: [[1], [0.5], [4]],
  gelu: [[]],
  gelu_tanh: [[]],
  elu: [[1], [0.5], [2]],
  celu: [[1], [0.5], [2]],
  smooth_relu: [[400], [1], [20]],
  prelu: [[0], [0.25], [-0.5]],
  pssilu: [[1, 1e-8], [2, 0.3], [0.7, 0.1]],
};

// Kinds whose f is only piecewise smooth at 0: no x-difference across 0 for them.
const PIECEWISE_AT_0 = new Set<string>(['relu', 'elu', 'celu', 'smooth_relu', 'prelu']);

const X_POINTS = [
  -30, -12, -6, -3, -2, -1.5, -1.2784645, -1, -0.75, -0.5, -0.3, -0.1, -0.02, -1e-3, -1e-5, 0,
  1e-5, 1e-3, 0.02, 0.1, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 6, 12, 30,
];

/** Starting step for differences in x: well inside the function's own length scale. */
function xStep(def: ActivationDef, x: number, p: number[]): number {
  // Scaled kinds vary on a length 1/a (softplus/silu/pssilu/smooth_relu) or a (celu).
  let scale = 1;
  if (['softplus', 'psoftplus', 'silu', 'pssilu', 'smooth_relu'].includes(def.kind)) {
    scale = 1 / Math.max(1, Math.abs(p[0]!));
  } else if (def.kind === 'celu') {
    scale = Math.min(1, Math.abs(p[0]!));
  }
  let h = 0.05 * Math.min(scale, Math.max(Math.abs(x), 0.02));
  if (PIECEWISE_AT_0.has(def.kind) && x !== 0) h = Math.min(h, 0.4 * Math.abs(x));
  return h;
}

function gradcheck(def: ActivationDef): { dfErr: number; dpErr: number; where: string } {
  let dfErr = 0;
  let dpErr = 0;
  let where = '';
  for (const p of PARAM_SETS[def.kind as ActivationKind] ?? [[...def.defaults]]) {
    for (const x of X_POINTS) {
      if (x === 0 && PIECEWISE_AT_0.has(def.kind)) continue;
      const fdX = ridders((t) => def.f(t, p), x, xStep(def, x, p));
      const e = mixedErr(def.df(x, p), fdX);
      if (e > dfErr) {
        dfErr = e;
        where = `${def.kind} df at x=${x} p=[${p}]`;
      }
      const dp = def.dp(x, p);
      expect(dp.length).toBe(def.paramNames.length);
      for (let i = 0; i < p.length; i++) {
        const fdP = ridders(
          (t) => def.f(x, p.map((v, j) => (j === i ? t : v))),
          p[i]!,
          0.02 * Math.max(Math.abs(p[i]!), 0.05),
        );
        const ep = mixedErr(dp[i]!, fdP);
        if (ep > dpErr) {
          dpErr = ep;
          if (ep > dfErr) where = `${def.kind} dp[${i}] at x=${x} p=[${p}]`;
        }
      }
    }
  }
  return { dfErr, dpErr, where };
}

describe('gradcheck: float64 refs vs extrapolated central differences', () => {
  for (const kind of ACTIVATION_KINDS) {
    it(kind, () => {
      const r = gradcheck(ACTIVATIONS[kind]);
      if (VERBOSE) {
        console.log(
          `${kind.padEnd(12)} df ${r.dfErr.toExponential(2)}  dp ${r.dpErr.toExponential(2)}  (${r.where})`,
        );
      }
      expect(r.dfErr).toBeLessThan(1e-8);
      expect(r.dpErr).toBeLessThan(1e-8);
    });
  }
});

describe('values and curvature at 0', () => {
  const d = (k: ActivationKind) => ACTIVATIONS[k];
  it("f(0) = 0 and f'(0) per docs/numerics.md", () => {
    const cases: [ActivationKind, number[], number][] = [
      ['relu', [], 0],
      ['softplus', [1], 0.5],
      ['softplus', [7], 0.5],
      ['psoftplus', [0.3], 0.5],
      ['silu', [1], 0.5],
      ['silu', [3], 0.5],
      ['gelu', [], 0.5],
      ['gelu_tanh', [], 0.5],
      ['elu', [1], 1],
      ['elu', [0.4], 0.4],
      ['celu', [0.4], 1],
      ['smooth_relu', [400], 0],
      ['prelu', [0.25], 0.25],
      ['prelu', [0], 0],
      ['pssilu', [1, 1e-8], (0.5 - 1e-8) / (1 - 1e-8)],
      ['pssilu', [2, 0.3], (0.5 - 0.3) / 0.7],
    ];
    for (const [k, p, want] of cases) {
      expect(d(k).df(0, p), `${k}'(0) p=[${p}]`).toBeCloseTo(want, 14);
      if (k !== 'softplus' && k !== 'psoftplus') expect(d(k).f(0, p)).toBe(0);
    }
    expect(d('softplus').f(0, [2])).toBeCloseTo(Math.LN2 / 2, 15);
  });

  it("f''(0) by differences of df", () => {
    const sqrt2OverPi = Math.sqrt(2 / Math.PI);
    const cases: [ActivationKind, number[], number][] = [
      ['softplus', [1], 1 / 4],
      ['softplus', [6], 6 / 4],
      ['psoftplus', [0.5], 0.5 / 4],
      ['silu', [1], 1 / 2],
      ['silu', [3], 3 / 2],
      ['gelu', [], sqrt2OverPi],
      ['gelu_tanh', [], sqrt2OverPi],
      ['pssilu', [1, 1e-8], 1 / (2 * (1 - 1e-8))],
      ['pssilu', [2, 0.3], 2 / (2 * 0.7)],
    ];
    for (const [k, p, want] of cases) {
      const got = ridders((t) => d(k).df(t, p), 0, 0.01);
      expect(Math.abs(got - want), `${k}''(0) p=[${p}]`).toBeLessThan(1e-9);
    }
    expect(Math.abs(sqrt2OverPi - 0.7979)).toBeLessThan(1e-4);
  });

  it("continuity of f' at 0, and the jumps where it fails", () => {
    const eps = 1e-12;
    const jump = (k: ActivationKind, p: number[]) => d(k).df(eps, p) - d(k).df(-eps, p);
    const continuous: [ActivationKind, number[]][] = [
      ['softplus', [1]],
      ['softplus', [50]],
      ['psoftplus', [1]],
      ['silu', [1]],
      ['gelu', []],
      ['gelu_tanh', []],
      ['celu', [0.3]],
      ['celu', [3]],
      ['smooth_relu', [400]],
      ['pssilu', [1, 1e-8]],
      ['pssilu', [3, 0.2]],
      ['elu', [1]],
    ];
    for (const [k, p] of continuous) expect(Math.abs(jump(k, p)), `${k} p=[${p}]`).toBeLessThan(1e-9);
    expect(jump('relu', [])).toBe(1);
    for (const a of [0, 0.25, 2]) {
      expect(jump('prelu', [a])).toBeCloseTo(1 - a, 12);
      expect(jump('elu', [a])).toBeCloseTo(1 - a, 11); // |jump| = |a - 1|
    }
    // derivative conventions exactly at 0
    expect(d('relu').df(0, [])).toBe(0);
    expect(d('elu').df(0, [0.7])).toBe(0.7);
    expect(d('prelu').df(0, [0.3])).toBe(0.3);
    expect(d('prelu').dp(0, [0.3])).toEqual([0]);
    expect(d('celu').df(0, [0.3])).toBe(1);
  });
});

describe('convergence to ReLU', () => {
  const relu = (x: number) => Math.max(x, 0);
  const grid: number[] = [];
  for (let i = -4000; i <= 4000; i++) grid.push(i * 0.005);
  const supDiff = (k: ActivationKind, p: number[], xs: number[]) =>
    Math.max(...xs.map((x) => Math.abs(ACTIVATIONS[k].f(x, p) - relu(x))));

  it('softplus(a) within log2/a (attained at 0)', () => {
    for (const a of [1, 4, 20, 100]) {
      const xs = grid.map((x) => x / a);
      const s = supDiff('softplus', [a], xs);
      expect(s).toBeLessThanOrEqual(Math.LN2 / a + 1e-15);
      expect(s).toBeGreaterThan((Math.LN2 / a) * (1 - 1e-12));
    }
  });

  it('swish(b) within 0.2785/b (attained near -1.278/b)', () => {
    for (const b of [1, 4, 20, 100]) {
      const xs = grid.map((x) => x / b);
      const s = supDiff('silu', [b], xs);
      expect(s).toBeLessThanOrEqual(0.2785 / b);
      expect(s).toBeGreaterThan(0.2784 / b);
    }
  });

  it('CELU(a) within a (approached as x -> -inf)', () => {
    for (const a of [0.1, 1, 3]) {
      const xs = [...grid.map((x) => x * a), -50 * a, -1e3 * a];
      const s = supDiff('celu', [a], xs);
      expect(s).toBeLessThanOrEqual(a);
      expect(s).toBeGreaterThan(a * (1 - 1e-12));
    }
  });

  it('PReLU(0) is ReLU; PSSiLU(b=0, a -> inf) tends to ReLU like swish', () => {
    for (const x of grid) {
      expect(ACTIVATIONS.prelu.f(x, [0]) + 0).toBe(relu(x)); // + 0: -0 -> 0
      expect(ACTIVATIONS.prelu.df(x, [0])).toBe(x > 0 ? 1 : 0);
    }
    let prev = Infinity;
    for (const a of [1, 10, 100, 1000]) {
      const s = supDiff('pssilu', [a, 0], grid.map((x) => x / a));
      expect(s).toBeLessThanOrEqual(0.2785 / a);
      expect(s).toBeLessThan(prev);
      prev = s;
    }
  });
});

describe('minima, found by golden-section search on the refs', () => {
  function goldenMin(fn: (x: number) => number, lo: number, hi: number): [number, number] {
    const g = (Math.sqrt(5) - 1) / 2;
    let a = lo;
    let b = hi;
    let c = b - g * (b - a);
    let d = a + g * (b - a);
    for (let i = 0; i < 200 && b - a > 1e-12; i++) {
      if (fn(c) < fn(d)) b = d;
      else a = c;
      c = b - g * (b - a);
      d = a + g * (b - a);
    }
    const x = (a + b) / 2;
    return [x, fn(x)];
  }

  it('SiLU: -0.278465 at -1.278465', () => {
    const [x, v] = goldenMin((t) => ACTIVATIONS.silu.f(t, [1]), -5, 0);
    expect(Math.abs(x - -1.278465)).toBeLessThan(2e-6);
    expect(Math.abs(v - -0.278465)).toBeLessThan(1e-6);
    expect(Math.abs(ACTIVATIONS.silu.df(x, [1]))).toBeLessThan(1e-6);
  });

  it('GELU: -0.169971 at -0.751792', () => {
    const [x, v] = goldenMin((t) => ACTIVATIONS.gelu.f(t, []), -5, 0);
    expect(Math.abs(x - -0.751792)).toBeLessThan(2e-6);
    expect(Math.abs(v - -0.169971)).toBeLessThan(1e-6);
    expect(Math.abs(ACTIVATIONS.gelu.df(x, []))).toBeLessThan(1e-6);
  });
});

describe('GELU exact vs tanh form', () => {
  it('differ by at most ~4.7e-4 (max 4.732e-4 at |x| = 2.699)', () => {
    let m = 0;
    let at = 0;
    for (let i = -12000; i <= 12000; i++) {
      const x = i * 5e-4;
      const dlt = Math.abs(ACTIVATIONS.gelu.f(x, []) - ACTIVATIONS.gelu_tanh.f(x, []));
      if (dlt > m) {
        m = dlt;
        at = Math.abs(x);
      }
    }
    expect(m).toBeLessThan(4.74e-4);
    expect(m).toBeGreaterThan(4.72e-4);
    expect(Math.abs(at - 2.699)).toBeLessThan(0.01);
  });
});

describe('finiteness and limits at extreme inputs', () => {
  const EXTREMES = [30, -30, 100, -100, 400, -400, 1e30, -1e30];
  // Kinds without params need no row.
  const extremeParams: Partial<Record<ActivationKind, number[][]>> = {
    softplus: [[1], [1e-3], [1e3]],
    psoftplus: [[1], [1e-3], [1e3]],
    silu: [[1], [1e-3], [1e3]],
    elu: [[1], [1e-3], [1e3]],
    celu: [[1], [1e-3], [1e3]],
    smooth_relu: [[400], [1e-3], [1e3]],
    prelu: [[0], [1e-3], [1e3]],
    pssilu: [[1, 1e-8], [1e-3, 1e-8], [1e3, 0.5]],
  };

  for (const kind of ACTIVATION_KINDS) {
    it(`${kind}: f, df, dp finite`, () => {
      const def = ACTIVATIONS[kind];
      for (const p of [def.defaults, ...(extremeParams[kind] ?? [])]) {
        for (const x of EXTREMES) {
          const vals = [def.f(x, p), def.df(x, p), ...def.dp(x, p)];
          for (const v of vals) expect(Number.isFinite(v), `${kind} x=${x} p=[${p}]`).toBe(true);
        }
      }
    });
  }

  it('limits', () => {
    const A = ACTIVATIONS;
    for (const k of ['softplus', 'silu', 'gelu', 'gelu_tanh', 'smooth_relu'] as const) {
      const p = A[k].defaults;
      expect(A[k].f(1e30, p), k).toBe(1e30);
      expect(A[k].df(1e30, p), k).toBe(1);
      expect(Math.abs(A[k].f(-1e30, p)), k).toBe(0);
      expect(A[k].df(-1e30, p), k).toBe(0);
    }
    expect(A.elu.f(-1e30, [2])).toBe(-2);
    expect(A.celu.f(-1e30, [2])).toBe(-2);
    expect(A.celu.dp(-1e30, [2])[0]).toBe(-1);
    expect(A.softplus.dp(-1e30, [2])[0]).toBe(-0);
    expect(A.pssilu.f(-1e30, [1, 0.5])).toBe(1e30); // -b x/(1-b)
    expect(A.pssilu.f(-100, [1, 1e-8])).toBeGreaterThan(0); // positive on negative inputs
    expect(A.silu.dp(1e30, [1])[0]).toBe(0);
    expect(A.gelu_tanh.df(-400, [])).toBe(0);
  });
});

describe('reference_math', () => {
  it('erf64 against known values', () => {
    const known: [number, number][] = [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [-3, -0.9999779095030014],
      [1e-10, 1.1283791670955126e-10],
    ];
    // within 2 ulp
    for (const [x, v] of known) expect(Math.abs(erf64(x) - v) / Math.abs(v), `erf(${x})`).toBeLessThan(4.5e-16);
    expect(erf64(0)).toBe(0);
    expect(erf64(10)).toBe(1);
    expect(erf64(-1e30)).toBe(-1);
  });

  it('erfc64 against known values, relative accuracy in the tail', () => {
    const known: [number, number][] = [
      [0.25, 0.7236736098317631],
      [1, 0.15729920705028513],
      [2, 0.004677734981047266],
      [3, 2.209049699858544e-5],
      [5, 1.537459794428035e-12],
      [10, 2.088487583762545e-45],
      [20, 5.395865611607901e-176],
    ];
    for (const [x, v] of known) expect(Math.abs(erfc64(x) - v) / v, `erfc(${x})`).toBeLessThan(5e-15);
    expect(erfc64(-2)).toBeCloseTo(2 - 0.004677734981047266, 15);
  });

  it('erf64 agrees with an independent quadrature of 2/sqrt(pi) exp(-t^2)', () => {
    // composite Simpson on [0, x] with 4000 panels: error ~1e-15 here
    const simpson = (x: number) => {
      const n = 4000;
      const h = x / n;
      let s = 1 + Math.exp(-x * x);
      for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-(i * h) * (i * h));
      return ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
    };
    let m = 0;
    for (let x = 0.05; x < 6; x += 0.0917) m = Math.max(m, Math.abs(erf64(x) - simpson(x)));
    expect(m).toBeLessThan(1e-14);
    for (let x = -5; x <= 5; x += 0.173) {
      expect(erf64(-x)).toBe(-erf64(x));
      expect(Math.abs(erf64(x) + erfc64(x) - 1)).toBeLessThan(2e-15);
    }
  });

  it('stable helpers', () => {
    expect(sigmoid64(1000)).toBe(1);
    expect(sigmoid64(-1000)).toBe(0);
    expect(sigmoid64(0)).toBe(0.5);
    expect(softplus64(1000)).toBe(1000);
    expect(softplus64(-1000)).toBe(0);
    expect(softplus64(0)).toBe(Math.LN2);
    expect(normalCdf64(-1e30)).toBe(0);
    expect(normalCdf64(0)).toBe(0.5);
    // normal tail, relative: Phi(-10) = 7.619853024160527e-24
    expect(Math.abs(normalCdf64(-10) / 7.619853024160527e-24 - 1)).toBeLessThan(1e-14);
    // Taylor series, 12 terms: u - log1p(u) = sum_{k>=2} (-1)^k u^k/k and
    // e^y - 1 - y e^y = -sum_{k>=2} (k-1) y^k/k!
    const xml = (u: number) => {
      let s = 0;
      for (let k = 13; k >= 2; k--) s += ((k % 2 ? -1 : 1) * u ** k) / k;
      return s;
    };
    const emx = (y: number) => {
      let s = 0;
      let fact = 1;
      for (let k = 2; k <= 14; k++) {
        fact *= k;
        s -= ((k - 1) * y ** k) / fact;
      }
      return s;
    };
    for (const u of [1e-9, 1e-5, 1e-3, 0.05]) {
      expect(Math.abs(xMinusLog1p64(u) / xml(u) - 1), `u=${u}`).toBeLessThan(1e-14);
    }
    for (const y of [-1e-9, -1e-5, -1e-3, -0.05]) {
      expect(Math.abs(expm1MinusXExp64(y) / emx(y) - 1), `y=${y}`).toBeLessThan(1e-14);
    }
    for (const u of [0.5, 0.999, 1, 1.001, 3, 1e6]) {
      expect(Math.abs(xMinusLog1p64(u) - (u - Math.log1p(u))) / (u - Math.log1p(u))).toBeLessThan(1e-13);
    }
    for (const y of [-0.5, -0.999, -1, -1.001, -3, -50]) {
      const direct = Math.exp(y) * (1 - y) - 1;
      expect(Math.abs(expm1MinusXExp64(y) - direct) / Math.abs(direct)).toBeLessThan(1e-13);
    }
  });
});

describe('activation table API and WGSL shape', () => {
  it('kinds, defaults and params are consistent', () => {
    expect(Object.keys(ACTIVATIONS).sort()).toEqual([...ACTIVATION_KINDS].sort());
    for (const kind of ACTIVATION_KINDS) {
      const def = activationDef(kind);
      expect(def.kind).toBe(kind);
      expect(def.defaults.length).toBe(def.paramNames.length);
      expect(def.paramNames.length).toBeLessThanOrEqual(2);
    }
    expect(ACTIVATIONS.smooth_relu.defaults).toEqual([400]);
    expect(ACTIVATIONS.pssilu.defaults).toEqual([1, 1e-8]);
    expect(ACTIVATIONS.prelu.defaults).toEqual([0]);
    const learnable = ACTIVATION_KINDS.filter((k) => ACTIVATIONS[k].learnable).sort();
    expect(learnable).toEqual(['prelu', 'psoftplus', 'pssilu', 'smooth_relu']);
  });

  it('constraints and domains live in the table: activationConstraint, constrain/unconstrain, paramDomainError', () => {
    expect(activationConstraint('smooth_relu', 'a')).toBe('square'); // SAT: a = w^2
    expect(activationConstraint('prelu', 0)).toBe('none'); // PAF init 0: abs would freeze it
    expect(activationConstraint('pssilu', 'b')).toBe('abs');
    for (const kind of ACTIVATION_KINDS) {
      ACTIVATIONS[kind].params.forEach((q, i) => {
        expect(activationConstraint(kind, i)).toBe(q.constraint);
        expect(activationConstraint(kind, q.name)).toBe(q.constraint);
        // every default is inside its domain and reachable from a raw value
        expect(paramDomainError(q, q.init), `${kind}.${q.name}`).toBeNull();
        expect(constrain(q.constraint, unconstrain(q.constraint, q.init))).toBeCloseTo(q.init, 12);
      });
    }
    expect(() => activationConstraint('pssilu', 'c')).toThrow(/pssilu has no parameter "c"; its parameters: \[a, b\]/);
    expect(() => activationConstraint('relu', 0)).toThrow(/relu has no parameter 0/);
    expect(() => activationConstraint('swishh', 0)).toThrow(/unknown activation kind "swishh"/);
    expect(constrain('abs', -2)).toBe(2);
    expect(constrain('square', -3)).toBe(9);
    expect(constrain('none', -2)).toBe(-2);
    expect(unconstrain('square', 400)).toBe(20);
    expect(() => unconstrain('abs', -1)).toThrow(/cannot start at -1 \(must be >= 0\)/);
    expect(paramDomainError(ACTIVATIONS.softplus.params[0]!, 0)).toBe('> 0 (f divides by a)');
    expect(paramDomainError(ACTIVATIONS.pssilu.params[1]!, 1)).toBe('< 1 (f divides by 1 - b)');
    expect(paramDomainError(ACTIVATIONS.pssilu.params[1]!, 0.5)).toBeNull();
  });

  it('activationDef names the bad kind and lists the valid ones', () => {
    expect(() => activationDef('swishh')).toThrow(/"swishh".*relu, softplus.*pssilu/);
    expect(() => activationDef('toString')).toThrow(/toString/);
  });

  it('WGSL snippets define the three functions and never call raw exp/tanh', () => {
    for (const kind of ACTIVATION_KINDS) {
      const src = ACTIVATIONS[kind].wgsl('act_0');
      expect(src).toContain('fn act_0_f(x: f32, p: vec2<f32>) -> f32');
      expect(src).toContain('fn act_0_df(x: f32, p: vec2<f32>) -> f32');
      expect(src).toContain('fn act_0_dp(x: f32, p: vec2<f32>) -> vec2<f32>');
      expect(src, kind).not.toMatch(/(^|[^A-Za-z0-9_])(exp|tanh|exp2)\(/);
    }
    expect(() => ACTIVATIONS.relu.wgsl('1bad')).toThrow(/not a valid WGSL identifier/);
    expect(() => ACTIVATIONS.relu.wgsl('__x')).toThrow(/not a valid WGSL identifier/);
  });
});
