// `npm run build` (and `prepare`): compiles the TypeScript sources to dist/ (JavaScript and
// .d.ts, relative imports rewritten from .ts to .js; tsconfig.build.json), then copies the
// non-TypeScript files the built code reads at run time (the PyTorch bench peer script).
import { rmSync, cpSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsPkg = createRequire(import.meta.url).resolve('typescript/package.json');
const tsc = join(dirname(tsPkg), 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
for (const f of ['bench/peers/torch_peer.py']) cpSync(join(root, f), join(dist, f));
