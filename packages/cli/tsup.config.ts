import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';
import { packageBuild } from '../../scripts/tsupPackage';

const { version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')) as {
  version: string;
};
/** `belfry --version` says what was built. */
const define = { __BELFRY_VERSION__: JSON.stringify(version) };

// The library entry (as every package) and the `belfry` bin (ESM, with its shebang).
//
// The bin starts fast: belfry's packages (from their sources) and the pure-JS libraries are
// bundled, so a command reads a few files instead of resolving hundreds, and each command group
// is a chunk loaded only when used: `belfry status` never reads the town's tree, the drivers or
// the store. The code every command runs imports core through `@belfry/core/config` and
// `@belfry/core/driver` only: esbuild assigns whole files to chunks, so one import of core's index
// there would put all of core in the first chunk. Native better-sqlite3 and the daemon's HTTP
// server (imported dynamically) stay ordinary dependencies.
export default defineConfig([
  { ...packageBuild, define },
  {
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    outDir: 'dist/bin',
    splitting: true,
    // Less to read and compile at each start (the source map gives a stack trace its names).
    minify: true,
    sourcemap: true,
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
    noExternal: [/^@belfry\//, 'commander', 'yaml', 'xstate', 'nanoid', 'eventemitter3'],
    external: ['better-sqlite3', 'fastify', '@fastify/swagger'],
    esbuildOptions(options) {
      options.conditions = ['@belfry/source', 'module'];
      // Bundled CommonJS (commander, yaml) may call require: give the ESM bundle one.
      options.banner = {
        js: `#!/usr/bin/env node\nimport { createRequire as __belfryRequire } from 'node:module';\nconst require = __belfryRequire(import.meta.url);`,
      };
    },
    define,
  },
]);
