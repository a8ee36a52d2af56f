// The DLR loss (difference of logits ratio, Croce & Hein 2020) and its targeted variant,
// forward and backward, one thread per row of the logits [N, C]:
//   untargeted  L = -(z_y - max_{i != y} z_i) / (z_(1) - z_(3) + 1e-12)
//   targeted    L = -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12)
// where z_(k) is the k-th largest logit of the row. Attacks maximise L (docs/autoattack.md).
// The backward recomputes the order statistics and writes the whole gradient row.
// NOTE: ties are broken towards the lower class index (a strict > keeps the earlier entry
// ranked first), so the subgradient chosen at a tie is deterministic. Rows with too few
// classes are rejected on the host (C >= 3 untargeted, C >= 4 targeted).
// NOTE: the denominator's gap goes through max(gap, 0) before the 1e-12 is added: without
// it llvmpipe's fast math reassociated (z1 - z3) + 1e-12 into z1 + (1e-12 - z3), which
// loses the 1e-12 and gave 0/0 = NaN on tied rows (measured). The gap is >= 0 anyway.
import { defineKernel, reads, writes } from './kernel.ts';
import { gridMain } from './wgsl_grid.ts';

export const DLR_WG = 64;

/** Uniforms: N, C, gx, scale (backward: dy scale; unused forward). */
const HEAD = `struct U { N: u32, C: u32, gx: u32, scale: f32 };
@group(0) @binding(0) var<uniform> u: U;`;

// Top-4 values and indices of row `row` (v0 >= v1 >= v2 >= v3), and the best class other than y.
const ORDER = `  let base = row * u.C;
  let yc = u32(y[row]);
  var v = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var k = array<u32, 4>(0u, 0u, 0u, 0u);
  var mo = 0.0; var mi = 0u; var seen = false; var n = 0u;
  for (var c = 0u; c < u.C; c++) {
    let z = logits[base + c];
    if (c != yc && (!seen || z > mo)) { mo = z; mi = c; seen = true; }
    let filled = min(n, 4u);
    var p = filled;
    for (var j = 0u; j < filled; j++) { if (z > v[j]) { p = j; break; } }
    if (p < 4u) {
      for (var j = 3u; j > p; j--) { v[j] = v[j - 1u]; k[j] = k[j - 1u]; }
      v[p] = z; k[p] = c;
    }
    n++;
  }
  let zy = logits[base + yc];`;

function body(targeted: boolean): string {
  return targeted
    ? `  let tc = u32(t[row]);
  let num = -(zy - logits[base + tc]);
  let den = max(v[0] - 0.5 * (v[2] + v[3]), 0.0) + 1e-12;`
    : `  let num = -(zy - mo);
  let den = max(v[0] - v[2], 0.0) + 1e-12;`;
}

function bindingsWgsl(targeted: boolean, backward: boolean): string {
  const b: string[] = ['@group(0) @binding(1) var<storage, read> logits: array<f32>;', '@group(0) @binding(2) var<storage, read> y: array<i32>;'];
  let i = 3;
  if (targeted) b.push(`@group(0) @binding(${i++}) var<storage, read> t: array<i32>;`);
  if (backward) {
    b.push(`@group(0) @binding(${i++}) var<storage, read> dy: array<f32>;`);
    b.push(`@group(0) @binding(${i++}) var<storage, read_write> dx: array<f32>;`);
  } else b.push(`@group(0) @binding(${i++}) var<storage, read_write> loss: array<f32>;`);
  return b.join('\n');
}

function dlrWgsl(p: { targeted: boolean; backward: boolean }): string {
  const { targeted, backward } = p;
  // d(num/den) = dnum/den - num/den^2 * dden
  const grad = targeted
    ? `  dx[base + yc] += -g / den;
  dx[base + tc] += g / den;
  let q = g * num / (den * den);
  dx[base + k[0]] += -q;
  dx[base + k[2]] += 0.5 * q;
  dx[base + k[3]] += 0.5 * q;`
    : `  dx[base + yc] += -g / den;
  dx[base + mi] += g / den;
  let q = g * num / (den * den);
  dx[base + k[0]] += -q;
  dx[base + k[2]] += q;`;
  const tail = backward
    ? `  let g = dy[row] * u.scale;
  for (var c = 0u; c < u.C; c++) { dx[base + c] = 0.0; }
${grad}`
    : `  loss[row] = num / den;`;
  return `// dlr${targeted ? '_targeted' : ''}${backward ? '_backward' : ''} (thread per row)
${HEAD}
${bindingsWgsl(targeted, backward)}
${gridMain(DLR_WG, 'row', 'u.N')}
${ORDER}
${body(targeted)}
${tail}
}
`;
}

/** Descriptor: DLR loss forward ([N] losses) or backward (dlogits from dy [N]). */
export const dlrKernel = defineKernel<{ targeted: boolean; backward: boolean }>({
  name: 'dlr_loss',
  label: (p) => `dlr${p.targeted ? '_targeted' : ''}${p.backward ? '_backward' : ''}`,
  key: (p) => `${p.targeted ? 't' : 'u'}${p.backward ? 'b' : 'f'}`,
  bindings: (p) => [...reads('logits', 'y'), ...(p.targeted ? reads('t') : []), ...(p.backward ? [...reads('dy'), ...writes('dx')] : writes('loss'))],
  build: dlrWgsl,
});

/**
 * Per row of [N, C], the class ranked `k` (1 = largest) with ties towards the lower index:
 * the rank of class c is 1 + #{c' : z_c' > z_c or (z_c' == z_c and c' < c)}. O(C^2) per
 * row, for the small class counts of targeted attacks. Uniforms: N, C, gx, k (as u32).
 */
export const rankClassKernel = defineKernel<Record<string, never>>({
  name: 'rank_class',
  key: () => '',
  bindings: () => [...reads('logits'), ...writes('out')],
  build: () => `// rank_class (thread per row)
struct U { N: u32, C: u32, gx: u32, k: u32 };
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
${gridMain(DLR_WG, 'row', 'u.N')}
  let base = row * u.C;
  var found = 0u;
  for (var c = 0u; c < u.C; c++) {
    let z = logits[base + c];
    var rank = 1u;
    for (var d = 0u; d < u.C; d++) {
      let w = logits[base + d];
      if (w > z || (w == z && d < c)) { rank++; }
    }
    if (rank == u.k) { found = c; }
  }
  out[row] = i32(found);
}
`,
});
