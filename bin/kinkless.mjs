#!/usr/bin/env node
// CLI launcher: registers tsx so the TypeScript sources run directly, then starts cli/kinkless.ts.
import { register } from 'tsx/esm/api';

register();
await import('../cli/kinkless.ts');
