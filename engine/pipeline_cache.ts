// Compute pipelines created once and cached by their kernel descriptor's key (family +
// compile-time parameters); the WGSL is built only on a miss (`builds` counts them).
// Creation runs inside validation error scopes; a failure names the kernel and shows its
// WGSL. On a miss the storage bindings the source declares (index, access and variable
// name) are checked against the descriptor's. With KINKLESS_VERIFY_KERNEL_KEYS=1 (the test
// suite sets it) every hit on this device's cache rebuilds the source and throws if the key
// maps to a different WGSL or binding list: two different kernels must never share a key.
import type { Device } from './device.ts';
import { bindingMismatch, type Kernel } from '../kernels/kernel.ts';

export class ShaderError extends Error {
  constructor(kernel: string, detail: string, wgsl: string) {
    const numbered = wgsl
      .split('\n')
      .map((l, i) => `${String(i + 1).padStart(4)}| ${l}`)
      .join('\n');
    super(`kinkless: kernel "${kernel}" failed to compile or validate: ${detail}\n--- WGSL of ${kernel} ---\n${numbered}`);
    this.name = 'ShaderError';
  }
}

export class PipelineCache {
  private cache = new Map<string, GPUComputePipeline>();
  /** Under key verification: the WGSL and binding signature each key was built from. */
  private sources = new Map<string, { wgsl: string; bindings: string; name: string }>();
  private pending: Promise<void>[] = [];
  private failed: ShaderError | null = null;
  private readonly verifyKeys = process.env.KINKLESS_VERIFY_KERNEL_KEYS === '1';
  /** Pipelines created so far (a miss each; profiles count them). */
  created = 0;
  /** Times a descriptor's WGSL builder ran for a pipeline (misses only; verification rebuilds are not counted). */
  builds = 0;

  constructor(
    private readonly device: Device,
    private readonly dump: boolean,
  ) {}

  get size(): number {
    return this.cache.size;
  }

  /** Get (or create) the pipeline of a kernel descriptor. */
  get(kernel: Kernel): GPUComputePipeline {
    if (this.failed) throw this.failed;
    const key = kernel.cacheKey;
    const hit = this.cache.get(key);
    if (hit) {
      if (this.verifyKeys) this.verify(kernel);
      return hit;
    }
    this.builds++;
    const wgsl = kernel.build();
    const bad = bindingMismatch(kernel.bindings, wgsl);
    if (bad) throw new ShaderError(kernel.name, `its storage bindings do not match its descriptor's: ${bad}`, wgsl);
    if (this.verifyKeys) this.sources.set(key, { wgsl, bindings: signature(kernel), name: kernel.name });
    return this.create(key, kernel.name, wgsl);
  }

  /** Key verification: a hit must rebuild to the very source and bindings the key was first built from. */
  private verify(kernel: Kernel): void {
    const first = this.sources.get(kernel.cacheKey);
    if (!first) return;
    const wgsl = kernel.build();
    const sig = signature(kernel);
    if (first.wgsl !== wgsl || first.bindings !== sig) {
      const what = first.wgsl !== wgsl ? `WGSL sources (first difference at line ${firstDiffLine(first.wgsl, wgsl)})` : `binding lists ([${first.bindings}] vs [${sig}])`;
      throw new Error(
        `kinkless: kernel "${kernel.name}": cache key "${kernel.cacheKey}" maps to two different ${what}; it was first built for kernel "${first.name}". The descriptor's key() misses a parameter`,
      );
    }
  }

  private create(key: string, name: string, wgsl: string): GPUComputePipeline {
    this.created++;
    if (this.dump) process.stderr.write(`--- kinkless shader: ${name} ---\n${wgsl}\n`);
    const gpu = this.device.gpu;
    gpu.pushErrorScope('validation');
    const module = gpu.createShaderModule({ code: wgsl, label: name });
    const pipeline = gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: name });
    const scope = gpu.popErrorScope();
    const check = (async () => {
      const err = await scope;
      if (!err) return;
      let detail = err.message;
      try {
        const info = await module.getCompilationInfo();
        const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}`);
        if (msgs.length) detail = msgs.join('; ');
      } catch {
        /* keep the scope's message */
      }
      this.cache.delete(key);
      this.sources.delete(key);
      this.failed = new ShaderError(name, detail, wgsl);
    })();
    this.pending.push(check);
    this.cache.set(key, pipeline);
    return pipeline;
  }

  /** Await the validation of every pipeline created so far; throws the first failure. */
  async checkPending(): Promise<void> {
    const p = this.pending.splice(0);
    if (p.length) await this.device.wait(Promise.all(p));
    if (this.failed) {
      const f = this.failed;
      this.failed = null;
      throw f;
    }
  }

  /** Create the pipeline now and wait for its validation (used by tests and doctor). */
  async compile(kernel: Kernel): Promise<GPUComputePipeline> {
    const p = this.get(kernel);
    await this.checkPending();
    return p;
  }
}

function signature(k: Kernel): string {
  return k.bindings.map((b) => `${b.name}:${b.access}`).join(', ');
}

function firstDiffLine(a: string, b: string): number {
  const la = a.split('\n');
  const lb = b.split('\n');
  let i = 0;
  while (i < la.length && i < lb.length && la[i] === lb[i]) i++;
  return i + 1;
}
