import { defineConfig } from 'tsup';

const shared = {
  entry: {
    index: 'src/index.ts',
    'config/index': 'src/config/index.ts',
    'driver/index': 'src/driver/index.ts',
    'gate/index': 'src/gate/index.ts',
    'store/index': 'src/store/index.ts',
  },
  dts: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
} as const;

export default defineConfig([
  { ...shared, format: ['esm'], clean: true },
  // nanoid is ESM-only; bundling it into the CommonJS build keeps `require('@belfry/core')`
  // working on every Node 20, not only those that can require ESM. Splitting makes the two
  // entries share one copy of each class, so `instanceof StoreError` holds across subpaths.
  { ...shared, format: ['cjs'], noExternal: ['nanoid'], splitting: true },
]);
