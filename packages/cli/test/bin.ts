import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..', '..');
/** The `belfry` bin from source. */
export const BIN = join(ROOT, 'packages', 'cli', 'src', 'bin.ts');
/** Node's arguments that run {@link BIN} from source (TypeScript through tsx). */
export const NODE_ARGS = [
  '--conditions=@belfry/source',
  '--import',
  join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
] as const;

/** A town on the memory driver with fast heartbeats (belfry.yaml's text). */
export const FAST_MEMORY_TOWN = `driver: { kind: memory }
gates: { github: false }
rigs: [api]
agent: { command: [cat] }
timings: { heartbeatMs: 100, patrolIntervalMs: 200, surveyMs: 100 }
`;

/** What one `belfry` process did. */
export interface BinResult {
  code: number;
  out: string;
  err: string;
}

/** Runs the real `belfry` command in a process of its own, in `dir`. */
export function belfry(dir: string, ...args: string[]): Promise<BinResult> {
  return runBelfry(dir, args);
}

/** {@link belfry} with an environment or a time limit of its own. */
export async function runBelfry(
  dir: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<BinResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...NODE_ARGS, BIN, ...args], {
      cwd: dir,
      env: options.env ?? { ...process.env, NO_COLOR: '1' },
      timeout: options.timeoutMs ?? 60_000,
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      out: e.stdout ?? '',
      err: e.stderr ?? '',
    };
  }
}

/** Polls `check` every 100 ms until it gives a value, failing after `ms`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The daemon's state.json in the town folder `dir`, if there is one. */
export function daemonState(dir: string): { pid: number; heartbeatCount: number } | undefined {
  const file = join(dir, '.belfry', 'state.json');
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number; heartbeatCount: number })
    : undefined;
}

/** Whether process `pid` is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
