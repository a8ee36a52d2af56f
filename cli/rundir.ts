// Run directories: every CLI run writes runs/<name>/ with config.json, results.json,
// metrics.csv, report.md and SVG plots. JSON and reports are written atomically.
import { mkdirSync, writeFileSync, renameSync, appendFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FlagSpec } from './args.ts';

/** The --name and --out flags of every command that writes a run directory. */
export const RUN_FLAGS: Record<string, FlagSpec> = {
  name: { type: 'string', help: 'run name (directory under --out)' },
  out: { type: 'string', help: 'output directory for runs', default: 'runs' },
};

function atomicWrite(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export class RunDir {
  readonly dir: string;
  private csvHeaders = new Map<string, string[]>();

  constructor(name: string, base = 'runs') {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`kinkless: run name must use letters, digits, '.', '_' or '-', got "${name}"`);
    this.dir = resolve(base, name);
    mkdirSync(this.dir, { recursive: true });
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  writeJson(file: string, obj: unknown): void {
    atomicWrite(this.path(file), `${JSON.stringify(obj, null, 2)}\n`);
  }

  writeText(file: string, text: string): void {
    atomicWrite(this.path(file), text);
  }

  /** Append one row to a CSV file (default metrics.csv); the file's first row fixes its columns. */
  metric(row: Record<string, number | string | undefined>, file = 'metrics.csv'): void {
    const p = this.path(file);
    let header = this.csvHeaders.get(file);
    if (!header) {
      header = Object.keys(row);
      this.csvHeaders.set(file, header);
      if (!existsSync(p)) writeFileSync(p, `${header.join(',')}\n`);
    }
    const cells = header.map((k) => {
      const v = row[k];
      if (v === undefined) return '';
      return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(6)) : `"${String(v).replace(/"/g, '""')}"`;
    });
    appendFileSync(p, `${cells.join(',')}\n`);
  }
}

/** A default run name: <prefix>-YYYYMMDD-HHMMSS. */
export function defaultRunName(prefix: string): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${prefix}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}
