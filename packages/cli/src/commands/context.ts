import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { TownModel } from '@belfry/core';
import type { Command } from 'commander';
import type { ApiErrorBody } from '../api/server';
import { type BelfryConfig, CONFIG_FILE, loadConfig } from '../config';
import { ALREADY_RUNNING, callDaemon, daemonPaths, ensureStateDir } from '../runtime';

/**
 * Exit codes of the `belfry` command.
 * - 0: done
 * - 1: the operation failed (a refused request, a daemon that would not start or stop)
 * - 2: bad usage or a bad config
 * - 3: a daemon already runs (daemon start / run); `daemon status`: the daemon is stopped (as
 *   `systemctl is-active`)
 * - 4: no daemon runs (daemon stop, and status when asked to fail on it)
 */
export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  ALREADY_RUNNING,
  NOT_RUNNING: 4,
  STOPPED: 3,
} as const;

/** A command's end with an exit code and a message for stderr (none when empty). */
export class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** How `main` was called: where, with what environment, and where its output goes. */
export interface MainOptions {
  cwd?: string;
  out?: (t: string) => void;
  err?: (t: string) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * What every command group works with: the output, the config (read once, when first asked
 * for), and the two ways to the town — the running daemon's API, or the store through the model
 * when none runs. One copy of each, shared by every group.
 */
export interface Context {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  out(text: string): void;
  err(text: string): void;
  /** Colours for a terminal (off for a pipe or with NO_COLOR). */
  paint(code: string, text: string): string;
  /** The town's config (throws an Exit when there is none, a ConfigError when it is bad). */
  cfg(cmd: Command): BelfryConfig;
  /** The config file being read, once known (even when it could not be loaded). */
  configFile(): string | undefined;
  /** Whether `--json` was given. */
  json(cmd: Command): boolean;
  /** Prints `data` as JSON with `--json`, else `text()`. */
  print(cmd: Command, data: unknown, text: () => string): void;
  /** The store, opened beside a running daemon (or without one); requests wait in it. */
  withModel<T>(cmd: Command, job: (model: TownModel) => Promise<T>): Promise<T>;
  /**
   * Calls the running daemon's API; undefined when no daemon answers. An error answer (4xx, 5xx)
   * is the command's failure, with the daemon's message.
   */
  api<T>(
    cmd: Command,
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<T | undefined>;
  /** The API's answer, or a clear failure when no daemon runs (for what only it can do). */
  live<T>(
    cmd: Command,
    what: string,
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<T>;
  /** `<rig>/<name>` as the API's path of that agent. */
  agentPath(agent: string): string;
}

/** Who runs the command: the OS user's name (`--by` defaults to it). */
export function osUser(): string {
  try {
    return userInfo().username || 'operator';
  } catch {
    return 'operator';
  }
}

/** Finds belfry.yaml in `from` or a folder above it. */
function findConfig(from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, CONFIG_FILE))) return join(dir, CONFIG_FILE);
    if (dirname(dir) === dir) return undefined;
  }
}

/** The context of one run of `main`. */
export function createContext(options: MainOptions): Context {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const out = options.out ?? ((t: string) => void process.stdout.write(t));
  const err = options.err ?? ((t: string) => void process.stderr.write(t));
  const color = env.NO_COLOR === undefined && process.stdout.isTTY === true;
  let config: BelfryConfig | undefined;
  let file: string | undefined;
  const context: Context = {
    env,
    cwd,
    out,
    err,
    paint: (code, text) => (color ? `\u001b[${code}m${text}\u001b[0m` : text),
    cfg(cmd) {
      if (config) return config;
      // An agent's session has the town's config in BELFRY_CONFIG: it may work anywhere.
      const given = (cmd.optsWithGlobals().config as string | undefined) ?? env.BELFRY_CONFIG;
      const found = given ? resolve(cwd, given) : findConfig(cwd);
      if (!found)
        throw new Exit(
          EXIT.USAGE,
          `no ${CONFIG_FILE} here or above ${cwd}; run \`belfry init\` first`,
        );
      file = found;
      config = loadConfig(found);
      return config;
    },
    configFile: () => file,
    json: (cmd) => cmd.optsWithGlobals().json === true,
    print(cmd, data, text) {
      out(context.json(cmd) ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
    },
    async withModel(cmd, job) {
      const c = context.cfg(cmd);
      ensureStateDir(daemonPaths(c));
      // Loaded only by the commands that need the store.
      const [{ createTownModel }, { openTownStore }] = await Promise.all([
        import('@belfry/core'),
        import('../townStore'),
      ]);
      const store = openTownStore(c, { verify: false });
      try {
        const model = createTownModel({ store, gateTypes: [] });
        // The config's rigs exist before the daemon first ran, so work can be queued for them.
        for (const name of c.rigs)
          if (!(await model.rigs.get(name))) await model.rigs.create({ name });
        return await job(model);
      } finally {
        await store.close();
      }
    },
    async api<T>(cmd: Command, method: 'GET' | 'POST', route: string, body?: unknown) {
      const answer = await callDaemon<T | ApiErrorBody>(
        daemonPaths(context.cfg(cmd)).socket,
        method,
        route,
        body,
        30_000,
      );
      if (!answer) return undefined;
      if (answer.status >= 400) {
        const error = (answer.body as ApiErrorBody).error;
        // A value the town refuses is bad usage (2), as the same refusal without a daemon.
        throw new Exit(
          answer.status === 400 ? EXIT.USAGE : EXIT.FAILED,
          error
            ? `${error.message}${error.path && !error.message.includes(error.path) ? ` (${error.path})` : ''}`
            : `the daemon answered ${answer.status}`,
        );
      }
      return answer.body as T;
    },
    async live<T>(
      cmd: Command,
      what: string,
      method: 'GET' | 'POST',
      route: string,
      body?: unknown,
    ) {
      const answer = await context.api<T>(cmd, method, route, body);
      if (answer === undefined)
        throw new Exit(
          EXIT.NOT_RUNNING,
          `no daemon runs; ${what} needs it (start it with \`belfry daemon start\`)`,
        );
      return answer;
    },
    agentPath(agent) {
      const m = /^([^/]+)\/([^/]+)$/.exec(agent);
      if (!m) throw new Exit(EXIT.USAGE, `an agent is <rig>/<name>; got ${JSON.stringify(agent)}`);
      return `/v1/agents/${encodeURIComponent(m[1] as string)}/${encodeURIComponent(m[2] as string)}`;
    },
  };
  return context;
}

/** A command group's file: it adds its commands to the program. */
export type Register = (program: Command, context: Context) => void;
