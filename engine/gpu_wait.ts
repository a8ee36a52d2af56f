// Waiting for the GPU without busy-waiting. While a GPU promise is pending, dawn.node
// re-schedules its event processing with `setImmediate` from native code, so the JS main
// thread spins at 100% and, on a machine where the GPU is a CPU driver (lavapipe), takes
// a core from the driver's worker threads. While one of our waits is pending we route
// those native re-schedules through a short timer instead; calls from JavaScript (and all
// calls while no wait of ours is pending) go to the real setImmediate unchanged, so other
// code in the process (TF.js in the bench) keeps its behaviour.
//
// NOTE: measured on 2 cores with lavapipe (docs/software-gpu.md): the main thread
// burned ~1.1 s of CPU in a 1.7 s wait with immediate ticks and almost none with timer
// ticks; a small readback waits at most one timer period (~1 ms) longer.

import { readFileSync } from 'node:fs';

export type WaitMode = 'timer' | 'spin';

/** The default for new devices: 'timer', or 'spin' with env KINKLESS_GPU_WAIT=spin. */
export function defaultWaitMode(): WaitMode {
  return process.env.KINKLESS_GPU_WAIT === 'spin' ? 'spin' : 'timer';
}
/** Immediate ticks allowed at the start of a wait (short waits stay fast). */
const SPIN_FIRST_MS = 0.2;

let pending = 0;
let waitStart = 0;
let original: typeof setImmediate | null = null;
let patched: typeof setImmediate | null = null;
const fnToString = Function.prototype.toString;

function isNative(fn: unknown): boolean {
  return typeof fn === 'function' && fnToString.call(fn).endsWith('{ [native code] }');
}

function install(): void {
  const orig = globalThis.setImmediate;
  original = orig;
  const wrapper = function (this: unknown, fn: (...a: unknown[]) => void, ...args: unknown[]) {
    if (pending > 0 && isNative(fn) && performance.now() - waitStart > SPIN_FIRST_MS) {
      // Node clamps 0 to 1 ms; the main thread sleeps in the event loop meanwhile.
      setTimeout(fn, 0, ...args);
      return undefined as unknown as NodeJS.Immediate;
    }
    return orig.call(globalThis, fn, ...args);
  } as unknown as typeof setImmediate;
  Object.assign(wrapper, orig);
  patched = wrapper;
  globalThis.setImmediate = wrapper;
}

function uninstall(): void {
  // Restore only if nobody replaced setImmediate after us.
  if (original && globalThis.setImmediate === patched) globalThis.setImmediate = original;
  original = null;
  patched = null;
}

/**
 * Await a GPU promise (mapAsync, onSubmittedWorkDone, error scopes) without busy-waiting;
 * mode 'spin' leaves dawn.node's immediate ticks as they are.
 */
export async function gpuWait<T>(p: Promise<T>, mode: WaitMode = 'timer'): Promise<T> {
  if (mode === 'spin') return p;
  if (pending++ === 0) {
    waitStart = performance.now();
    install();
  }
  try {
    return await p;
  } finally {
    if (--pending === 0) uninstall();
  }
}

/**
 * CPU seconds used so far by this process's main thread (Linux: /proc/self/task/<pid>/stat),
 * or null where that is not readable. Lets a benchmark show what a GPU wait costs the CPU.
 */
export function mainThreadCpuSeconds(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the name: state is index 0, utime 11, stime 12 (in clock ticks, 100 Hz).
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}
