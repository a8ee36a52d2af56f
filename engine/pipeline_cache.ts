// Compute pipelines created once and cached by their kernel descriptor's key (family +
// compile-time parameters); the WGSL is built only on a miss. Creation runs inside
// validation error scopes; a failure names the kernel and shows its WGSL. On a miss the
// bindings the source declares are checked against the descriptor's. With
// KINKLESS_VERIFY_KERNEL_KEYS=1 (the test suite sets it) every hit rebuilds the source
// and throws if the key maps to a different WGSL (a key that misses a parameter).
import type { Device } from './device.ts';
import { declaredBindings, type Kernel } from '../kernels/kernel.ts';

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
  private sources = new Map<string, string>();
  private pending: Promise<void>[] = [];
  private failed: ShaderError | null = null;
  private readonly verifyKeys = process.env.KINKLESS_VERIFY_KERNEL_KEYS === '1';
  /** Pipelines created so far (a miss each; profiles count them). */
  created = 0;

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
      if (this.verifyKeys && this.sources.get(key) !== kernel.build()) {
        throw new Error(`kinkless: kernel "${kernel.name}": cache key "${key}" maps to two different WGSL sources; its descriptor's key() misses a parameter`);
      }
      return hit;
    }
    const wgsl = kernel.build();
    const declared = declaredBindings(wgsl);
    const ok = declared.length === kernel.bindings.length && declared.every((d, i) => d.binding === i + 1 && d.access === kernel.bindings[i]!.access);
    if (!ok) {
      const want = kernel.bindings.map((b, i) => `${i + 1}:${b.name}(${b.access})`).join(', ');
      const got = declared.map((d) => `${d.binding}(${d.access})`).join(', ');
      throw new ShaderError(kernel.name, `declared bindings [${want}] do not match the WGSL's storage bindings [${got}]`, wgsl);
    }
    return this.create(key, kernel.name, wgsl);
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
    if (this.verifyKeys) this.sources.set(key, wgsl);
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
