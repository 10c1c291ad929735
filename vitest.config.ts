import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Namespace (e2e) tests share the kernel; each file isolates itself with unique names,
    // but running files in many parallel workers on a 2-core CI machine only adds timing noise.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
