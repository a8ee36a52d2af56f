// Minimal SVG charts (line charts, grouped bar charts, histograms) for reports. Pure
// string generation with axes, ticks, legend and title; no dependencies. Lives in bench/ (bench
// reports use it and bench never imports cli/); cli/svg.ts re-exports it.

export interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
  /** Optional interval [lo, hi] per point, drawn as a vertical whisker (e.g. a 95% CI). */
  intervals?: ([number, number] | null)[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(w = 640, h = 400): Frame {
  return { width: w, height: h, left: 64, right: 170, top: 40, bottom: 52 };
}

function axes(f: Frame, title: string, xLabel: string, yLabel: string, xt: number[], yt: number[], sx: (v: number) => number, sy: (v: number) => number, xTickLabels?: string[]): string {
  const x0 = f.left;
  const x1 = f.width - f.right;
  const y0 = f.height - f.bottom;
  const y1 = f.top;
  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${f.width}" height="${f.height}" fill="white"/>`);
  parts.push(`<text x="${(x0 + x1) / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const t of yt) {
    const y = sy(t);
    parts.push(`<line x1="${x0}" x2="${x1}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  }
  xt.forEach((t, i) => {
    const x = sx(t);
    parts.push(`<line x1="${x}" x2="${x}" y1="${y0}" y2="${y0 + 4}" stroke="#333"/>`);
    parts.push(`<text x="${x}" y="${y0 + 17}" text-anchor="middle" font-size="11">${esc(xTickLabels?.[i] ?? fmt(t))}</text>`);
  });
  parts.push(`<line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#333"/>`);
  parts.push(`<line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}" stroke="#333"/>`);
  parts.push(`<text x="${(x0 + x1) / 2}" y="${f.height - 12}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  return parts.join('\n');
}

function legend(f: Frame, names: string[], kind: 'line' | 'box'): string {
  const x = f.width - f.right + 14;
  return names
    .map((n, i) => {
      const y = f.top + 10 + i * 18;
      const c = COLORS[i % COLORS.length];
      const mark = kind === 'line' ? `<line x1="${x}" x2="${x + 18}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="2.5"/>` : `<rect x="${x}" y="${y - 6}" width="14" height="12" fill="${c}"/>`;
      return `${mark}<text x="${x + 24}" y="${y + 4}" font-size="11">${esc(n)}</text>`;
    })
    .join('\n');
}

function wrap(f: Frame, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" font-family="Helvetica, Arial, sans-serif">\n${body}\n</svg>\n`;
}

export function lineChart(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; yMin?: number; yMax?: number; note?: string }): string {
  const f = frame();
  const pts = opts.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]);
  const ys = [...pts.map((p) => p[1]), ...opts.series.flatMap((s) => (s.intervals ?? []).flatMap((iv) => (iv ? iv.filter(Number.isFinite) : [])))];
  let xlo = xs.length ? Math.min(...xs) : 0;
  let xhi = xs.length ? Math.max(...xs) : 1;
  if (xhi === xlo) xhi = xlo + 1;
  let ylo = opts.yMin ?? (ys.length ? Math.min(...ys) : 0);
  let yhi = opts.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (yhi === ylo) {
    yhi = ylo + 1;
    ylo -= 1;
  }
  const sx = (v: number) => f.left + ((v - xlo) / (xhi - xlo)) * (f.width - f.left - f.right);
  const sy = (v: number) => f.height - f.bottom - ((v - ylo) / (yhi - ylo)) * (f.height - f.top - f.bottom);
  const lines = opts.series.map((s, i) => {
    const d = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const c = COLORS[i % COLORS.length];
    const dots = s.points.length <= 30 ? s.points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${c}"/>`).join('') : '';
    const whiskers = (s.intervals ?? [])
      .map((iv, k) => {
        const x = s.points[k]?.[0];
        if (!iv || x === undefined || !Number.isFinite(x) || !iv.every(Number.isFinite)) return '';
        const X = sx(x).toFixed(1);
        return `<path d="M${X},${sy(iv[0]).toFixed(1)} L${X},${sy(iv[1]).toFixed(1)} M${(sx(x) - 3).toFixed(1)},${sy(iv[0]).toFixed(1)} h6 M${(sx(x) - 3).toFixed(1)},${sy(iv[1]).toFixed(1)} h6" stroke="${c}" stroke-width="1.2" fill="none"/>`;
      })
      .join('');
    return `<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>${dots}${whiskers}`;
  });
  const note = opts.note ? `<text x="${f.left}" y="${f.height - 2}" font-size="10" fill="#555">${esc(opts.note)}</text>` : '';
  return wrap(f, [axes(f, opts.title, opts.xLabel, opts.yLabel, niceTicks(xlo, xhi), niceTicks(ylo, yhi), sx, sy), ...lines, legend(f, opts.series.map((s) => s.name), 'line'), note].join('\n'));
}

/** Grouped bars: one group per category, one bar per series (optional [lo, hi] whisker per bar). */
export function barChart(opts: { title: string; yLabel: string; categories: string[]; series: { name: string; values: number[]; intervals?: ([number, number] | null)[] }[]; note?: string; yMax?: number }): string {
  const f = frame(Math.max(640, 120 + opts.categories.length * 70));
  const vals = opts.series.flatMap((s) => s.values).filter(Number.isFinite);
  const yhi = opts.yMax ?? Math.max(1e-9, ...vals) * 1.1;
  const ylo = Math.min(0, ...vals);
  const plotW = f.width - f.left - f.right;
  const gw = plotW / Math.max(1, opts.categories.length);
  const bw = (gw * 0.8) / Math.max(1, opts.series.length);
  const sy = (v: number) => f.height - f.bottom - ((v - ylo) / (yhi - ylo)) * (f.height - f.top - f.bottom);
  const sx = (i: number) => f.left + gw * (i + 0.5);
  const bars = opts.series.flatMap((s, si) =>
    s.values.map((v, ci) => {
      if (!Number.isFinite(v)) return '';
      const x = f.left + gw * ci + gw * 0.1 + bw * si;
      const y = sy(Math.max(v, 0));
      const h = Math.abs(sy(v) - sy(0));
      const iv = s.intervals?.[ci];
      const xm = x + bw / 2;
      const whisker = iv && iv.every(Number.isFinite) ? `<path d="M${xm.toFixed(1)},${sy(iv[0]).toFixed(1)} L${xm.toFixed(1)},${sy(iv[1]).toFixed(1)} M${(xm - bw / 4).toFixed(1)},${sy(iv[0]).toFixed(1)} h${(bw / 2).toFixed(1)} M${(xm - bw / 4).toFixed(1)},${sy(iv[1]).toFixed(1)} h${(bw / 2).toFixed(1)}" stroke="#222" stroke-width="1.2" fill="none"/>` : '';
      const tip = iv ? ` [${fmt(iv[0])}, ${fmt(iv[1])}]` : '';
      return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s.name} ${opts.categories[ci]}: ${fmt(v)}${tip}`)}</title></rect>${whisker}`;
    }),
  );
  const xt = opts.categories.map((_, i) => i);
  const note = opts.note ? `<text x="${f.left}" y="${f.height - 2}" font-size="10" fill="#555">${esc(opts.note)}</text>` : '';
  return wrap(f, [axes(f, opts.title, '', opts.yLabel, xt, niceTicks(ylo, yhi), sx, sy, opts.categories), ...bars, legend(f, opts.series.map((s) => s.name), 'box'), note].join('\n'));
}

/** Histogram of values in `bins` equal bins over [lo, hi], one outline per series. */
export function histogram(opts: { title: string; xLabel: string; series: { name: string; values: ArrayLike<number> }[]; bins?: number; lo?: number; hi?: number }): string {
  const bins = opts.bins ?? 40;
  const all: number[] = [];
  for (const s of opts.series) for (let i = 0; i < s.values.length; i++) if (Number.isFinite(s.values[i]!)) all.push(s.values[i]!);
  const lo = opts.lo ?? (all.length ? Math.min(...all) : 0);
  const hi = opts.hi ?? (all.length ? Math.max(...all) : 1);
  const w = (hi - lo || 1) / bins;
  const series: Series[] = opts.series.map((s) => {
    const counts = new Array<number>(bins).fill(0);
    let n = 0;
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (!Number.isFinite(v) || v < lo || v > hi) continue;
      counts[Math.min(bins - 1, Math.floor((v - lo) / w))]!++;
      n++;
    }
    return { name: s.name, points: counts.map((c, b) => [lo + (b + 0.5) * w, n ? c / n : 0] as [number, number]) };
  });
  return lineChart({ title: opts.title, xLabel: opts.xLabel, yLabel: 'fraction', series, yMin: 0 });
}
