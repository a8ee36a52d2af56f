#!/usr/bin/env node
// `node bin/quiet.mjs <command> [args...]`: runs a command with Dawn's informational log
// lines filtered out of its stderr (npm test runs vitest through it). KINKLESS_DEBUG=1
// shows them. See stderr_filter.mjs.
import { runFiltered } from './stderr_filter.mjs';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: node bin/quiet.mjs <command> [args...]');
  process.exit(2);
}
try {
  process.exitCode = await runFiltered(cmd, args);
} catch (e) {
  console.error(`quiet.mjs: cannot run "${cmd}": ${e.message}`);
  process.exitCode = 127;
}
