// Host-side geometry of the Square attack (adversarial/attacks/square_geometry.ts): the
// published p schedule at its breakpoints, the square sides, and the window patterns
// against a direct construction from their definition (nested rectangles of weight
// 1/(r+1)^2, accumulated one rectangle at a time here). No GPU.
import { describe, expect, it } from 'vitest';
import { etaRectangle, etaWindow, l2Side, linfSide, placeWindow, squareP } from '../../../adversarial/attacks/square_geometry.ts';

/** The definition, rectangle by rectangle: for r = 0.. add 1/(r+1)^2 on rows c0-r..c0+r, cols c1-r..c1+r (clipped). */
function rectangles(a: number, b: number): number[] {
  const out = new Array<number>(a * b).fill(0);
  const c0 = Math.floor(a / 2), c1 = Math.floor(b / 2);
  for (let r = 0; r < Math.max(c0, c1) + 1; r++) {
    for (let i = Math.max(c0 - r, 0); i < Math.min(c0 - r + 2 * r + 1, a); i++) {
      for (let j = Math.max(c1 - r, 0); j < Math.min(c1 - r + 2 * r + 1, b); j++) out[i * b + j]! += 1 / (r + 1) ** 2;
    }
  }
  const n = Math.hypot(...out);
  return out.map((v) => v / n);
}

describe('Square geometry', () => {
  it('p follows the published schedule (halving after 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)', () => {
    const p = 0.8;
    const want: [number, number][] = [[0, 1], [10, 1], [11, 2], [50, 2], [51, 4], [200, 4], [201, 8], [500, 8], [501, 16], [1000, 16], [1001, 32], [2001, 64], [4000, 64], [4001, 128], [6001, 256], [8000, 256], [8001, 512], [9999, 512]];
    for (const [it, div] of want) expect(squareP(p, it, 10000, false), `it ${it}`).toBe(p / div);
    // Unscaled with 5000 queries (AutoAttack standard): the last stage reached is p / 128.
    expect(squareP(p, 4999, 5000, false)).toBe(p / 128);
    // Rescaled: iteration it of 5000 reads the schedule at floor(it * 2).
    expect(squareP(p, 2500, 5000, true)).toBe(p / 128); // 5000 -> (4000, 6000]
    expect(squareP(p, 4001, 5000, true)).toBe(p / 512); // 8002
    expect(squareP(p, 5, 5000, true)).toBe(p); // 10
    expect(squareP(p, 6, 5000, true)).toBe(p / 2); // 12
  });

  it('square sides: L-inf round(sqrt(p H W)) in [1, min(H, W)]; L2 at least 3 and odd', () => {
    expect(linfSide(0.8, 28, 28)).toBe(25); // sqrt(627.2) = 25.04
    expect(linfSide(0.8 / 512, 28, 28)).toBe(1);
    expect(linfSide(0.8, 32, 32)).toBe(29); // sqrt(819.2) = 28.6
    expect(linfSide(1, 3, 9)).toBe(3); // clipped to min(H, W)
    expect(l2Side(0.8, 28, 28)).toBe(25);
    expect(l2Side(0.05, 28, 28)).toBe(7); // sqrt(39.2) = 6.26 -> 6 -> odd 7
    expect(l2Side(0.001, 28, 28)).toBe(3);
    expect(l2Side(0.8, 2, 2)).toBe(2);
  });

  it('etaRectangle matches the nested-rectangle definition; etaWindow is +top / -bottom with unit norm', () => {
    for (const [a, b] of [[1, 1], [1, 3], [2, 3], [3, 3], [4, 7], [7, 4], [5, 5]] as const) {
      const got = etaRectangle(a, b);
      const want = rectangles(a, b);
      for (let k = 0; k < a * b; k++) expect(got[k]).toBeCloseTo(want[k]!, 14);
    }
    expect(etaRectangle(0, 3).length).toBe(0);
    for (const s of [1, 3, 4, 7]) {
      const w = etaWindow(s, false);
      const top = rectangles(Math.floor(s / 2), s);
      const bot = rectangles(s - Math.floor(s / 2), s).map((v) => -v);
      const raw = [...top, ...bot];
      const n = Math.hypot(...raw);
      for (let k = 0; k < s * s; k++) expect(w[k]).toBeCloseTo(raw[k]! / n, 14);
      const t = etaWindow(s, true);
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) expect(t[j * s + i]).toBe(w[i * s + j]);
    }
  });

  it('placeWindow writes the pattern (or ones) at the window and zeros elsewhere', () => {
    const m = placeWindow(4, 5, 2, 1, 3, null);
    const want = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0];
    expect(Array.from(m)).toEqual(want);
    const p = placeWindow(3, 3, 2, 1, 1, Float64Array.of(1, 2, 3, 4));
    expect(Array.from(p)).toEqual([0, 0, 0, 0, 1, 2, 0, 3, 4]);
  });
});
