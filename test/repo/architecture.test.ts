// The repository's layering rules (docs/architecture.md), checked without a GPU by
// test/repo/arch_check.ts: no WGSL outside kernels/, no kernels/ imports from nn/,
// adversarial/ or cli/, imports only down the layer order (so no cycles between top-level
// folders), production files under 600 lines. The checker is also run on a synthetic file
// set with one violation of each rule, to show that it fails when it should.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkArchitecture, folderCycles, importSpecifiers, stringLiterals, type Allowed, type SourceFile } from './arch_check.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Justified exceptions: keep this list short, one reason per entry (empty: no exceptions). */
const ALLOWED: Allowed[] = [];

const SCANNED = ['engine', 'kernels', 'nn', 'adversarial', 'bench', 'cli', 'scripts', 'bin'];

function repoFiles(): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'results' || name.startsWith('.')) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|mts|mjs|js)$/.test(name)) out.push({ path: relative(ROOT, p).split('\\').join('/'), text: readFileSync(p, 'utf8') });
    }
  };
  for (const d of SCANNED) walk(join(ROOT, d));
  return out;
}

describe('repository architecture', () => {
  it('follows the layering rules (with the commented allow-list)', () => {
    const files = repoFiles();
    expect(files.length).toBeGreaterThan(50);
    const v = checkArchitecture(files, ALLOWED);
    expect(v.map((x) => `${x.rule}: ${x.file}: ${x.message}`)).toEqual([]);
  });

  it('the real file set with one WGSL string added under engine/ fails', () => {
    const files = repoFiles();
    const epi = 'fn epi_act(z: f32) -> f32 {\n  return act_f(z, act_params());\n}';
    files.push({ path: 'engine/ops/epilogue_inline.ts', text: `export const w = \`${epi}\`;\n` });
    const v = checkArchitecture(files, ALLOWED);
    expect(v.map((x) => `${x.rule}: ${x.file}`)).toEqual(['wgsl: engine/ops/epilogue_inline.ts']);
  });

  it('no file dispatches raw WGSL (the removed {name, wgsl} form): every dispatch names a descriptor', () => {
    const legacy = /\.dispatch\(\{\s*(name|wgsl)\s*:/;
    expect(legacy.test("device.dispatch({\n    name: `activation_${k}`,\n    wgsl: src,")).toBe(true);
    expect(legacy.test('device.dispatch({ kernel: copyVec4Kernel, buffers: [x, y], workgroups: [1] });')).toBe(false);
    const users = repoFiles().filter((f) => legacy.test(f.text)).map((f) => f.path);
    expect(users).toEqual([]);
  });

  it('every allow-list entry is still needed', () => {
    const raw = checkArchitecture(repoFiles());
    const stale = ALLOWED.filter((a) => !raw.some((v) => v.rule === a.rule && v.file === a.file));
    expect(stale).toEqual([]);
  });
});

describe('the checker fails on violations', () => {
  const bad: SourceFile[] = [
    { path: 'nn/bad_wgsl.ts', text: "const k = `@compute @workgroup_size(64)\nfn main() {}`;\n" },
    { path: 'adversarial/bad_ew.ts', text: "launch('step', 'clamp(a0 + T(s.x) * a1, T(s.y), T(s.z))', [x, d]);\n" },
    { path: 'cli/bad_storage.ts', text: "const decl = '@group(0) @binding(1) var<storage, read> x: array<f32>;';\n" },
    { path: 'nn/bad_import.ts', text: "import { grid1d } from '../kernels/elementwise.ts';\n" },
    { path: 'cli/bad_import2.ts', text: "import type { Binding } from '../kernels/kernel.ts';\n" },
    { path: 'engine/bad_up.ts', text: "import { Module } from '../nn/module.ts';\n" },
    { path: 'nn/down.ts', text: "import { Tensor } from '../engine/index.ts';\n" },
    { path: 'bench/bad_cli.ts', text: "import { parseFlags } from '../cli/args.ts';\n" },
    { path: 'cli/ok.ts', text: "import { runSuite } from '../bench/suite.ts';\n" },
    { path: 'adversarial/big.ts', text: 'export const x = 1;\n'.repeat(601) },
    { path: 'test/big_ok.test.ts', text: "const s = 'a0 + a1';\n".repeat(700) },
    { path: 'kernels/ok.ts', text: "export const k = '@compute @workgroup_size(64) fn main() { let y = select(a0, a1, a2 > T(0.0)); }';\n" },
    { path: 'engine/comment_ok.ts', text: "// builds var<storage> and @compute in kernels/, see fn main\nconst msg = `kinkless: ${op}: a0 must be f32`;\n" },
  ];

  it('reports each rule on the synthetic file set, and nothing for the clean files', () => {
    const v = checkArchitecture(bad);
    const by = (rule: string) => v.filter((x) => x.rule === rule).map((x) => x.file).sort();
    expect(by('wgsl')).toEqual(['adversarial/bad_ew.ts', 'cli/bad_storage.ts', 'nn/bad_wgsl.ts']);
    expect(by('kernels')).toEqual(['cli/bad_import2.ts', 'nn/bad_import.ts']);
    expect(by('layering')).toEqual(['bench/bad_cli.ts', 'engine/bad_up.ts']);
    expect(by('cycle')).toEqual(['bench, cli', 'engine, nn']);
    expect(by('size')).toEqual(['adversarial/big.ts']);
    expect(v.some((x) => ['cli/ok.ts', 'kernels/ok.ts', 'engine/comment_ok.ts', 'test/big_ok.test.ts', 'nn/down.ts'].includes(x.file))).toBe(false);
  });

  it('an allow-list entry excuses exactly its file and rule', () => {
    const v = checkArchitecture(bad, [{ rule: 'wgsl', file: 'nn/bad_wgsl.ts', why: 'test' }]);
    expect(v.some((x) => x.file === 'nn/bad_wgsl.ts')).toBe(false);
    expect(v.some((x) => x.file === 'adversarial/bad_ew.ts' && x.rule === 'wgsl')).toBe(true);
  });

  it('parsing helpers: string literals skip comments; imports include type, export-from and dynamic', () => {
    const s = stringLiterals("// 'not a string'\n/* \"nor\" */ const a = 'one'; const b = `two\nlines`; const c = \"it's\";");
    expect(s.map((x) => x.value)).toEqual(['one', 'two\nlines', "it's"]);
    expect(s.map((x) => x.line)).toEqual([2, 2, 3]);
    const t = "import a from './a.ts';\nimport type { B } from '../b.ts';\nexport { c } from './c.ts';\nexport * from './d.ts';\nconst e = await import('./e.ts');\nimport 'side-effect';\n";
    expect(importSpecifiers(t)).toEqual(['./a.ts', '../b.ts', './c.ts', './d.ts', './e.ts', 'side-effect']);
    const g = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]]);
    expect(folderCycles(g)).toEqual([['a', 'b', 'c']]);
  });
});
