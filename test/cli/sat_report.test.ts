// The `reproduce sat` report against the statistics it is generated from: hand-made
// per-image outcomes on 100 images with known discordant counts, and the sentences,
// intervals and p-values the report must then contain (computed by hand here: Wilson
// intervals, exact binomial tails, Holm's adjustment, Agresti-Min intervals). No GPU.
import { describe, it, expect } from 'vitest';
import { makePlan, SAT_PRESETS, parseShard, shardJobs, type SatPlan } from '../../cli/sat_protocol.ts';
import type { JobResult } from '../../cli/sat_job.ts';
import { summarise } from '../../cli/sat_summary.ts';
import { renderReport } from '../../cli/sat_report.ts';
import { budgetFromFlags } from '../../cli/cmd_reproduce.ts';

const N = 100;
/** '1' on the listed index ranges [a, b), '0' elsewhere. */
function ones(...ranges: [number, number][]): string {
  const a = new Array<string>(N).fill('0');
  for (const [s, e] of ranges) for (let i = s; i < e; i++) a[i] = '1';
  return a.join('');
}
const count = (s: string) => [...s].filter((c) => c === '1').length;

function job(plan: SatPlan, id: string, clean: string, worst: string): JobResult {
  // FGSM / PGD / APGD: the worst case is their intersection with clean; keep them equal to it
  return {
    id,
    planHash: plan.hash,
    train: { steps: 20, epochs: [{ epoch: 0, trainLoss: 1, trainAcc: 0.5, testAcc: count(clean) / N, lr: 0 }], coDetected: false, restoredStep: null },
    eval: {
      n: N,
      clean: { name: 'clean', correct: count(clean) },
      attacks: ['fgsm', 'pgd', 'apgd'].map((name) => ({ name, correct: count(worst) })),
      worstCase: { name: 'worst case', correct: count(worst) },
      perImage: { clean, attacks: [worst, worst, worst], worstCase: worst },
    },
    curve: [{ eps: 0, n: N, correct: count(clean) }, { eps: 0.05, n: 50, correct: 40 }, { eps: 0.1, n: N, correct: count(worst) }, { eps: 0.2, n: 50, correct: 5 }],
  };
}

function fixture() {
  const budget = { ...SAT_PRESETS.quick, activations: ['relu', 'silu', 'softplus', 'gelu'] as SatPlan['budget']['activations'], evalLimit: N, curveLimit: 50 };
  const plan = makePlan(budget, 0.1, 0);
  const relu = { clean: ones([0, 90]), worst: ones([0, 50]) };
  const results = new Map<string, JobResult>([
    ['relu-s0', job(plan, 'relu-s0', relu.clean, relu.worst)],
    // identical outcomes: no discordant pair
    ['silu-s0', job(plan, 'silu-s0', relu.clean, relu.worst)],
    // did not train: 5 of 100 clean, nothing robust
    ['softplus-s0', job(plan, 'softplus-s0', ones([0, 5]), ones())],
    // 10 more robust images than ReLU, none fewer
    ['gelu-s0', job(plan, 'gelu-s0', relu.clean, ones([0, 60]))],
  ]);
  return { plan, results };
}

describe('reproduce sat report', () => {
  it('sentences come from the exact McNemar tests (Holm over 3) and Agresti-Min intervals', () => {
    const { plan, results } = fixture();
    const s = summarise(plan, results);
    const text = s.sentences.activation.join('\n');
    // gelu: b = 10, c = 0 -> p = 2 / 2^10 = 0.00195; Holm rank 2 of 3: 2 p = 0.0039.
    // Agresti-Min: (10.5 - 0.5)/102 +- z sqrt(((11/102) - (10/102)^2)/102) = [+3.7, +15.9].
    expect(text).toContain('**gelu** is more robust than ReLU by 10.0 points (95% CI +3.7 to +15.9 points; exact McNemar p = 0.002, Holm-adjusted over 3 comparisons 0.0039) (100 images).');
    // silu: no discordant pair -> p = 1, interval +- z/102 = +-1.9 points
    expect(text).toContain('**silu**: no significant difference from ReLU in robust (worst-case) accuracy (exact McNemar p = 1, Holm-adjusted over 3 comparisons 1; difference +0.0 points, 95% CI -1.9 to +1.9 points) (100 images).');
    // softplus: 0 vs 50 -> p = 2^-49 < 0.001; Agresti-Min [-58.9, -39.1]
    expect(text).toContain('**softplus** is less robust than ReLU by 50.0 points (95% CI -58.9 to -39.1 points; exact McNemar p = < 0.001');
    // its clean interval (Wilson 5/100 = [2.2, 11.2]) lies below 20%: flagged
    expect(text).toContain('**softplus** (seed 0) did not train within this budget (clean 5.0% [2.2, 11.2])');
    expect(text).toContain('Activations with significantly higher robust (worst-case) accuracy than ReLU at the 0.05 level (Holm-adjusted): gelu.');
    expect(text).toContain('Activations with significantly higher clean accuracy than ReLU at the 0.05 level (Holm-adjusted): none.');
    const gelu = s.networks.find((n) => n.label === 'gelu')!.vsRelu!.worstCase;
    expect(gelu.table).toEqual({ n: 100, both: 50, onlyA: 10, onlyB: 0, neither: 40 });
    expect(gelu.p).toBeCloseTo(2 / 1024, 15);
    expect(gelu.pAdjusted).toBeCloseTo(4 / 1024, 15);
  });

  it('tables carry Wilson intervals; no sentence the run did not measure', () => {
    const { plan, results } = fixture();
    const s = summarise(plan, results);
    const { markdown, svgs } = renderReport(plan, s);
    // relu: clean 90/100 -> [82.6, 94.5]; worst case 50/100 -> [40.4, 59.6]; gelu 60/100 -> [50.2, 69.1]
    expect(markdown).toMatch(/\| relu \| 90\.0% \[82\.6, 94\.5\] \|.*\| 50\.0% \[40\.4, 59\.6\] \| reference \|/);
    expect(markdown).toMatch(/\| gelu \|.*\| 60\.0% \[50\.2, 69\.1\] \| \+10\.0 \[\+3\.7, \+15\.9\] \|/);
    expect(markdown).toContain('FLAGGED: did not train');
    for (const unmeasured of [/PyTorch/i, /ImageNet/i, /Highest/i, /winner/i]) expect(markdown).not.toMatch(unmeasured);
    // every finding in the report is one of the generated sentences
    const part = markdown.slice(markdown.indexOf('### Findings'), markdown.indexOf('![accuracy per activation]'));
    const findings = part.split('\n').filter((l) => l.startsWith('- '));
    expect(findings.length).toBe(s.sentences.activation.length);
    for (const f of findings) expect(s.sentences.activation).toContain(f.slice(2));
    // plots carry whiskers (the intervals) for every bar: 4 networks x 3 series
    expect((svgs['activation_table.svg']!.match(/stroke="#222"/g) ?? []).length).toBe(12);
    expect(svgs['robust_vs_eps.svg']).toContain('Wilson 95% intervals');
    // per-image outcomes are kept for pairing
    expect(s.perImage['gelu-s0']!.worstCase).toBe(ones([0, 60]));
  });

  it('missing jobs are listed and left out of every statement', () => {
    const { plan, results } = fixture();
    results.delete('gelu-s0');
    const s = summarise(plan, results);
    expect(s.status).toBe('partial');
    expect(s.missingJobs).toEqual(['gelu-s0']);
    expect(s.sentences.activation.join('\n')).not.toContain('gelu');
    expect(renderReport(plan, s).markdown).toContain('partial: 1 of 4 jobs missing (gelu-s0)');
  });

  it('several seeds: mean and spread, tests on pooled pairs of the same seed', () => {
    const budget = { ...SAT_PRESETS.quick, activations: ['relu', 'gelu'] as SatPlan['budget']['activations'], evalLimit: N, seeds: 2 };
    const plan = makePlan(budget, 0.1, 3);
    expect(plan.jobs.map((j) => j.id)).toEqual(['relu-s3', 'gelu-s3', 'relu-s4', 'gelu-s4']);
    const results = new Map<string, JobResult>([
      ['relu-s3', job(plan, 'relu-s3', ones([0, 90]), ones([0, 50]))],
      ['gelu-s3', job(plan, 'gelu-s3', ones([0, 90]), ones([0, 54]))],
      ['relu-s4', job(plan, 'relu-s4', ones([0, 90]), ones([0, 50]))],
      ['gelu-s4', job(plan, 'gelu-s4', ones([0, 90]), ones([0, 52]))],
    ]);
    const s = summarise(plan, results);
    const g = s.networks.find((n) => n.label === 'gelu')!;
    expect(g.spread.worstCase.mean).toBeCloseTo(0.53, 15);
    expect(g.spread.worstCase.sd).toBeCloseTo(Math.SQRT2 * 0.01, 15);
    // pooled: b = 4 + 2 = 6, c = 0 over 200 pairs -> p = 2 / 64
    expect(g.vsRelu!.worstCase.table).toEqual({ n: 200, both: 100, onlyA: 6, onlyB: 0, neither: 94 });
    expect(g.vsRelu!.worstCase.p).toBeCloseTo(2 / 64, 15);
    expect(s.sentences.activation.join('\n')).toContain('**gelu** is more robust than ReLU by 3.0 points');
    expect(s.sentences.activation.join('\n')).toContain('(2 seeds pooled, 200 pairs)');
    expect(renderReport(plan, s).markdown).toMatch(/\| gelu \|.*\| 53\.0% ± 1\.4 \(52\.0-54\.0\) \|/);
  });

  it('shards: round-robin slices cover the plan once; bad --shard values are refused', () => {
    const plan = makePlan(SAT_PRESETS.default, 0.1, 0);
    const all = [0, 1, 2].flatMap((i) => shardJobs(plan, { index: i, count: 3 }).map((j) => j.id));
    expect(all.sort()).toEqual(plan.jobs.map((j) => j.id).sort());
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(() => parseShard('5/5')).toThrow(/0 <= i < n, got i = 5, n = 5/);
    expect(() => parseShard('1-4')).toThrow(/expected "i\/n"/);
    // the plan hash changes with anything that changes results, and only with that
    expect(makePlan(SAT_PRESETS.default, 0.1, 0).hash).toBe(plan.hash);
    expect(makePlan({ ...SAT_PRESETS.default, evalLimit: 999 }, 0.1, 0).hash).not.toBe(plan.hash);
  });

  it('--eval autoattack: an AutoAttack column with Wilson intervals, masking and rejections flagged', () => {
    const standard = budgetFromFlags({ quick: true, seeds: 1 });
    expect('autoattack' in standard, 'standard plans keep their hash: no autoattack key').toBe(false);
    const budget = { ...budgetFromFlags({ quick: true, eval: 'autoattack', aaTargets: 9 }), activations: ['relu', 'gelu'] as SatPlan['budget']['activations'], evalLimit: N, seeds: 1 };
    expect(budget.autoattack!.stages[0]).toBe('apgd-ce');
    expect(budget.autoattack!.apgdSteps).toBe(10); // --quick
    const plan = makePlan(budget, 0.1, 0);
    expect(plan.hash).not.toBe(makePlan({ ...budget, autoattack: undefined }, 0.1, 0).hash);
    const aa = (correct: number, masking: number, violations: number) => ({
      sequence: ['apgd-ce', 'apgd-t'],
      correct,
      perImage: ones([0, correct]),
      stages: [{ label: 'apgd-ce', attacked: 50, broken: 50 - correct, violations }],
      masking,
      warning: masking ? `square (gradient-free) broke ${masking} examples that every gradient-based stage (apgd-ce, apgd-t) missed: ...` : null,
    });
    const relu = job(plan, 'relu-s0', ones([0, 90]), ones([0, 50]));
    relu.eval.autoattack = aa(45, 0, 0);
    const gelu = job(plan, 'gelu-s0', ones([0, 90]), ones([0, 60]));
    gelu.eval.autoattack = aa(20, 7, 2);
    const s = summarise(plan, new Map([['relu-s0', relu], ['gelu-s0', gelu]]));
    const md = renderReport(plan, s).markdown;
    // Wilson by hand: 45/100 -> [35.6, 54.8]; 20/100 -> [13.3, 28.9]
    expect(md).toMatch(/\| network \| clean \| FGSM \| PGD-5 \| APGD-CE-5 \| worst case \| AutoAttack \|/);
    expect(md).toMatch(/\| relu \| 90\.0% \[82\.6, 94\.5\] \|.*\| 50\.0% \[40\.4, 59\.6\] \| 45\.0% \[35\.6, 54\.8\] \| reference \|/);
    expect(md).toMatch(/\| gelu-s0 \| 0 \| 20 \|.*\| 60\.0% \[50\.2, 69\.1\] \| 20\.0% \[13\.3, 28\.9\] \|/);
    expect(md).toContain('FLAGGED: AutoAttack masking warning: square (gradient-free) broke 7 examples');
    expect(md).toContain('AutoAttack rejected 2 misclassified point(s)');
    expect(md).toContain('separately, AutoAttack on the same images: APGD-CE 10 iterations, then APGD-T 9 targets x 10 iterations');
    expect(s.perImage['gelu-s0']!.autoattack).toBe(ones([0, 20]));
  });
});
