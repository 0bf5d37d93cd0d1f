import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { BelfryConfig } from './config';
import { writeJsonAtomic } from './runtime';

/** The name of the config file `belfry init` writes and every command looks for. */
export const CONFIG_FILE = 'belfry.yaml';

/**
 * The build of belfry that runs (set at build time; undefined when run from source). A config
 * checked by one build is taken without checking only by the same build: another may read the
 * file differently.
 */
declare const __BELFRY_BUILD__: string | undefined;
const BUILD: string | undefined =
  typeof __BELFRY_BUILD__ === 'string' ? __BELFRY_BUILD__ : undefined;

/** The file, beside the daemon's state, that keeps the last config this build checked. */
export const CONFIG_CACHE_FILE = 'config.cache.json';

/** What the config cache holds: the exact text of the file, and the config it checked out as. */
interface ConfigCache {
  build: string;
  file: string;
  text: string;
  config: BelfryConfig;
}

/** Finds belfry.yaml in `from` or a folder above it. */
export function findConfig(from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, CONFIG_FILE))) return join(dir, CONFIG_FILE);
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Reads and checks the config file `file`, as {@link loadConfig} does. The YAML parser and the
 * checks are loaded only when the file's text is not the one this build last checked: every
 * command reads the config, and most find it as it was. The check's result is kept in the
 * town's state folder (when there is one; none is made for it) with the text it came from, so a
 * change of even one byte is read and checked again, and a cache that cannot be read or written
 * is only a slower start.
 *
 * @param build - whose checks the cache holds (this build's; tests name one).
 * @throws ConfigError as loadConfig does.
 */
export async function readConfig(
  file: string,
  build: string | undefined = BUILD,
): Promise<BelfryConfig> {
  const path = resolve(file);
  const { text, config } = cached(path, build);
  if (config !== undefined) return config;
  const { loadConfig, loadConfigText } = await import('./config');
  if (text === undefined) return loadConfig(path);
  const checked = loadConfigText(path, text);
  const cacheFile = cacheFileOf(path);
  if (build !== undefined && isPrivate(dirname(cacheFile), 'folder')) {
    try {
      writeJsonAtomic(cacheFile, {
        build,
        file: path,
        text,
        config: checked,
      } satisfies ConfigCache);
    } catch {
      // A read-only or full state folder: the next command checks the file again.
    }
  }
  return checked;
}

/**
 * The config `file` checked out as when this build last read it, if its text is the same now;
 * undefined when it must be read and checked (see {@link readConfig}).
 */
export function cachedConfig(
  file: string,
  build: string | undefined = BUILD,
): BelfryConfig | undefined {
  return cached(resolve(file), build).config;
}

/** The file's text (undefined when it cannot be read), and its config if the cache holds it. */
function cached(path: string, build: string | undefined): { text?: string; config?: BelfryConfig } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // loadConfig says what is wrong with a file it cannot read.
    return {};
  }
  const cacheFile = cacheFileOf(path);
  if (build === undefined || !isPrivate(dirname(cacheFile), 'folder')) return { text };
  if (!isPrivate(cacheFile, 'file')) return { text };
  const hit = readCache(cacheFile);
  return hit !== undefined && hit.build === build && hit.file === path && hit.text === text
    ? { text, config: hit.config }
    : { text };
}

/** Where the cache of the config file at `path` is kept: in its town's state folder. */
function cacheFileOf(path: string): string {
  return join(dirname(path), '.belfry', CONFIG_CACHE_FILE);
}

function readCache(path: string): ConfigCache | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<ConfigCache> | null;
    return value !== null &&
      typeof value === 'object' &&
      typeof value.build === 'string' &&
      typeof value.file === 'string' &&
      typeof value.text === 'string' &&
      typeof value.config === 'object' &&
      value.config !== null &&
      typeof value.config.stateDir === 'string' &&
      typeof value.config.file === 'string'
      ? (value as ConfigCache)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `path` is a folder (or a regular file) of this user's that nobody else can read or
 * write, not a link: the cache decides what the daemon runs, so it is taken only from where no
 * one else could have put it.
 */
function isPrivate(path: string, kind: 'folder' | 'file'): boolean {
  try {
    const st = lstatSync(path);
    return (
      (kind === 'folder' ? st.isDirectory() : st.isFile()) &&
      (st.mode & 0o077) === 0 &&
      (process.getuid === undefined || st.uid === process.getuid())
    );
  } catch {
    return false;
  }
}
