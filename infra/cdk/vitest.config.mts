import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Synthesizing a stack takes a second or two on a small machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
