// jax-js peer (@jax-js/jax, an optional dependency): a JAX-like library whose WebGPU
// backend fuses elementwise chains under `jit`, run in this process on its own Dawn
// (`webgpu` package) adapter and device. Loading (docs/peers.md): Dawn's
// globals and `navigator = { gpu, userAgent }` (a STRING userAgent: its WebGPU chunk throws
// on load without one) must exist before the module is imported, then `init('webgpu')`
// and `defaultDevice('webgpu')`. The package is resolved from `import('@jax-js/jax')` or,
// failing that, from the folder in env KINKLESS_JAXJS_DIR (a project folder holding
// node_modules/@jax-js/jax, or the package folder itself); when neither works the peer is
// skipped with a note. jax-js arrays are reference counted: every call consumes its
// arguments (pass `x.ref` to keep x), and only async reads work (`await a.data()`).
// Also here: the small MNIST CNN (NCHW / OIHW like ours) and its jitted SGD step.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { create, globals } from 'webgpu';
import { gpuWait } from '../../engine/gpu_wait.ts';

export const JAXJS = 'jax-js webgpu';
export const JAXJS_PKG = '@jax-js/jax';

/** The slice of jax-js's API the peer uses (the package may be absent: no static types). */
/* eslint-disable @typescript-eslint/no-explicit-any */
export type JaxArray = any;
export interface JaxModule {
  init(...devices: string[]): Promise<string[]>;
  defaultDevice(d?: string): string;
  getWebGPUDevice(): GPUDevice;
  blockUntilReady<T>(x: T): Promise<T>;
  jit: any;
  grad: any;
  valueAndGrad: any;
  numpy: any;
  nn: any;
  lax: any;
  tree: any;
}

export interface JaxPeer {
  jax: JaxModule;
  version: string;
  /** Where the package was loaded from ('@jax-js/jax' or a path). */
  from: string;
  /** What its adapter reports, e.g. "mesa/software". */
  adapter: string;
  /** Wait until `arrays` (a tree of results) are computed and the peer's queue is idle, then dispose them. */
  sync(arrays?: unknown): Promise<void>;
}

/** A module found on disk or by name, before its WebGPU backend is started. */
export interface Resolved {
  mod: JaxModule;
  version: string;
  from: string;
}

export type Importer = (specifier: string) => Promise<unknown>;

/** The ESM entry of a package.json: exports['.'].import, else exports['.'] (string), module, main. */
export function esmEntry(pkg: { exports?: unknown; module?: string; main?: string }): string {
  const e = pkg.exports as Record<string, unknown> | string | undefined;
  const dot = typeof e === 'string' ? e : (e?.['.'] as Record<string, unknown> | string | undefined);
  if (typeof dot === 'string') return dot;
  const imp = dot?.import;
  if (typeof imp === 'string') return imp;
  if (imp && typeof imp === 'object' && typeof (imp as Record<string, unknown>).default === 'string') return (imp as Record<string, string>).default;
  return pkg.module ?? pkg.main ?? 'index.js';
}

/** Package folders to try under KINKLESS_JAXJS_DIR: <dir>/node_modules/@jax-js/jax, then <dir> itself. */
export function dirCandidates(dir: string): string[] {
  return [join(dir, 'node_modules', ...JAXJS_PKG.split('/')), dir];
}

function isJaxModule(m: unknown): m is JaxModule {
  const o = m as Partial<JaxModule> | null;
  return !!o && typeof o.init === 'function' && typeof o.jit === 'function' && typeof o.numpy === 'object';
}

/**
 * Find @jax-js/jax: the bare specifier first, then KINKLESS_JAXJS_DIR. Throws one message
 * listing every place tried and how to install it (the caller turns it into a skip note).
 */
export async function resolveJaxjs(env: Record<string, string | undefined> = process.env, importer: Importer = (s) => import(s)): Promise<Resolved> {
  const tried: string[] = [];
  try {
    const mod = await importer(JAXJS_PKG);
    if (!isJaxModule(mod)) throw new Error('it does not export init/jit/numpy');
    return { mod, version: versionOf(mod, null), from: JAXJS_PKG };
  } catch (e) {
    tried.push(`import('${JAXJS_PKG}'): ${firstLine(e)}`);
  }
  const dir = env.KINKLESS_JAXJS_DIR;
  if (dir) {
    for (const pdir of dirCandidates(dir)) {
      const pj = join(pdir, 'package.json');
      if (!existsSync(pj)) {
        tried.push(`${pj}: not found`);
        continue;
      }
      try {
        const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string; exports?: unknown; module?: string; main?: string };
        if (pkg.name !== JAXJS_PKG) {
          tried.push(`${pj}: package "${pkg.name}" is not ${JAXJS_PKG}`);
          continue;
        }
        const entry = join(pdir, esmEntry(pkg));
        const mod = await importer(pathToFileURL(entry).href);
        if (!isJaxModule(mod)) throw new Error('it does not export init/jit/numpy');
        return { mod, version: pkg.version ?? 'unknown', from: pdir };
      } catch (e) {
        tried.push(`${pdir}: ${firstLine(e)}`);
      }
    }
  } else tried.push('KINKLESS_JAXJS_DIR: not set');
  throw new Error(`${JAXJS_PKG} not found (npm install ${JAXJS_PKG}, or point KINKLESS_JAXJS_DIR at a folder where it is installed); tried: ${tried.join('; ')}`);
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/** The version in the package.json above the resolved entry of the bare specifier. */
function versionOf(mod: unknown, fallback: string | null): string {
  void mod;
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(JAXJS_PKG)));
    for (let i = 0; i < 4; i++, dir = dirname(dir)) {
      const pj = join(dir, 'package.json');
      if (!existsSync(pj)) continue;
      const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === JAXJS_PKG) return pkg.version ?? 'unknown';
    }
  } catch {
    /* resolution details vary; the version is informative only */
  }
  return fallback ?? 'unknown';
}

/** The one-line note printed when the peer is skipped. */
export function skipNote(error: string): string {
  return `jax-js peer skipped: ${error}`;
}

/** Dawn's globals and navigator.gpu with a string userAgent, before jax-js loads (see the file comment). */
export function exposeNavigator(): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) if (g[k] === undefined) g[k] = v;
  const nav = (g.navigator ?? {}) as { gpu?: unknown; userAgent?: unknown };
  if (nav.gpu && typeof nav.userAgent === 'string') return;
  // NOTE: Node >= 21 has a read-only global navigator without `gpu`: redefine it.
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...nav, gpu: nav.gpu ?? create([]), userAgent: typeof nav.userAgent === 'string' ? nav.userAgent : 'node' },
    configurable: true,
    writable: true,
  });
}

let loaded: Promise<JaxPeer> | null = null;

async function load(): Promise<JaxPeer> {
  exposeNavigator();
  const r = await resolveJaxjs();
  const jax = r.mod;
  const devs = await jax.init('webgpu');
  if (!devs.includes('webgpu')) throw new Error(`jax-js init('webgpu') started only [${devs.join(', ')}]`);
  jax.defaultDevice('webgpu');
  const dev = jax.getWebGPUDevice();
  const info = (dev as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo ?? {};
  return {
    jax,
    version: r.version,
    from: r.from,
    adapter: `${info.vendor ?? '?'}/${info.architecture ?? '?'}`,
    async sync(arrays?: unknown) {
      if (arrays !== undefined) {
        await gpuWait(jax.blockUntilReady(arrays));
        jax.tree.dispose(arrays);
      }
      // Its best setup, like the TF.js peer: the wait leaves the CPU to the driver.
      await gpuWait(dev.queue.onSubmittedWorkDone());
    },
  };
}

/** Load jax-js once; resolves to the peer or to { error } (the suite goes on without it). */
export async function loadJaxjs(): Promise<{ peer: JaxPeer; error?: undefined } | { peer?: undefined; error: string }> {
  loaded ??= load();
  try {
    return { peer: await loaded };
  } catch (e) {
    return { error: firstLine(e) };
  }
}

/** Largest absolute and relative (to max |want|) difference of two equally long arrays; a NaN on one side only fails. */
export function compareArrays(got: ArrayLike<number>, want: ArrayLike<number>): { maxAbs: number; rel: number; ok: (tol: number) => boolean } {
  if (got.length !== want.length) throw new Error(`compareArrays: lengths differ (${got.length} vs ${want.length})`);
  let maxAbs = 0;
  let scale = 0;
  let nan = false;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(g) || Number.isNaN(w)) {
      if (Number.isNaN(g) !== Number.isNaN(w)) nan = true;
      continue;
    }
    maxAbs = Math.max(maxAbs, Math.abs(g - w));
    scale = Math.max(scale, Math.abs(w));
  }
  const rel = nan ? NaN : maxAbs / Math.max(scale, 1e-30);
  return { maxAbs: nan ? NaN : maxAbs, rel, ok: (tol) => !nan && rel <= tol };
}

/** Small-CNN parameters as jax-js arrays: conv1 [32,1,3,3], b1, conv2 [64,32,3,3], b2, dense [10,9216], b3 (ours' layout). */
export type JaxCnnParams = JaxArray[];

/** Mean softmax cross-entropy of the small CNN (relu) on x [N,1,28,28] and one-hot y [N,10]. Consumes its arguments. */
export function jaxCnnLoss(jax: JaxModule, params: JaxCnnParams, x: JaxArray, y1h: JaxArray): JaxArray {
  const { numpy: np, nn, lax } = jax;
  const [w1, b1, w2, b2, w3, b3] = params;
  const n = x.shape[0] as number;
  const h1 = nn.relu(lax.conv(x, w1, [1, 1], 'VALID').add(b1.reshape([1, 32, 1, 1])));
  const h2 = nn.relu(lax.conv(h1, w2, [2, 2], 'VALID').add(b2.reshape([1, 64, 1, 1])));
  const logits = np.matmul(h2.reshape([n, 9216]), w3.transpose()).add(b3);
  return np.sum(nn.logSoftmax(logits, -1).mul(y1h)).mul(-1 / n);
}

/** jit-compiled SGD step: (params, x, y1h) -> [new params, loss]. Consumes params; pass x.ref and y1h.ref. */
export function jaxCnnStep(jax: JaxModule, lr: number): (params: JaxCnnParams, x: JaxArray, y1h: JaxArray) => [JaxCnnParams, JaxArray] {
  const vg = jax.valueAndGrad((p: JaxCnnParams, x: JaxArray, y: JaxArray) => jaxCnnLoss(jax, p, x, y));
  return jax.jit((p: JaxCnnParams, x: JaxArray, y: JaxArray) => {
    const [loss, g] = vg(jax.tree.ref(p), x, y);
    const next = p.map((w: JaxArray, i: number) => w.sub(g[i].mul(lr)));
    return [next, loss];
  });
}
