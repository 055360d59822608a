import { defineConfig } from 'vitest/config';

// CI and the developers' machines have 2 cores: two test files at a time, generous timeouts
// for the tests that run a real (tiny) model on the CPU.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
