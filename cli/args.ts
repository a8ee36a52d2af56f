// Flag parsing for the CLI: typed flags with defaults and help text, values from the
// command line or a JSON config file (--config), clear errors on unknown flags and bad values.
import { readFileSync } from 'node:fs';

export type FlagType = 'string' | 'int' | 'number' | 'bool' | 'list';

export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: string | number | boolean | string[];
  /** Allowed values (string flags). */
  choices?: string[];
  min?: number;
  max?: number;
}

export type Flags = Record<string, string | number | boolean | string[] | undefined>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function convert(cmd: string, name: string, spec: FlagSpec, raw: unknown, from: string): string | number | boolean | string[] {
  const where = `${cmd}: ${from} --${kebab(name)}`;
  switch (spec.type) {
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new UsageError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'int':
    case 'number': {
      const v = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(v) || (spec.type === 'int' && !Number.isInteger(v))) {
        throw new UsageError(`${where}: expected ${spec.type === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`);
      }
      if (spec.min !== undefined && v < spec.min) throw new UsageError(`${where}: must be >= ${spec.min}, got ${v}`);
      if (spec.max !== undefined && v > spec.max) throw new UsageError(`${where}: must be <= ${spec.max}, got ${v}`);
      return v;
    }
    case 'list': {
      const arr = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : null;
      if (!arr) throw new UsageError(`${where}: expected a comma-separated list, got ${JSON.stringify(raw)}`);
      if (spec.choices) for (const a of arr) if (!spec.choices.includes(a)) throw new UsageError(`${where}: "${a}" is not one of ${spec.choices.join(', ')}`);
      return arr;
    }
    default: {
      if (typeof raw !== 'string') throw new UsageError(`${where}: expected a string, got ${JSON.stringify(raw)}`);
      if (spec.choices && !spec.choices.includes(raw)) throw new UsageError(`${where}: expected one of ${spec.choices.join(', ')}, got "${raw}"`);
      return raw;
    }
  }
}

/** The one positional argument of `cmd` must be `name` (the `kind` of thing it names, e.g. "study"). */
export function expectOneName(cmd: string, kind: string, name: string, positional: string[]): void {
  if (positional[0] !== name || positional.length !== 1) throw new UsageError(`${cmd}: expected the ${kind} name "${name}", got ${positional.length ? `"${positional.join(' ')}"` : 'nothing'}`);
}

/** Parse argv against specs. Precedence: command line > --config file > defaults. */
export function parseFlags(cmd: string, argv: string[], specs: Record<string, FlagSpec>): { flags: Flags; positional: string[]; help: boolean } {
  const byKebab = new Map(Object.keys(specs).map((k) => [kebab(k), k]));
  const flags: Flags = {};
  const positional: string[] = [];
  let configPath: string | undefined;
  let help = false;
  const cli: Flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    let [key, val] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (key === 'config') {
      configPath = val ?? argv[++i];
      if (!configPath) throw new UsageError(`${cmd}: --config needs a file path`);
      continue;
    }
    let name = byKebab.get(key);
    if (!name && key.startsWith('no-') && specs[byKebab.get(key.slice(3)) ?? '']?.type === 'bool') {
      name = byKebab.get(key.slice(3))!;
      val = 'false';
    }
    if (!name) {
      const known = [...byKebab.keys()].map((k) => `--${k}`).join(', ');
      throw new UsageError(`${cmd}: unknown option "--${key}". Known options: ${known}, --config, --help`);
    }
    const spec = specs[name]!;
    if (val === undefined) {
      if (spec.type === 'bool') val = 'true';
      else {
        val = argv[++i];
        if (val === undefined) throw new UsageError(`${cmd}: --${key} needs a value`);
      }
    }
    cli[name] = convert(cmd, name, spec, val, 'option');
  }
  if (configPath) {
    let obj: unknown;
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8');
    } catch (e) {
      throw new UsageError(`${cmd}: cannot read config file "${configPath}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${cmd}: config file "${configPath}" is not valid JSON: ${(e as Error).message}`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new UsageError(`${cmd}: config file "${configPath}" must hold a JSON object`);
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      const name = specs[k] ? k : byKebab.get(k);
      if (!name) throw new UsageError(`${cmd}: config file "${configPath}": unknown key "${k}". Known keys: ${Object.keys(specs).join(', ')}`);
      flags[name] = convert(cmd, name, specs[name]!, v, `config file "${configPath}" key`);
    }
  }
  Object.assign(flags, cli);
  for (const [k, s] of Object.entries(specs)) if (flags[k] === undefined && s.default !== undefined) flags[k] = s.default;
  return { flags, positional, help };
}

/** Help text: usage line, description, options table, examples. */
export function helpText(usage: string, description: string, specs: Record<string, FlagSpec>, examples: string[]): string {
  const rows = Object.entries(specs).map(([k, s]) => {
    const left = `  --${kebab(k)}${s.type === 'bool' ? '' : ` <${s.type === 'list' ? 'a,b,...' : s.type}>`}`;
    const def = s.default !== undefined ? ` (default: ${Array.isArray(s.default) ? s.default.join(',') : s.default})` : '';
    const ch = s.choices ? ` [${s.choices.join('|')}]` : '';
    return `${left.padEnd(30)} ${s.help}${ch}${def}`;
  });
  rows.push(`${'  --config <file.json>'.padEnd(30)} read options from a JSON object (command-line flags win)`);
  rows.push(`${'  --help'.padEnd(30)} show this help`);
  return `Usage: ${usage}\n\n${description}\n\nOptions:\n${rows.join('\n')}\n\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}\n`;
}
