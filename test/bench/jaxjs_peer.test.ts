// The jax-js peer's plumbing, without a GPU: where the package is looked for (the bare
// specifier, then KINKLESS_JAXJS_DIR in both layouts), the skip note when it is absent,
// ESM entry parsing of package.json, the result comparison, the groups its rows join, and
// that a case's sync hands the pending results to the peer's sync.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { JAXJS, compareArrays, dirCandidates, esmEntry, resolveJaxjs, skipNote, type JaxPeer } from '../../bench/peers/jaxjs.ts';
import { casesFrom, jaxKernels, kernelCase } from '../../bench/jaxjs.bench.ts';
import { cases as peerCases } from '../../bench/peers.bench.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kinkless-jaxjs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A stand-in package folder named @jax-js/jax exporting the functions the peer checks for. */
function fakePackage(dir: string, name = '@jax-js/jax', version = '9.9.9'): void {
  mkdirSync(join(dir, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version, type: 'module', exports: { '.': { import: './dist/index.js', require: './dist/index.cjs' } } }));
  writeFileSync(join(dir, 'dist', 'index.js'), `export const init = async () => []; export const jit = (f) => f; export const numpy = {}; export const marker = ${JSON.stringify(dir)};\n`);
}

const absent = async (s: string) => {
  throw new Error(`Cannot find package '${s}'`);
};

describe('locating @jax-js/jax', () => {
  it('package.json entry: exports["."].import, then a string export, then module / main', () => {
    expect(esmEntry({ exports: { '.': { import: './dist/index.js', require: './dist/index.cjs' } } })).toBe('./dist/index.js');
    expect(esmEntry({ exports: { '.': { import: { default: './m.js' } } } })).toBe('./m.js');
    expect(esmEntry({ exports: './e.js' })).toBe('./e.js');
    expect(esmEntry({ module: 'mod.js', main: 'main.cjs' })).toBe('mod.js');
    expect(esmEntry({ main: 'main.js' })).toBe('main.js');
    expect(esmEntry({})).toBe('index.js');
  });

  it('KINKLESS_JAXJS_DIR is tried as a project folder, then as the package folder', () => {
    expect(dirCandidates('/x')).toEqual([join('/x', 'node_modules', '@jax-js', 'jax'), '/x']);
  });

  it('absent everywhere: one error naming every place tried and how to install', async () => {
    const e = await resolveJaxjs({}, absent).catch((x: Error) => x.message);
    expect(e).toMatch(/@jax-js\/jax not found \(npm install @jax-js\/jax, or point KINKLESS_JAXJS_DIR/);
    expect(e).toMatch(/import\('@jax-js\/jax'\): Cannot find package/);
    expect(e).toMatch(/KINKLESS_JAXJS_DIR: not set/);
    const e2 = await resolveJaxjs({ KINKLESS_JAXJS_DIR: join(tmp, 'nowhere') }, absent).catch((x: Error) => x.message);
    expect(e2).toContain(`${join(tmp, 'nowhere', 'node_modules', '@jax-js', 'jax', 'package.json')}: not found`);
    expect(skipNote('X')).toBe('jax-js peer skipped: X');
  });

  it('found under KINKLESS_JAXJS_DIR/node_modules (a project folder) with its version', async () => {
    const proj = join(tmp, 'proj');
    const pkg = join(proj, 'node_modules', '@jax-js', 'jax');
    fakePackage(pkg);
    const r = await resolveJaxjs({ KINKLESS_JAXJS_DIR: proj }, (s) => (s === '@jax-js/jax' ? absent(s) : import(s)));
    expect(r.from).toBe(pkg);
    expect(r.version).toBe('9.9.9');
    expect((r.mod as unknown as { marker: string }).marker).toBe(pkg);
  });

  it('found when KINKLESS_JAXJS_DIR is the package folder itself; a different package there is refused', async () => {
    const direct = join(tmp, 'direct');
    fakePackage(direct, '@jax-js/jax', '0.1.25');
    const r = await resolveJaxjs({ KINKLESS_JAXJS_DIR: direct }, (s) => (s === '@jax-js/jax' ? absent(s) : import(s)));
    expect(r.from).toBe(direct);
    expect(r.version).toBe('0.1.25');
    const other = join(tmp, 'other');
    fakePackage(other, 'not-jax');
    const e = await resolveJaxjs({ KINKLESS_JAXJS_DIR: other }, (s) => (s === '@jax-js/jax' ? absent(s) : import(s))).catch((x: Error) => x.message);
    expect(e).toMatch(/package "not-jax" is not @jax-js\/jax/);
  });

  it('a module that lacks the API is not taken for jax-js', async () => {
    const e = await resolveJaxjs({}, async () => ({ something: 1 })).catch((x: Error) => x.message);
    expect(e).toMatch(/does not export init\/jit\/numpy/);
  });
});

describe('bench rows', () => {
  it('no package: the bench module prints the note and adds no rows', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const rows = await casesFrom(async () => ({ error: 'nope' }), { quick: true });
      expect(rows).toEqual([]);
      expect(warn).toHaveBeenCalledWith('kinkless bench: jax-js peer skipped: nope');
    } finally {
      warn.mockRestore();
    }
  });

  it('its kernel rows join the groups of bench/peers.bench.ts (full and quick sizes)', () => {
    for (const quick of [false, true]) {
      const groups = new Set(peerCases(null as never, { quick, tfjs: null }).map((c) => c.group));
      const ours = jaxKernels(quick).map((k) => k.group);
      expect(ours.filter((g) => !groups.has(g))).toEqual([]);
      expect(ours).toContain(quick ? 'peer silu grad 1M' : 'peer silu grad 4M');
      if (!quick) expect(ours).toContain('peer matmul 1024');
    }
  });

  it("a case's sync hands the results of its runs to the peer's sync, once", async () => {
    const synced: unknown[][] = [];
    const arr = (v: number) => ({ v, ref: { v }, dispose() {} });
    const fakeJax = { numpy: { array: (d: Float32Array) => ({ reshape: () => arr(d[0]!) }) } };
    const peer = { jax: fakeJax, sync: async (a?: unknown) => void synced.push(a as unknown[]) } as unknown as JaxPeer;
    const c = kernelCase(peer, { group: 'peer x', inputs: () => [[Float32Array.of(5), [1]]], build: () => (x: { v: number }) => x.v * 2 });
    expect(c.name).toBe(JAXJS);
    expect(c.impl).toBe('jaxjs');
    c.setup!();
    c.run();
    c.run();
    await c.sync!();
    await c.sync!();
    expect(synced).toEqual([[10, 10], []]);
    c.teardown!();
  });
});

describe('result comparison', () => {
  it('relative to the largest |want|; NaN on one side only fails; lengths must match', () => {
    const c = compareArrays([1, 2, 4.0004], [1, 2, 4]);
    expect(c.maxAbs).toBeCloseTo(4e-4, 10);
    expect(c.rel).toBeCloseTo(1e-4, 10);
    expect(c.ok(2e-4)).toBe(true);
    expect(c.ok(5e-5)).toBe(false);
    expect(compareArrays([NaN], [1]).ok(1)).toBe(false);
    expect(compareArrays([NaN], [NaN]).ok(0)).toBe(true);
    expect(() => compareArrays([1], [1, 2])).toThrow(/lengths differ \(1 vs 2\)/);
  });
});
