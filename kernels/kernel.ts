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

/** A storage binding as declared in WGSL source. */
export interface DeclaredBinding {
  binding: number;
  access: Access;
  /** The variable's name in `var<storage, ...> name: ...`. */
  name: string;
}

/**
 * The storage bindings a WGSL source declares, in binding order (for checking a
 * descriptor's declared bindings, names included, against the source it built).
 */
export function declaredBindings(wgsl: string): DeclaredBinding[] {
  const out: DeclaredBinding[] = [];
  const re = /@binding\((\d+)\)\s*var<storage\s*(?:,\s*(read_write|read))?\s*>\s*([A-Za-z_][A-Za-z0-9_]*)/g;
  for (let m = re.exec(wgsl); m; m = re.exec(wgsl)) out.push({ binding: Number(m[1]), access: (m[2] as Access | undefined) ?? 'read', name: m[3]! });
  return out.sort((a, b) => a.binding - b.binding);
}

/**
 * Compare a descriptor's declared bindings with the ones its WGSL declares. Returns null
 * when they agree (same count; binding i+1 has the i-th name and access), else a message
 * naming the first mismatching binding index, what was expected and what was found.
 */
export function bindingMismatch(declared: readonly Binding[], wgsl: string): string | null {
  const found = declaredBindings(wgsl);
  const n = Math.max(declared.length, found.length);
  for (let i = 0; i < n; i++) {
    const want = declared[i];
    const got = found[i];
    const fmt = (b: { name: string; access: Access } | undefined) => (b ? `${b.name} (${b.access})` : 'nothing');
    if (got && got.binding !== i + 1) {
      return `@binding(${i + 1}): expected ${fmt(want)}, found the next storage binding at @binding(${got.binding}) (${fmt(got)}); storage bindings must be numbered 1, 2, ... without gaps`;
    }
    if (!want || !got || want.name !== got.name || want.access !== got.access) {
      return `@binding(${i + 1}): expected ${fmt(want)}, found ${fmt(got)} in the WGSL (descriptor declares [${declared.map((b) => b.name).join(', ')}], WGSL declares [${found.map((b) => b.name).join(', ')}])`;
    }
  }
  return null;
}
