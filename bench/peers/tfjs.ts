// TF.js peer: TensorFlow.js's WebGPU backend on the same Dawn (`webgpu` package) adapter,
// in the same process, with its own GPUDevice. Loading follows the pitfalls recorded in
// docs/peers.md: Dawn's globals (GPUBufferUsage, ...) and `navigator.gpu` must
// exist BEFORE the backend module loads (it registers itself only when navigator.gpu is
// there), so both packages are imported dynamically afterwards; the umbrella package
// '@tensorflow/tfjs' is the one that registers gradients. The peer gets its own Dawn
// instance and adapter (one adapter creates one device).
// Also here: the small MNIST CNN in TF.js (NHWC; conv 1->32 3x3 valid + relu, conv 32->64
// 3x3 stride 2 valid + relu, dense 9216->10, softmax cross-entropy, plain SGD) with a
// standard training step and a fast-AT step (FGSM from a random start, then the step).
// Timing uses wall clock: `sync()` ends TF.js's open compute pass, submits its command
// encoder and waits for its queue (no readback).
import { gpuWait } from '../../engine/gpu_wait.ts';
import { createRequire } from 'node:module';
import { create, globals } from 'webgpu';
import { hostRand } from '../host_rand.ts';

type Tf = typeof import('@tensorflow/tfjs');
type TfTensor = import('@tensorflow/tfjs').Tensor;
type TfVariable = import('@tensorflow/tfjs').Variable;

export interface TfPeer {
  tf: Tf;
  /** '4.22.0' (tfjs umbrella) and the backend package's version. */
  version: string;
  backendVersion: string;
  /** What TF.js's adapter reports, e.g. "mesa/software". */
  adapter: string;
  /** Wait for every op queued on TF.js's device (submits its open command encoder). */
  sync(): Promise<void>;
}

interface WebGpuBackendInternals {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  adapterInfo?: { vendor?: string; architecture?: string };
}

let loaded: Promise<TfPeer> | null = null;

function pkgVersion(name: string): string {
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function load(): Promise<TfPeer> {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) if (g[k] === undefined) g[k] = v;
  const nav = g.navigator as { gpu?: unknown } | undefined;
  if (!nav?.gpu) {
    // NOTE: Node >= 21 has a read-only global navigator without `gpu`: redefine it.
    Object.defineProperty(globalThis, 'navigator', { value: { ...(nav ?? {}), gpu: create([]) }, configurable: true, writable: true });
  }
  let tf: Tf;
  try {
    tf = (await import('@tensorflow/tfjs')) as Tf;
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`the TF.js packages are not installed (npm install --save-dev @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu): ${(e as Error).message}`);
  }
  // Quiet TF.js's console hints about optimised builds.
  tf.env().set('PROD', true);
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed (no WebGPU adapter for TF.js)');
  await tf.ready();
  const be = tf.backend() as unknown as WebGpuBackendInternals;
  if (!be.device) throw new Error('the TF.js webgpu backend exposes no device');
  const info = be.adapterInfo ?? {};
  return {
    tf,
    version: tf.version.tfjs,
    backendVersion: pkgVersion('@tensorflow/tfjs-backend-webgpu'),
    adapter: `${info.vendor ?? '?'}/${info.architecture ?? '?'}`,
    async sync() {
      if (be.commandEncoder) {
        be.endComputePassEncoder();
        be.submitQueue();
      }
      // The peer's best setup: its wait leaves the CPU to the driver like ours does
      // (dawn.node's busy ticks would otherwise take a core from lavapipe; docs/software-gpu.md).
      await gpuWait(be.device.queue.onSubmittedWorkDone());
    },
  };
}

/** Load TF.js's WebGPU backend once; resolves to the peer or to { error } (the suite goes on without it). */
export async function loadTfjs(): Promise<{ peer: TfPeer; error?: undefined } | { peer?: undefined; error: string }> {
  loaded ??= load();
  try {
    return { peer: await loaded };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

// The benches' input stream (bench/host_rand.ts), re-exported for the peer benches.
export { hostRand };

/** The small MNIST CNN in TF.js with its training steps (inputs NHWC [N, 28, 28, 1], one-hot labels). */
export class TfSmallCnn {
  readonly vars: TfVariable[];
  private readonly opt;
  constructor(
    private readonly tf: Tf,
    lr = 0.01,
    seed = 1,
  ) {
    const he = (shape: number[], fanIn: number, s: number) => tf.variable(tf.tensor(hostRand(shape.reduce((a, b) => a * b, 1), s, Math.sqrt(6 / fanIn)), shape));
    this.vars = [he([3, 3, 1, 32], 9, seed), tf.variable(tf.zeros([32])), he([3, 3, 32, 64], 288, seed + 1), tf.variable(tf.zeros([64])), he([9216, 10], 9216, seed + 2), tf.variable(tf.zeros([10]))];
    this.opt = tf.train.sgd(lr);
  }

  logits(x: TfTensor): TfTensor {
    const tf = this.tf;
    const [w1, b1, w2, b2, w3, b3] = this.vars as [TfVariable, TfVariable, TfVariable, TfVariable, TfVariable, TfVariable];
    const h1 = tf.relu(tf.add(tf.conv2d(x as import('@tensorflow/tfjs').Tensor4D, w1 as import('@tensorflow/tfjs').Tensor4D, 1, 'valid'), b1));
    const h2 = tf.relu(tf.add(tf.conv2d(h1 as import('@tensorflow/tfjs').Tensor4D, w2 as import('@tensorflow/tfjs').Tensor4D, 2, 'valid'), b2));
    return tf.add(tf.matMul(tf.reshape(h2, [x.shape[0]!, 9216]), w3), b3);
  }

  loss(x: TfTensor, y1h: TfTensor): TfTensor {
    return this.tf.losses.softmaxCrossEntropy(y1h, this.logits(x)) as TfTensor;
  }

  /** One SGD step on (x, y1h); everything it allocates is freed. */
  step(x: TfTensor, y1h: TfTensor): void {
    this.tf.tidy(() => {
      this.opt.minimize(() => this.loss(x, y1h) as import('@tensorflow/tfjs').Scalar, false, this.vars);
    });
  }

  /** Fast-AT step (Wong et al.): delta ~ U(-eps, eps), one signed-gradient step of alpha, project, then step(). */
  fastAtStep(x: TfTensor, y1h: TfTensor, eps: number, alpha: number, seed: number): void {
    const tf = this.tf;
    const xAdv = tf.tidy(() => {
      const x0 = tf.clipByValue(tf.add(x, tf.randomUniform(x.shape, -eps, eps, 'float32', seed)), 0, 1);
      const g = tf.grad((xa: TfTensor) => this.loss(xa, y1h))(x0);
      const delta = tf.clipByValue(tf.sub(tf.add(x0, tf.mul(tf.sign(g), alpha)), x), -eps, eps);
      return tf.clipByValue(tf.add(x, delta), 0, 1);
    });
    this.step(xAdv, y1h);
    xAdv.dispose();
  }

  dispose(): void {
    for (const v of this.vars) v.dispose();
    this.opt.dispose();
  }
}

/** NCHW host images [N, 1, 28, 28] are NHWC [N, 28, 28, 1] as they are (one channel). */
export function tfBatch(tf: Tf, images: Float32Array, labels: Int32Array, n: number): { x: TfTensor; y1h: TfTensor } {
  const x = tf.tensor4d(images.subarray(0, n * 784), [n, 28, 28, 1]);
  const y1h = tf.tidy(() => tf.oneHot(tf.tensor1d(labels.subarray(0, n), 'int32'), 10).toFloat());
  return { x, y1h };
}
