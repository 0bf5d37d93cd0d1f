import { defineConfig, type Options } from 'tsup';

/**
 * The build of a package with one entry point (`src/index.ts`): ESM and CommonJS with their
 * declarations, for Node 20. `@belfry/core` has its own (several entries, a bundled nanoid).
 */
export const packageBuild: Options = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
};

export default defineConfig(packageBuild);
