import { defineConfig } from 'vitest/config';

// Packages resolve each other to source through the `@belfry/source` export condition, so tests
// run without a build. Node-side tests resolve through Vite's SSR environment, hence both.
const conditions = ['@belfry/source', 'module', 'node', 'import', 'default'];

const project = (name: string, dir = 'packages') => ({
  extends: true as const,
  test: {
    name,
    root: `${dir}/${name}`,
    include: ['test/**/*.test.ts'],
  },
});

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@belfry/source'] } },
  test: {
    restoreMocks: true,
    projects: [
      project('core'),
      project('testing'),
      project('driver-memory'),
      project('driver-tmux'),
      project('gate-timer'),
      project('gate-human'),
      project('gate-github'),
      project('store-sqlite'),
      project('cli'),
      // The custom-gate example runs the gate conformance suite on its own evaluator.
      project('custom-gate', 'examples'),
    ],
  },
});
