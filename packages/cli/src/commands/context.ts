import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { TownModel } from '@belfry/core';
import type { Command } from 'commander';
import type { ApiErrorBody } from '../api/server';
import type { BelfryConfig } from '../config';
import { CONFIG_FILE, findConfig, readConfig } from '../configFile';
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

/** How long a command waits for the daemon's answer to one request. */
export const API_TIMEOUT_MS = 30_000;

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
  /**
   * Finds and reads the config for the command about to run (before its action; see
   * {@link readConfig}). A missing or bad config is not an error until a command asks for it.
   */
  prepare(cmd: Command): Promise<void>;
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

/** Colours for a terminal: off for a pipe or with NO_COLOR. */
export function painter(env: NodeJS.ProcessEnv): (code: string, text: string) => string {
  const color = env.NO_COLOR === undefined && process.stdout.isTTY === true;
  return (code, text) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
}

/** What a command prints: `data` as JSON with `--json`, else `text()`; a line either way. */
export function printed(json: boolean, data: unknown, text: () => string): string {
  return json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`;
}

/**
 * The config file a command reads: the one given (`--config`, or BELFRY_CONFIG, which an agent's
 * session has, so it may work anywhere), else belfry.yaml here or in a folder above.
 */
export function configPath(given: string | undefined, cwd: string): string | undefined {
  return given ? resolve(cwd, given) : findConfig(cwd);
}

/** The context of one run of `main`. */
export function createContext(options: MainOptions): Context {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const out = options.out ?? ((t: string) => void process.stdout.write(t));
  const err = options.err ?? ((t: string) => void process.stderr.write(t));
  let config: BelfryConfig | undefined;
  let file: string | undefined;
  // Where the config was looked for, and what reading it threw (given back when asked for).
  let problem: unknown;
  const locate = (cmd: Command): string => {
    const found = configPath(
      (cmd.optsWithGlobals().config as string | undefined) ?? env.BELFRY_CONFIG,
      cwd,
    );
    if (!found)
      throw new Exit(
        EXIT.USAGE,
        `no ${CONFIG_FILE} here or above ${cwd}; run \`belfry init\` first`,
      );
    file = found;
    return found;
  };
  const context: Context = {
    env,
    cwd,
    out,
    err,
    paint: painter(env),
    async prepare(cmd) {
      if (config !== undefined || problem !== undefined) return;
      try {
        config = await readConfig(locate(cmd));
      } catch (error) {
        problem = error;
      }
    },
    cfg(cmd) {
      if (config) return config;
      if (problem !== undefined) throw problem;
      throw new Exit(
        EXIT.FAILED,
        `the config of \`${cmd.name()}\` was asked for before it was read`,
      );
    },
    configFile: () => file,
    json: (cmd) => cmd.optsWithGlobals().json === true,
    print(cmd, data, text) {
      out(printed(context.json(cmd), data, text));
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
        API_TIMEOUT_MS,
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
