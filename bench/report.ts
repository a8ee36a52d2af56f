// Suite results: the JSON document written to bench/results/, the peer summary (our speed
// against TF.js and PyTorch per case) and the markdown report with SVG charts (bench/svg.ts):
// kinkless speedup over TF.js per case, speedup over PyTorch CPU, the fraction of the copy
// kernel's bandwidth reached by the elementwise / activation cases, and the end-to-end
// throughput (images/s) of the training steps and the attack.
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { barChart } from './svg.ts';
import type { BenchRow } from './harness.ts';

export interface BenchResult {
  date: string;
  adapter: string;
  adapterInfo: Record<string, unknown>;
  features: string[];
  limits: Record<string, number>;
  versions: { node: string; webgpu: string; kinkless: string; tfjs: string | null; tfjsBackendWebgpu: string | null; torch: string | null };
  commit: { sha: string | null; dirty: boolean };
  options: { quick: boolean; filter: string | null; wall: boolean };
  totalSeconds: number;
  rows: BenchRow[];
  /** Cases that threw, and peers that could not run. */
  errors: string[];
  notes: string[];
}

export interface PeerLine {
  group: string;
  oursMs: number;
  /** Peer name -> median ms. */
  peers: Record<string, number>;
  /** Peer name -> peer median / our median (> 1: we are faster). */
  speedup: Record<string, number>;
}

const isPeerGroup = (g: string) => g.startsWith('peer ') || g.startsWith('e2e ');

/** Per peer/e2e group: our median and each peer's, and our speedup over each. */
export function peerSummary(rows: BenchRow[]): PeerLine[] {
  const out: PeerLine[] = [];
  const groups = [...new Set(rows.filter((r) => isPeerGroup(r.group)).map((r) => r.group))].sort((a, b) => Number(a.startsWith('e2e ')) - Number(b.startsWith('e2e ')));
  for (const g of groups) {
    const rs = rows.filter((r) => r.group === g);
    const ours = rs.find((r) => (r.impl ?? 'kinkless') === 'kinkless');
    const others = rs.filter((r) => r !== ours && r.impl && r.impl !== 'kinkless');
    if (!ours || !others.length) continue;
    const line: PeerLine = { group: g, oursMs: ours.median_ms, peers: {}, speedup: {} };
    for (const o of others) {
      line.peers[o.name] = o.median_ms;
      line.speedup[o.name] = o.median_ms / ours.median_ms;
    }
    out.push(line);
  }
  return out;
}

/** Aligned text table of the peer summary. */
export function formatPeerSummary(lines: PeerLine[]): string {
  if (!lines.length) return '(no peer results)';
  const peers = [...new Set(lines.flatMap((l) => Object.keys(l.peers)))];
  const head = ['case', 'kinkless ms', ...peers.flatMap((p) => [`${p} ms`, `speedup vs ${p}`])];
  const body = lines.map((l) => [l.group, l.oursMs.toFixed(2), ...peers.flatMap((p) => (l.peers[p] === undefined ? ['', ''] : [l.peers[p]!.toFixed(2), `${l.speedup[p]!.toFixed(2)}x`]))]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (c: string[]) => c.map((s, i) => (i ? s.padStart(w[i]!) : s.padEnd(w[i]!))).join('  ');
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(fmt)].join('\n');
}

/** Short axis labels for the charts. */
export function shortLabel(group: string): string {
  return group
    .replace(/^peer /, '')
    .replace(/^e2e /, '')
    .replace(/ N\d+ 32x32 64->64 3x3$/, '')
    .replace(/ step b\d+$/, ' step')
    .replace(/ attack (\d+) images$/, ' ($1 img)')
    .replace(/ fwd (\d+M)$/, ' $1')
    .replace(/^matmul /, 'mm ');
}

function md(rows: string[][]): string {
  return [`| ${rows[0]!.join(' | ')} |`, `|${rows[0]!.map(() => '---').join('|')}|`, ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const f2 = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '' : x.toFixed(d));

/**
 * Split the x tick labels of a bench/svg.ts bar chart over two lines (at the space nearest
 * the middle) when longer than `max` characters: the chart centres one label per category
 * in a slot of ~60 px, and long ones ran into each other.
 */
export function wrapTickLabels(svg: string, max = 9): string {
  return svg.replace(/<text x="([\d.]+)" y="([\d.]+)" text-anchor="middle" font-size="11">([^<]*)<\/text>/g, (all, x: string, y: string, label: string) => {
    if (label.length <= max || !label.includes(' ')) return all;
    const spaces = [...label.matchAll(/ /g)].map((m) => m.index!);
    const cut = spaces.reduce((best, i) => (Math.abs(i - label.length / 2) < Math.abs(best - label.length / 2) ? i : best));
    const [a, b] = [label.slice(0, cut), label.slice(cut + 1)];
    return `<text x="${x}" y="${y}" text-anchor="middle" font-size="11"><tspan x="${x}">${a}</tspan><tspan x="${x}" dy="12">${b}</tspan></text>`;
  });
}

export interface Chart {
  file: string;
  title: string;
  svg: string;
}

/** The report's charts (empty when the rows lack what a chart needs). */
export function reportCharts(res: BenchResult, stem: string): Chart[] {
  const charts: Chart[] = [];
  const summary = peerSummary(res.rows);
  const tfLines = summary.filter((l) => l.speedup['tfjs webgpu'] !== undefined);
  if (tfLines.length) {
    charts.push({
      file: `${stem}-vs-tfjs.svg`,
      title: 'kinkless speedup over TF.js (same adapter)',
      svg: barChart({
        title: 'kinkless speedup over TF.js webgpu (same adapter, wall clock)',
        yLabel: 'TF.js time / kinkless time (>1: kinkless faster)',
        categories: tfLines.map((l) => shortLabel(l.group)),
        series: [{ name: 'vs TF.js webgpu', values: tfLines.map((l) => l.speedup['tfjs webgpu']!) }],
        note: 'Each bar: one case measured pairwise in the same run; 1 = parity.',
      }),
    });
  }
  const torchNames = [...new Set(summary.flatMap((l) => Object.keys(l.speedup).filter((k) => k.startsWith('torch'))))].sort();
  const torchLines = summary.filter((l) => torchNames.some((n) => l.speedup[n] !== undefined));
  if (torchLines.length) {
    // NOTE: log scale: the ratios span 0.01 .. 10 and a linear axis hides the small ones.
    charts.push({
      file: `${stem}-vs-torch.svg`,
      title: 'kinkless speedup over PyTorch CPU (log10)',
      svg: barChart({
        title: 'kinkless (GPU adapter) against PyTorch on the CPU',
        yLabel: 'log10(PyTorch time / kinkless time)',
        categories: torchLines.map((l) => shortLabel(l.group)),
        series: torchNames.map((n) => ({ name: n.replace('torch cpu', 'PyTorch'), values: torchLines.map((l) => Math.log10(l.speedup[n] ?? NaN)) })),
        note: '0 = parity; +1 = kinkless 10x faster; -1 = PyTorch 10x faster.',
      }),
    });
  }
  // Fraction of the copy roofline: the kernel benches (GPU timestamps) ...
  const roof = res.rows.filter((r) => r.baseline?.startsWith('copy') && r.ratio !== undefined && !/copyBufferToBuffer/.test(r.name) && !/composed/.test(r.name));
  if (roof.length) {
    charts.push({
      file: `${stem}-copy-roofline.svg`,
      title: 'fraction of the copy kernel bandwidth (elementwise and fused activations)',
      svg: barChart({
        title: 'Fraction of copy-kernel bandwidth (GPU timestamps)',
        yLabel: 'GB/s / copy kernel GB/s',
        categories: roof.map((r) => r.name.replace(/ fused/, '').replace(/ \(dx \+ da, db\)/, '+p')),
        series: [{ name: 'kinkless', values: roof.map((r) => r.ratio!) }],
        note: 'bytes = minimal traffic: 4 per float read or written.',
      }),
    });
  }
  // ... and the peer cases against our copy kernel timed the same way (wall clock).
  const copy = res.rows.find((r) => r.group.startsWith('peer copy') && r.gbps !== undefined);
  const ewGroups = [...new Set(res.rows.filter((r) => /^peer (relu|silu|gelu)/.test(r.group) && r.gbps !== undefined).map((r) => r.group))];
  if (copy && ewGroups.length) {
    // The GPU rows only: the copy kernel is this adapter's roofline, not the CPU's.
    const series = ['kinkless', 'tfjs webgpu']
      .map((name) => ({ name, values: ewGroups.map((g) => (res.rows.find((r) => r.group === g && r.name === name)?.gbps ?? NaN) / copy.gbps!) }))
      .filter((s) => s.values.some(Number.isFinite));
    charts.push({
      file: `${stem}-peer-roofline.svg`,
      title: 'activations on the adapter as a fraction of our copy kernel (kinkless and TF.js)',
      svg: barChart({
        title: `Activations vs the ${copy.group.replace('peer ', '')} kernel (wall clock)`,
        yLabel: 'GB/s / copy kernel GB/s',
        categories: ewGroups.map(shortLabel),
        series,
        note: `copy kernel: ${f2(copy.gbps)} GB/s (wall clock, same adapter); bytes = 4 per float read or written.`,
      }),
    });
  }
  const e2e = [...new Set(res.rows.filter((r) => r.group.startsWith('e2e ') && r.items_per_s !== undefined).map((r) => r.group))];
  if (e2e.length) {
    const ips = (g: string, name: string) => res.rows.find((r) => r.group === g && r.name === name)?.items_per_s ?? NaN;
    // PyTorch's CPU figures dwarf the GPU bars on a software adapter: they go in the note.
    const series = ['kinkless', 'tfjs webgpu'].map((name) => ({ name, values: e2e.map((g) => ips(g, name)) })).filter((s) => s.values.some(Number.isFinite));
    const torchNote = torchNames.map((n) => `${n.replace('torch cpu', 'PyTorch')}: ${e2e.map((g) => f2(ips(g, n), 0) || '-').join(' / ')}`).join('; ');
    charts.push({
      file: `${stem}-e2e.svg`,
      title: 'end-to-end throughput (images/s) on the adapter',
      svg: barChart({
        title: 'Small MNIST CNN: images per second (batch 128)',
        yLabel: 'images / s',
        categories: e2e.map(shortLabel),
        series,
        note: torchNote ? `${torchNote} images/s` : 'PGD-20: images attacked per second.',
      }),
    });
  }
  return charts;
}

/** Markdown report next to the JSON: environment, peer summary, charts, every row. Returns the paths written. */
export function writeReport(res: BenchResult, mdPath: string): string[] {
  const dir = mdPath.slice(0, mdPath.length - basename(mdPath).length) || '.';
  const stem = basename(mdPath).replace(/\.md$/, '');
  const charts = reportCharts(res, stem);
  const written: string[] = [];
  for (const c of charts) {
    writeFileSync(join(dir, c.file), wrapTickLabels(c.svg));
    written.push(join(dir, c.file));
  }
  const v = res.versions;
  const out: string[] = [];
  out.push(`# kinkless benchmark: ${res.date}, ${res.adapter}`, '');
  out.push(
    `- adapter: ${res.adapter} (${JSON.stringify(res.adapterInfo)})`,
    `- versions: node ${v.node}, webgpu ${v.webgpu}, kinkless ${v.kinkless}, TF.js ${v.tfjs ?? 'not run'}${v.tfjsBackendWebgpu ? ` (backend-webgpu ${v.tfjsBackendWebgpu})` : ''}, PyTorch ${v.torch ?? 'not run'}`,
    `- commit: ${res.commit.sha ?? 'unknown'}${res.commit.dirty ? ' (with uncommitted changes)' : ''}`,
    `- options: ${res.options.quick ? '--quick ' : ''}${res.options.filter !== null ? `--filter ${res.options.filter} ` : ''}${res.options.wall ? '--wall' : ''}`.trimEnd(),
    `- total time: ${res.totalSeconds.toFixed(1)} s`,
    '',
  );
  out.push(
    'How to read: kernel rows are timed with GPU timestamps where the adapter has them; `peer ...` and `e2e ...` rows by wall clock on each side (TF.js has its own device on the same adapter; PyTorch runs on the CPU in a separate process, after the GPU cases). Speedup = peer time / kinkless time (> 1: kinkless is faster). Noise on lavapipe is about 10-20% run to run: compare within one run.',
    '',
  );
  const summary = peerSummary(res.rows);
  if (summary.length) {
    const peers = [...new Set(summary.flatMap((l) => Object.keys(l.peers)))];
    out.push('## Against the peers', '');
    out.push(md([['case', 'kinkless ms', ...peers.flatMap((p) => [`${p} ms`, `speedup vs ${p}`])], ...summary.map((l) => [l.group, f2(l.oursMs), ...peers.flatMap((p) => [f2(l.peers[p]), l.speedup[p] === undefined ? '' : `${f2(l.speedup[p])}x`])])]));
    out.push('');
  }
  if (charts.length) {
    out.push('## Charts', '');
    for (const c of charts) out.push(`### ${c.title}`, '', `![${c.title}](${c.file})`, '');
  }
  out.push('## All cases', '');
  out.push(
    md([
      ['group', 'name', 'median ms', 'min ms', 'max ms', 'runs', 'method', 'GFLOP/s', 'GB/s', 'items/s', 'vs baseline'],
      ...res.rows.map((r) => [r.group, r.name, f2(r.median_ms, 3), f2(r.min_ms, 3), f2(r.max_ms, 3), String(r.runs), r.method, f2(r.gflops), f2(r.gbps), f2(r.items_per_s, 1), r.ratio === undefined ? '' : `${f2(r.ratio)}x ${r.baseline}`]),
    ]),
  );
  out.push('');
  if (res.errors.length || res.notes.length) {
    out.push('## Notes', '', ...res.notes.map((n) => `- ${n}`), ...res.errors.map((e) => `- error: ${e}`), '');
  }
  writeFileSync(mdPath, out.join('\n'));
  written.unshift(mdPath);
  return written;
}
