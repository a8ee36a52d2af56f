// Kernel descriptors: each kernel is described once here in kernels/ by its name, a cache
// key built from its compile-time parameters, its storage bindings and a WGSL builder.
// The engine looks pipelines up by (name, key) and calls the builder only on a miss, so
// no dispatch rebuilds or hashes WGSL text. Pure: imports nothing from engine/.

export type Access = 'read' | 'read_write';

/** One storage buffer binding, at @binding(1), @binding(2), ... in declaration order. */
export interface Binding {
  /** Name shared with the WGSL variable and the op (x, w, dy, dx, ...). */
  name: string;
  access: Access;
}

/** A kernel family: everything that may vary with `P` must be reflected in `key(P)`. */
export interface KernelSpec<P> {
  /** snake_case name of the family; unique across descriptors. */
  name: string;
  /** Dispatch name (errors, profiles); defaults to `name`. */
  label?: (p: P) => string;
  /** Short key, unique per distinct WGSL source the builder can produce. */
  key: (p: P) => string;
  /** Storage bindings, in order (uniforms, if any, sit at @binding(0)). */
  bindings: (p: P) => Binding[];
  /** Full WGSL source with entry point `main`. */
  build: (p: P) => string;
}

/** One concrete kernel: a family with its parameters bound. Cheap to create. */
export interface Kernel {
  /** Family name (the descriptor's). */
  readonly family: string;
  /** Dispatch name, used in errors and profiles. */
  readonly name: string;
  /** Pipeline cache key: family plus the parameters' key. */
  readonly cacheKey: string;
  readonly bindings: readonly Binding[];
  /** Builds the WGSL (called by the engine on a pipeline cache miss). */
  build(): string;
}

const families = new Set<string>();

/** Describe a kernel family once; returns the factory the engine dispatches with. */
export function defineKernel<P>(spec: KernelSpec<P>): (p: P) => Kernel {
  if (!/^[a-z][a-z0-9_]*$/.test(spec.name)) throw new Error(`kinkless: defineKernel: name must be snake_case, got "${spec.name}"`);
  if (families.has(spec.name)) throw new Error(`kinkless: defineKernel: kernel family "${spec.name}" is defined twice`);
  families.add(spec.name);
  return (p: P): Kernel => ({
    family: spec.name,
    name: spec.label ? spec.label(p) : spec.name,
    cacheKey: `${spec.name}|${spec.key(p)}`,
    bindings: spec.bindings(p),
    build: () => spec.build(p),
  });
}

/** Shorthand for binding lists: reads('x', 'w'), writes('y'). */
export function reads(...names: string[]): Binding[] {
  return names.map((name) => ({ name, access: 'read' as const }));
}
export function writes(...names: string[]): Binding[] {
  return names.map((name) => ({ name, access: 'read_write' as const }));
}

/**
 * The storage bindings a WGSL source declares, in binding order (for checking a
 * descriptor's declared bindings against the source it built).
 */
export function declaredBindings(wgsl: string): { binding: number; access: Access }[] {
  const out: { binding: number; access: Access }[] = [];
  const re = /@binding\((\d+)\)\s*var<storage\s*(?:,\s*(read_write|read))?\s*>/g;
  for (let m = re.exec(wgsl); m; m = re.exec(wgsl)) out.push({ binding: Number(m[1]), access: (m[2] as Access | undefined) ?? 'read' });
  return out.sort((a, b) => a.binding - b.binding);
}
