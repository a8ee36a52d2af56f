// Test runner config: GPU tests share one software device per file; run files serially
// because lavapipe already uses every core.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The 1000-step stress test is opt-in: KINKLESS_STRESS=1 npx vitest run test/reliability/stress.test.ts
    exclude: process.env.KINKLESS_STRESS === '1' ? [] : ['test/reliability/stress.test.ts', '**/node_modules/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    // Every pipeline-cache hit rebuilds its WGSL and checks that the key maps to one source.
    env: { KINKLESS_VERIFY_KERNEL_KEYS: '1' },
    reporters: ['default'],
  },
});
