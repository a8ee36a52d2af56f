// FAB's projection (Croce & Hein 2020, Section 3): per row of M examples, the smallest
// L-inf or L2 step d with  w.d = -c  and  p + d in the box [lo, hi]^D,  where c is the value
// of the hyperplane's function at p (the hyperplane {z : w.z + b = 0} has c = w.p + b).
// One workgroup per row; every reduction over D is done inside the workgroup.
//
// Method (docs/autoattack.md, "The projection"). With r = -c, sigma = sign(r), v = sigma w / m
// (m = max|w_i|, so |v_i| <= 1), a_i = |v_i| and cap_i the room from p_i to the box in the
// favourable direction sign(v_i), every optimal step moves each coordinate that way only:
//   d_i = sign(v_i) min(lambda s_i, cap_i),  s_i = 1 (L-inf) or a_i (L2),
// with lambda >= 0 the smallest root of the nondecreasing  h(lambda) = sum_i a_i min(lambda s_i, cap_i) = |r| / m.
// lambda is found by bisection over the bit patterns of the nonnegative floats in
// [0, Lambda], Lambda = max_i cap_i / s_i (monotone in their bits): 32 halvings end on
// adjacent floats, so lambda is exact to one ulp up to the rounding of the sums.
// Infeasible rows (h(Lambda) < |r|: the hyperplane does not meet the box) end at lambda =
// Lambda, i.e. d_i = sign(v_i) cap_i: the box corner nearest the hyperplane (smallest
// residual), with zero-weight coordinates left at 0. Rows with c = 0 or w = 0 get d = 0.
// NOTE: coordinates with a_i <= 1e-20 (relative to the largest |w_i|) count as zero
// weights: it keeps cap_i / a_i finite (the op limits hi - lo to 1e15, so Lambda <= 1e35).
// NOTE: no branch depends on a value read from workgroup memory (degenerate rows are
// masked with select), so every barrier sits in uniform control flow.
import { defineKernel, reads, writes } from './kernel.ts';

export const FAB_PROJ_WG = 128;
/** Relative weight below which a coordinate is treated as zero weight. */
export const FAB_PROJ_TINY = 1e-20;

export type FabProjNorm = 'linf' | 'l2';

function fabProjectionWgsl(norm: FabProjNorm): string {
  const WG = FAB_PROJ_WG;
  const slope = norm === 'linf' ? '1.0' : 'a';
  return `// fab_projection_${norm} (workgroup per row)
struct U { M: u32, D: u32, gx: u32, pad: u32, lo: f32, hi: f32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> d: array<f32>;
var<workgroup> red: array<f32, ${WG}>;

fn wg_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let o = red[lid + s];
      red[lid] = select(red[lid] + o, max(red[lid], o), is_max);
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// Per coordinate: (a, cap, sgn) of the normalized weight; a = 0 marks an inactive coordinate.
struct Coord { a: f32, cap: f32, sgn: f32 };
fn coord(i: u32, sigma: f32, inv_m: f32) -> Coord {
  let v = sigma * w[i] * inv_m;
  var a = abs(v);
  a = select(a, 0.0, a <= ${FAB_PROJ_TINY});
  let up = v > 0.0;
  let cap = select(max(p[i] - u.lo, 0.0), max(u.hi - p[i], 0.0), up);
  return Coord(a, cap, select(-1.0, 1.0, up));
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * u.gx;
  if (row >= u.M) { return; }
  let base = row * u.D;
  // 1. m = max |w_i|.
  var pm = 0.0;
  for (var i = lid; i < u.D; i += ${WG}u) { pm = max(pm, abs(w[base + i])); }
  let m = wg_reduce(lid, pm, true);
  let r = -c[row];
  let degenerate = m == 0.0 || r == 0.0;
  let inv_m = select(1.0 / m, 0.0, degenerate);
  let sigma = select(-1.0, 1.0, r > 0.0);
  let goal = abs(r) * inv_m;
  // 2. Lambda = max over active coordinates of the breakpoint cap_i / s_i.
  var pl = 0.0;
  for (var i = lid; i < u.D; i += ${WG}u) {
    let k = coord(base + i, sigma, inv_m);
    let a = k.a;
    if (a > 0.0) { pl = max(pl, k.cap / ${slope}); }
  }
  let big = wg_reduce(lid, pl, true);
  // 3. Bisection on the bits: h(lo) < target <= h(hi) (or hi = Lambda).
  var lo_b = 0u;
  var hi_b = bitcast<u32>(big);
  for (var it = 0u; it < 32u; it++) {
    let mid = lo_b + (hi_b - lo_b) / 2u;
    let lam = bitcast<f32>(mid);
    var ph = 0.0;
    for (var i = lid; i < u.D; i += ${WG}u) {
      let k = coord(base + i, sigma, inv_m);
      let a = k.a;
      ph += a * min(lam * ${slope}, k.cap);
    }
    let h = wg_reduce(lid, ph, false);
    let up = h >= goal;
    hi_b = select(hi_b, mid, up);
    lo_b = select(mid, lo_b, up);
  }
  let lam = bitcast<f32>(hi_b);
  // 4. The step.
  for (var i = lid; i < u.D; i += ${WG}u) {
    let k = coord(base + i, sigma, inv_m);
    let a = k.a;
    let di = k.sgn * min(lam * ${slope}, k.cap);
    d[base + i] = select(di, 0.0, degenerate || a == 0.0);
  }
}
`;
}

const B = [...reads('p', 'w', 'c'), ...writes('d')];

/** Descriptor: the box-constrained projection onto a hyperplane, per row (L-inf or L2). */
export const fabProjectionKernel = defineKernel<{ norm: FabProjNorm }>({
  name: 'fab_projection',
  label: (p) => `fab_projection_${p.norm}`,
  key: (p) => p.norm,
  bindings: () => B,
  build: (p) => fabProjectionWgsl(p.norm),
});
