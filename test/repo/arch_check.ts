// Architecture checker (GPU-free, pure): given the repository's source files as
// { path, text }, reports violations of the layering rules of docs/architecture.md:
//   wgsl        WGSL source (shader attributes, storage declarations, elementwise
//               expression strings) in a string literal outside kernels/
//   kernels     an import of kernels/ from nn/, adversarial/ or cli/
//   layering    an import against the layer order kernels <- engine <- nn <- adversarial
//               <- bench <- cli (which also rules out cycles between top-level folders)
//   cycle       a cycle in the graph of imports between top-level folders
//   size        a production file over 600 lines
// An allow-list entry { rule, file, why } excuses one file from one rule.

export interface SourceFile {
  /** Repository-relative path with forward slashes, e.g. 'engine/ops/threat.ts'. */
  path: string;
  text: string;
}

export type Rule = 'wgsl' | 'kernels' | 'layering' | 'cycle' | 'size';

export interface Violation {
  rule: Rule;
  file: string;
  message: string;
}

export interface Allowed {
  rule: Rule;
  file: string;
  why: string;
}

/** Top-level folders in layer order: each may import only from folders before it (and itself). */
export const LAYERS = ['kernels', 'engine', 'nn', 'adversarial', 'bench', 'cli'] as const;
export type Layer = (typeof LAYERS)[number];

export const MAX_LINES = 600;

/** Folders whose files are production code (size rule); tests and docs are exempt. */
const PRODUCTION = new Set<string>([...LAYERS, 'scripts', 'bin']);

/** Signs of WGSL inside a string: shader syntax, or an elementwise expression (a0.., s.x, T(..)). */
const WGSL_SIGNS: [RegExp, string][] = [
  [/@compute\b/, '@compute'],
  [/@group\s*\(/, '@group('],
  [/@binding\s*\(/, '@binding('],
  [/@workgroup_size\b/, '@workgroup_size'],
  [/\bvar\s*<\s*(storage|uniform|workgroup|private)\b/, 'var<storage|uniform|...>'],
  [/\bfn\s+[A-Za-z_]\w*\s*\(/, 'a WGSL fn declaration'],
  [/\barray\s*<\s*(f32|i32|u32|vec[234])/, 'array<f32 ...>'],
  [/\bvec[234]\s*<\s*(f32|i32|u32)\s*>/, 'vec4<f32>'],
  [/\bselect\s*\(/, 'select(...)'],
  [/\bT\s*\(\s*[-\w.]+\s*\)/, 'T(...) (elementwise value type)'],
  [/\bs\.[xyzw]\b/, 's.x (elementwise scalars)'],
  [/(^|[^\w$])a[0-3]\s*([-+*/<>=!]|$)|[-+*/(,]\s*a[0-3]\b/, 'a0..a3 (elementwise inputs)'],
];

/** The string literals of a TS/JS source (comments skipped; template text taken whole). */
export function stringLiterals(text: string): { value: string; line: number }[] {
  const out: { value: string; line: number }[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (text[k] === '\n') line++;
      i = stop;
    } else if (c === '"' || c === "'" || c === '`') {
      const start = line;
      let v = '';
      i++;
      while (i < n && text[i] !== c) {
        if (text[i] === '\\') {
          v += text[i + 1] ?? '';
          i += 2;
          continue;
        }
        if (text[i] === '\n') {
          if (c !== '`') break; // unterminated: not a string after all
          line++;
        }
        v += text[i];
        i++;
      }
      i++;
      out.push({ value: v, line: start });
    } else i++;
  }
  return out;
}

/** Module specifiers of import / export-from / dynamic import statements. */
export function importSpecifiers(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push((m[1] ?? m[2])!);
  return out;
}

/** The repository path a relative specifier resolves to (null for packages / node: modules). */
export function resolveImport(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const parts = from.split('/').slice(0, -1);
  for (const p of spec.split('/')) {
    if (p === '.' || p === '') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return parts.join('/');
}

function topFolder(path: string): string {
  const i = path.indexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function isLayer(f: string): f is Layer {
  return (LAYERS as readonly string[]).includes(f);
}

/** Cycles (as folder lists) in a directed graph, one per strongly connected component. */
export function folderCycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let k = 0;
  const visit = (v: string): void => {
    index.set(v, k);
    low.set(v, k++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** Check a file set; allowed entries suppress matching violations. */
export function checkArchitecture(files: SourceFile[], allowed: Allowed[] = []): Violation[] {
  const found: Violation[] = [];
  const edges = new Map<string, Set<string>>();
  for (const f of files) {
    if (!/\.(ts|mts|mjs|js)$/.test(f.path)) continue;
    const top = topFolder(f.path);
    if (PRODUCTION.has(top)) {
      const lines = f.text.split('\n').length - (f.text.endsWith('\n') ? 1 : 0);
      if (lines > MAX_LINES) found.push({ rule: 'size', file: f.path, message: `${lines} lines (production files stay under ${MAX_LINES})` });
    }
    if (top !== 'kernels' && top !== 'test') {
      for (const s of stringLiterals(f.text)) {
        const hit = WGSL_SIGNS.find(([re]) => re.test(s.value));
        if (hit) found.push({ rule: 'wgsl', file: f.path, message: `line ${s.line}: WGSL outside kernels/ (${hit[1]}): ${JSON.stringify(s.value.slice(0, 60))}` });
      }
    }
    for (const spec of importSpecifiers(f.text)) {
      const target = resolveImport(f.path, spec);
      if (target === null) continue;
      const to = topFolder(target);
      if (to === 'kernels' && (top === 'nn' || top === 'adversarial' || top === 'cli')) {
        found.push({ rule: 'kernels', file: f.path, message: `imports ${target} (only engine/ and bench/ may use kernels/)` });
      }
      if (isLayer(top) && isLayer(to) && to !== top) {
        if (!edges.has(top)) edges.set(top, new Set());
        edges.get(top)!.add(to);
        if (LAYERS.indexOf(to) > LAYERS.indexOf(top)) found.push({ rule: 'layering', file: f.path, message: `${top}/ imports ${target} (${to}/ is above ${top}/ in ${LAYERS.join(' <- ')})` });
      }
    }
  }
  for (const c of folderCycles(edges)) found.push({ rule: 'cycle', file: c.join(', '), message: `import cycle between top-level folders ${c.join(' <-> ')}` });
  return found.filter((v) => !allowed.some((a) => a.rule === v.rule && a.file === v.file));
}
