import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Plugin } from 'esbuild';
import { defineConfig, type Options } from 'tsup';
import { packageBuild } from '../../scripts/tsupPackage';

const { version } = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')) as {
  version: string;
};
/**
 * `belfry --version` says what was built; each build has an id of its own, so a config checked
 * by one build is never taken unchecked by another (see `src/configFile.ts`).
 */
const versionOnly = { __BELFRY_VERSION__: JSON.stringify(version) };
const define = {
  ...versionOnly,
  __BELFRY_BUILD__: JSON.stringify(
    `${version}+${Date.now().toString(36)}.${randomBytes(4).toString('hex')}`,
  ),
};

/** What both parts of the bin share: an ESM bundle for Node 20, belfry's packages from source. */
const binBuild: Options = {
  format: ['esm'],
  outDir: 'dist/bin',
  // Less to read and compile at each start (the source map gives a stack trace its names).
  minify: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
  noExternal: [/^@belfry\//, 'commander', 'yaml', 'xstate', 'nanoid', 'eventemitter3'],
  external: ['better-sqlite3', 'fastify', '@fastify/swagger'],
  define,
};

/** The bin's own file leaves the full CLI (`./cli`) to the other build, as its `main.js`. */
const fullCliElsewhere: Plugin = {
  name: 'belfry-full-cli-elsewhere',
  setup(build) {
    build.onResolve({ filter: /^\.\/cli$/ }, () => ({ path: './main.js', external: true }));
  },
};

// The library entry (as every package) and the `belfry` bin (ESM, with its shebang), in two
// parts.
//
// `dist/bin/bin.js` is one file: what `belfry status` needs when the daemon runs and the config
// is unchanged (see src/quick.ts), so the command most often run reads one file. Everything else
// it hands to `dist/bin/main.js` (src/cli.ts): belfry's packages and the pure-JS libraries are
// bundled, so a command reads a few files instead of resolving hundreds, and each command group
// is a chunk loaded only when used: `belfry status` never reads the town's tree, the drivers or
// the store. The code every command runs imports core through `@belfry/core/config` and
// `@belfry/core/driver` only: esbuild assigns whole files to chunks, so one import of core's index
// there would put all of core in the first chunk. Native better-sqlite3 and the daemon's HTTP
// server (imported dynamically) stay ordinary dependencies.
export default defineConfig([
  // The library resolves belfry's other packages when it runs, so what it checks a config by can
  // change under it: it never takes a cached config (no build id).
  { ...packageBuild, define: versionOnly },
  {
    ...binBuild,
    entry: { bin: 'src/bin.ts' },
    splitting: false,
    esbuildPlugins: [fullCliElsewhere],
    esbuildOptions(options) {
      options.conditions = ['@belfry/source', 'module'];
      options.banner = { js: '#!/usr/bin/env node' };
    },
  },
  {
    ...binBuild,
    entry: { main: 'src/cli.ts' },
    splitting: true,
    esbuildOptions(options) {
      options.conditions = ['@belfry/source', 'module'];
      // Bundled CommonJS (commander, yaml) may call require: give the ESM bundle one.
      options.banner = {
        js: `import { createRequire as __belfryRequire } from 'node:module';\nconst require = __belfryRequire(import.meta.url);`,
      };
    },
  },
]);
