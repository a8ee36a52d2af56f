// Pure pieces of the benchmark report: the PyTorch peer's JSON-line parsing, the peer
// summary (speedup = peer time / our time), baseline linking, chart label wrapping.
import { describe, expect, it } from 'vitest';
import { linkBaselines, type BenchRow } from '../../bench/harness.ts';
import { peerSummary, shortLabel, wrapTickLabels } from '../../bench/report.ts';
import { parseTorchLines } from '../../bench/peers/torch.ts';

const r = (group: string, name: string, ms: number, extra: Partial<BenchRow> = {}): BenchRow => ({ group, name, median_ms: ms, min_ms: ms, max_ms: ms, runs: 3, method: 'wall', ...extra });

describe('bench report', () => {
  it('parses the torch peer lines and skips noise', () => {
    const text = [
      'warning: something on stdout',
      '{"torch": "1.13.1", "default_threads": 1, "cpu_count": 2}',
      '{"group": "peer matmul 512", "threads": 1, "median_ms": 2, "min_ms": 1.5, "max_ms": 3, "runs": 10, "flops": 268435456}',
      '{"group": "e2e standard step b128", "threads": 2, "median_ms": 50, "min_ms": 49, "max_ms": 52, "runs": 5, "items": 128}',
      '{"group": "broken"',
    ].join('\n');
    const p = parseTorchLines(text);
    expect(p.version).toBe('1.13.1');
    expect(p.rows.map((x) => [x.group, x.name, x.impl])).toEqual([
      ['peer matmul 512', 'torch cpu 1 thread', 'torch-1t'],
      ['e2e standard step b128', 'torch cpu 2 threads', 'torch-2t'],
    ]);
    expect(p.rows[0]!.gflops).toBeCloseTo(268435456 / 2e6, 9);
    expect(p.rows[1]!.items_per_s).toBeCloseTo(128 / 0.05, 9);
  });

  it('summarises our speedup over each peer and links baselines in any order', () => {
    const rows = [
      r('peer relu 4M', 'kinkless', 2, { impl: 'kinkless', baseline: 'tfjs webgpu' }),
      r('peer relu 4M', 'tfjs webgpu', 6, { impl: 'tfjs' }),
      r('peer relu 4M', 'torch cpu 1 thread', 1, { impl: 'torch-1t' }),
      r('peer copy 4M', 'kinkless', 1, { impl: 'kinkless' }),
      r('e2e standard step b128', 'kinkless', 100, { impl: 'kinkless', items_per_s: 1280, baseline: 'tfjs webgpu' }),
      r('e2e standard step b128', 'tfjs webgpu', 400, { impl: 'tfjs', items_per_s: 320 }),
    ];
    linkBaselines(rows);
    expect(rows[0]!.ratio).toBeCloseTo(3, 12); // inverse time
    expect(rows[4]!.ratio).toBeCloseTo(4, 12); // items/s
    const s = peerSummary(rows);
    expect(s.map((l) => l.group)).toEqual(['peer relu 4M', 'e2e standard step b128']); // copy has no peer
    expect(s[0]!.speedup).toEqual({ 'tfjs webgpu': 3, 'torch cpu 1 thread': 0.5 });
  });

  it('shortens and wraps chart labels', () => {
    expect(shortLabel('peer conv dx N64 32x32 64->64 3x3')).toBe('conv dx');
    expect(shortLabel('e2e PGD-20 attack 1000 images')).toBe('PGD-20 (1000 img)');
    const svg = '<text x="10" y="20" text-anchor="middle" font-size="11">silu grad 4M</text><text x="5" y="20" text-anchor="middle" font-size="11">relu</text>';
    expect(wrapTickLabels(svg)).toBe('<text x="10" y="20" text-anchor="middle" font-size="11"><tspan x="10">silu</tspan><tspan x="10" dy="12">grad 4M</tspan></text><text x="5" y="20" text-anchor="middle" font-size="11">relu</text>');
  });
});
