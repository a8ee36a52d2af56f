// The npm package as a user gets it: `npm pack` (which builds dist/ through `prepare`), the
// tarball installed into an empty folder (no tsx, no TypeScript sources), then a plain-Node
// ESM script that imports kinkless, kinkless/nn, kinkless/data and kinkless/adversarial,
// computes a gradient and trains one step of the small CNN; `npx kinkless doctor` from that
// folder; and a TypeScript user's type check against the shipped .d.ts files.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = process.cwd();

/** The environment of a user's shell: no tsx loader, no npm script variables. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('npm_') || k.startsWith('KINKLESS_') || k.startsWith('VITEST')) continue;
    env[k] = v;
  }
  return env;
}

function sh(cmd: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: userEnv(), encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return r;
}

const SCRIPT = `
import { createDevice, Tensor, grad, mul, sum, softmaxCrossEntropy, backward, scope } from 'kinkless';
import { SmallCnn, Adam } from 'kinkless/nn';
import { loadMnist } from 'kinkless/data';
import { Fgsm } from 'kinkless/adversarial';

const device = await createDevice();
const x = Tensor.from(device, [1, -2, 3.5], [3]);
x.requiresGrad = true;
const [g] = grad(sum(mul(x, x)), [x]);            // d/dx sum(x^2) = 2x
const gx = Array.from(await g.data());
const mnist = loadMnist();
const n = 16;
const xb = Tensor.from(device, mnist.train.images.subarray(0, n * 784), [n, 1, 28, 28]);
const yb = Tensor.from(device, mnist.train.labels.subarray(0, n), [n], 'i32');
const model = new SmallCnn(device, { activation: 'silu' });
const opt = new Adam(model.parameters(), { lr: 1e-3 });
const lossNow = async () => await scope(() => softmaxCrossEntropy(model.forward(xb), yb)).item();
const before = await lossNow();
opt.zeroGrad();
backward(softmaxCrossEntropy(model.forward(xb), yb));
opt.step();
const after = await lossNow();
const adv = await new Fgsm({ eps: 0.1 }).perturb(model, xb, yb);
const d = await adv.data();
let maxDelta = 0;
for (let i = 0; i < d.length; i++) maxDelta = Math.max(maxDelta, Math.abs(d[i] - mnist.train.images[i]));
console.log(JSON.stringify({ gx, before, after, steps: opt.stepCount, maxDelta }));
device.destroy();
`;

// The same calls, type-checked as a TypeScript user's file (plus one deliberate error).
const TS_USER = `
import { createDevice, Tensor, grad, mul, sum, type Device } from 'kinkless';
import { SmallCnn, Adam, type ActivationSpec } from 'kinkless/nn';
import { loadMnist, type ImageSet } from 'kinkless/data';
import { Pgd, evaluateRobust } from 'kinkless/adversarial';

export async function main(): Promise<number> {
  const device: Device = await createDevice();
  const x = Tensor.from(device, [1, 2], [2]);
  const [g] = grad(sum(mul(x, x)), [x]);
  const spec: ActivationSpec = { kind: 'pssilu', shared: true };
  const model = new SmallCnn(device, { activation: spec });
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  opt.step();
  const test: ImageSet = loadMnist().test;
  const report = await evaluateRobust(device, model, test, { attacks: [new Pgd({ eps: 0.1, alpha: 0.025, steps: 2 })], limit: 10 });
  const values: Float32Array = (await g!.data()) as Float32Array;
  return report.worstCase.accuracy + values.length;
}
`;
const TS_ERROR = `\nexport const wrong: string = new SmallCnn(await createDevice()).parameterCount();\n`;

describe('npm package', () => {
  let app = '';
  let packed = '';
  let dest = '';
  // The install holds Dawn and the MNIST copy (~190 MB): never leave it behind.
  afterAll(() => {
    if (dest) rmSync(dest, { recursive: true, force: true });
  });
  beforeAll(() => {
    dest = mkdtempSync(join(tmpdir(), 'kinkless-pack-'));
    const p = sh('npm', ['pack', '--pack-destination', dest], ROOT, 240_000);
    expect(p.status, p.stderr).toBe(0);
    packed = readdirSync(dest).find((f) => f.endsWith('.tgz')) ?? '';
    expect(packed).toMatch(/^kinkless-.*\.tgz$/);
    app = join(dest, 'app');
    sh('mkdir', ['-p', app], dest);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // NOTE: --prefer-offline: the dependencies come from npm's cache when it has them (the
    // checkout's own install filled it), so the test needs no network on such machines.
    const i = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dest, packed)], app, 240_000);
    expect(i.status, i.stderr).toBe(0);
  }, 480_000);

  it('installs without tsx or TypeScript sources; plain Node imports it, computes a gradient and trains one step', () => {
    const pkg = join(app, 'node_modules', 'kinkless');
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(pkg, 'dist', 'api', 'index.js'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'api', 'nn.d.ts'))).toBe(true);
    expect(existsSync(join(pkg, 'engine'))).toBe(false);
    writeFileSync(join(app, 'run.mjs'), SCRIPT);
    const r = sh(process.execPath, ['run.mjs'], app);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { gx: number[]; before: number; after: number; steps: number; maxDelta: number };
    expect(out.gx).toEqual([2, -4, 7]); // exact in float32
    expect(out.steps).toBe(1);
    // Cross-entropy of a fresh 10-class net is near ln(10); one Adam step on the same batch lowers it.
    expect(Math.abs(out.before - Math.log(10))).toBeLessThan(0.5);
    expect(out.after).toBeLessThan(out.before);
    expect(out.maxDelta).toBeLessThanOrEqual(0.1 + 1e-6);
    expect(out.maxDelta).toBeGreaterThan(0.05);
  });

  it('`npx kinkless doctor` runs the built CLI from the install, quietly', () => {
    const r = sh('npx', ['--no-install', 'kinkless', 'doctor'], app);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/round trip: .* OK/);
    expect(r.stderr).not.toMatch(/^(Warning|Info): /m);
  });

  it("a TypeScript user's code type-checks against the shipped declarations, and a type error is caught", () => {
    const tsc = join(dirname(createRequire(join(ROOT, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc');
    // A Node user's settings; skipLibCheck as `tsc --init` writes it (@webgpu/types itself
    // needs the DOM library when its own file is checked).
    // docs/library.md's example is checked too (console declared: no @types/node here).
    const cfg = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: [], strict: true, noEmit: true, skipLibCheck: true }, files: ['user.ts', 'example.ts'] };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(cfg));
    const doc = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(ROOT, 'docs', 'library.md'), 'utf8'));
    expect(doc?.[1]).toMatch(/from 'kinkless\/nn'/);
    writeFileSync(join(app, 'example.ts'), `declare const console: { log(...a: unknown[]): void };\n${doc![1]}`);
    writeFileSync(join(app, 'user.ts'), TS_USER);
    const ok = sh(process.execPath, [tsc, '-p', '.'], app);
    expect(ok.stdout + ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    writeFileSync(join(app, 'user.ts'), TS_USER + TS_ERROR);
    const bad = sh(process.execPath, [tsc, '-p', '.'], app);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/user\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(bad.stdout.trim().split('\n')).toHaveLength(1);
  });
});
