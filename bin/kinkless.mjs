#!/usr/bin/env node
// CLI launcher. In a checkout (TypeScript sources present and tsx installed) it runs
// cli/kinkless.ts through tsx; in an installed package it runs the built JavaScript
// (dist/cli/kinkless.js) with plain Node. The work runs in a child process whose stderr
// drops Dawn's informational log lines (bin/stderr_filter.mjs); KINKLESS_DEBUG=1 runs it
// in this process with everything shown.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dawnLogsWanted, runFiltered } from './stderr_filter.mjs';

const CHILD = 'KINKLESS_CLI_CHILD';

if (process.env[CHILD] !== '1' && !dawnLogsWanted()) {
  const self = fileURLToPath(import.meta.url);
  process.exitCode = await runFiltered(process.execPath, [...process.execArgv, self, ...process.argv.slice(2)], { env: { ...process.env, [CHILD]: '1' } });
} else {
  delete process.env[CHILD];
  const src = new URL('../cli/kinkless.ts', import.meta.url);
  const built = new URL('../dist/cli/kinkless.js', import.meta.url);
  let tsx = null;
  if (existsSync(src) && process.env.KINKLESS_USE_DIST !== '1') {
    try {
      tsx = await import('tsx/esm/api');
    } catch {
      tsx = null; // no tsx (an install without devDependencies): use the build
    }
  }
  if (tsx) {
    tsx.register();
    await import(src.href);
  } else if (existsSync(built)) {
    await import(built.href);
  } else {
    console.error('kinkless: dist/cli/kinkless.js is missing; build it with `npm run build` (or install tsx to run the TypeScript sources)');
    process.exitCode = 1;
  }
}
