import { readFileSync } from 'node:fs';

declare const __BELFRY_VERSION__: string | undefined;

/** The version of @belfry/cli (set at build time; read from its package.json when run from source). */
export const VERSION: string =
  typeof __BELFRY_VERSION__ === 'string' ? __BELFRY_VERSION__ : sourceVersion();

function sourceVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? `${pkg.version} (source)` : 'unknown';
  } catch {
    return 'unknown';
  }
}
