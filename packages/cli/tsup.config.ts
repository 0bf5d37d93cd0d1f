import { defineConfig } from 'tsup';
import { packageBuild } from '../../scripts/tsupPackage';

// The library entry (as every package) and the `belfry` bin (ESM, with its shebang).
export default defineConfig([
  packageBuild,
  {
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
