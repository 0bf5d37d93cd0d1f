import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';
import { packageBuild } from '../../scripts/tsupPackage';

const { version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')) as {
  version: string;
};
/** `belfry --version` says what was built. */
const define = { __BELFRY_VERSION__: JSON.stringify(version) };

// The library entry (as every package) and the `belfry` bin (ESM, with its shebang).
export default defineConfig([
  { ...packageBuild, define },
  {
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
    banner: { js: '#!/usr/bin/env node' },
    define,
  },
]);
