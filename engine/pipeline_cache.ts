// Compute pipelines created once and cached by their exact WGSL source. Creation runs
// inside validation error scopes; a failure names the kernel and shows its WGSL.
import type { Device } from './device.ts';

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
  private pending: Promise<void>[] = [];
  private failed: ShaderError | null = null;

  constructor(
    private readonly device: Device,
    private readonly dump: boolean,
  ) {}

  get size(): number {
    return this.cache.size;
  }

  /** Get (or create) the pipeline for `wgsl` with entry point `main`. */
  get(name: string, wgsl: string): GPUComputePipeline {
    if (this.failed) throw this.failed;
    const hit = this.cache.get(wgsl);
    if (hit) return hit;
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
      this.cache.delete(wgsl);
      this.failed = new ShaderError(name, detail, wgsl);
    })();
    this.pending.push(check);
    this.cache.set(wgsl, pipeline);
    return pipeline;
  }

  /** Await the validation of every pipeline created so far; throws the first failure. */
  async checkPending(): Promise<void> {
    const p = this.pending.splice(0);
    if (p.length) await Promise.all(p);
    if (this.failed) {
      const f = this.failed;
      this.failed = null;
      throw f;
    }
  }

  /** Create the pipeline now and wait for its validation (used by tests and doctor). */
  async compile(name: string, wgsl: string): Promise<GPUComputePipeline> {
    const p = this.get(name, wgsl);
    await this.checkPending();
    return p;
  }
}
