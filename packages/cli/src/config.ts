import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, DEFAULT_TIMINGS, type TownTimings, timingProblem } from '@belfry/core/config';
import { sessionCommandProblem, sessionVariableProblem } from '@belfry/core/driver';
import { DEFAULT_INHERITED_ENV, inheritEnvProblem, type TmuxSocket } from '@belfry/driver-tmux';
import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  visit,
} from 'yaml';
import { LOG_LEVELS, type LogLevel } from './logFormat';
import { MAX_SOCKET_BYTES } from './unixSocket';

export { CONFIG_FILE } from './configFile';

/** A validated config, paths resolved against the config file's folder. */
export interface BelfryConfig {
  /** The config file. */
  file: string;
  /** The folder the config lives in (the town's home). */
  home: string;
  /** Where the daemon keeps its lock, state, logs and control socket. */
  stateDir: string;
  store: { path: string; durability: 'full' | 'normal' };
  driver:
    | {
        kind: 'tmux';
        /**
         * The tmux server's socket the config names: a name (`-L`) or a path (`-S`, resolved
         * against the config's folder). Left out, the town's own server in its state folder
         * (see {@link resolveTmuxSocket}).
         */
        socket?: TmuxSocket;
        stopGraceMs: number;
        inheritEnv: readonly string[];
      }
    | { kind: 'memory' };
  gates: {
    timer: boolean;
    human: boolean;
    github: { tokenEnv: string; baseUrl: string; onFailure: 'escalate' | 'close' } | false;
  };
  rigs: string[];
  agent: { command: string[]; cwd?: string; env: Record<string, string>; prime: string };
  timings: Partial<TownTimings>;
  /** The daemon's log: rotation, and the least severe level written (see {@link LOG_LEVELS}). */
  logs: { maxBytes: number; keep: number; level: LogLevel };
  /**
   * The daemon's API. It is always served on the control socket; `tcp`, when set, serves it on
   * that address too, where every request needs `Authorization: Bearer <token>` with the token in
   * `tokenFile`.
   */
  api: {
    /** Off unless configured. @defaultValue host `127.0.0.1`, port 7411 (when `api.tcp` is given) */
    tcp?: { host: string; port: number };
    /** The bearer token's file (mode 0600; made when missing). @defaultValue `.belfry/api.token` */
    tokenFile: string;
  };
}

/**
 * What `belfry init` writes: every key, commented.
 *
 * @param _home - the town's folder. Nothing in the text depends on it any more (the tmux socket
 *   is the town's own in its state folder by default); kept so callers need not change.
 * @returns the text of `belfry.yaml`.
 * @example
 * ```ts
 * writeFileSync('belfry.yaml', defaultConfigText(process.cwd()));
 * ```
 */
export function defaultConfigText(_home?: string): string {
  return `# belfry: the town in this folder. Paths are relative to this file.
# Check it with \`belfry daemon run\` (it refuses a bad config, naming the key).

store:
  # The durable store: one SQLite file (WAL). Created with mode 0600.
  path: .belfry/town.db
  # full: a commit survives a power loss; normal: a process crash.
  durability: full

driver:
  # tmux: agent sessions in tmux on a private server; memory: in-process (tests, demos).
  kind: tmux
  # The private tmux server. Left out: this town's own, at .belfry/tmux.sock (tmux -S); a
  # name (tmux -L) or a path instead. Never your own server. A daemon refuses to move to
  # another one while agents of the town run on the old one.
  # socket: .belfry/tmux.sock
  # How long a stopped session gets between SIGTERM and SIGKILL.
  stopGraceMs: 5000
  # The daemon's environment variables agents inherit (a '*' ends a prefix). Nothing else
  # passes: the daemon's secrets (GITHUB_TOKEN, cloud keys) stay out unless listed here.
  # inheritEnv: [PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, 'LC_*', TZ, TMPDIR, TERM, COLORTERM]

gates:
  # timer gates: close at a stored deadline.
  timer: true
  # human gates: approved or rejected with \`belfry gate approve|reject\`.
  human: true
  # gh:run gates: GitHub Actions runs. Set to false to leave them out.
  github:
    # The environment variable holding the token (never written here).
    tokenEnv: GITHUB_TOKEN
    baseUrl: https://api.github.com
    # escalate: a failed run is reported and the gate waits for a re-run; close: it fails.
    onFailure: escalate

# The rigs (projects) of the town; polecats work in them.
rigs:
  - main

agent:
  # The agent's program and arguments (argv, never a shell string).
  command: ["sh", "-c", "while read -r line; do echo \\"got: $line\\"; done"]
  # The first thing a new session is told. {agent}, {bead} and {title} are filled in.
  prime: "You are {agent}. Your hook holds bead {bead}: {title}. Run it, then report done."
  # Extra environment for every session.
  env: {}

timings:
  # The daemon's heartbeat; each one wakes the Deacon's patrol.
  heartbeatMs: 60000

logs:
  # The daemon's log (.belfry/daemon.log, JSON lines; \`belfry daemon logs\` prints them readable)
  # is rotated past this size, keeping this many old ones.
  maxBytes: 5000000
  keep: 3
  # The least severe entries written: trace (each patrol step), debug (heartbeats, patrols),
  # info, warn or error. \`belfry daemon run|start --log-level\` overrides it.
  level: info

api:
  # The daemon's API is always on its control socket (.belfry/control.sock, mode 0600). To serve
  # it on TCP too (for the live view), uncomment tcp; every request there needs the header
  # "Authorization: Bearer <token>". Keep a loopback host unless others must reach it.
  # tcp:
  #   host: 127.0.0.1
  #   port: 7411
  # The token for TCP: a file of mode 0600, made with a random token when missing.
  # tokenFile: .belfry/api.token
`;
}

/**
 * How many alias expansions a config may hold. A config needs few if any; the cap stops a
 * "billion laughs" file from eating the process's memory.
 */
export const MAX_CONFIG_ALIASES = 100;

/** The position (1-based line and column) of the node at `path`, or of its nearest ancestor. */
function positionOf(
  doc: Document,
  lines: LineCounter,
  path: readonly (string | number)[],
): { line: number; col: number } {
  let node: unknown = doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (const key of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key),
      );
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return lines.linePos(offset);
}

/**
 * Checks what `toJS` would trip over, so each refusal names its line: an alias to no anchor (set
 * before it), and a key that is not a plain scalar (a list or a mapping as a key).
 */
function checkStructure(
  doc: Document,
  at: (node: Node) => string,
  refuse: (where: string, what: string) => never,
): void {
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc) === undefined)
        refuse(
          at(alias),
          `the alias *${alias.source} names no anchor &${alias.source} set before it`,
        );
    },
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key))
        refuse(
          at(pair.key as Node),
          `a key must be a plain name, not ${isCollection(pair.key) ? 'a list or a mapping' : 'an alias'}`,
        );
    },
  });
}

/** Every timing of a town (core's list, so the config takes each one createTown does). */
const TIMING_KEYS = Object.keys(DEFAULT_TIMINGS) as Array<keyof TownTimings>;

/**
 * Reads and checks a config file. Every mistake is a ConfigError naming the file, the key (and
 * its line) and what is allowed.
 */
export function loadConfig(file: string): BelfryConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: file,
      message: `${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); run \`belfry init\` to write one`,
    });
  }
  return loadConfigText(file, text);
}

/**
 * Checks `text` as the config file `file` (whose folder relative paths are resolved against), as
 * {@link loadConfig} does with the file's text.
 */
export function loadConfigText(file: string, text: string): BelfryConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const refuse = (where: string, what: string): never => {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: file,
      message: `${file}:${where}: not valid YAML: ${what}`,
    });
  };
  const spot = (node: Node): string => {
    const { line, col } = lines.linePos(node.range?.[0] ?? 0);
    return `${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e?.linePos?.[0] ?? lines.linePos(e?.pos[0] ?? 0);
    // yaml's message ends with "at line L, column C:" and a snippet; the position is given above.
    const what = (e?.message.split('\n')[0] ?? 'cannot be parsed').replace(
      / at line \d+, column \d+:?$/,
      '',
    );
    refuse(`${pos.line}:${pos.col}`, what);
  }
  checkStructure(doc, spot, refuse);
  const where = (path: readonly (string | number)[]): string => {
    const { line, col } = positionOf(doc, lines, path);
    return `${line}:${col}`;
  };
  const fail = (path: readonly (string | number)[], what: string): never => {
    const key = path.join('.');
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: key,
      message: `${file}:${where(path)}: ${key || 'the file'}: ${what}`,
    });
  };
  const describe = (v: unknown) => {
    if (v === undefined) return 'nothing';
    const json = JSON.stringify(v);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  };
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: MAX_CONFIG_ALIASES });
  } catch (error) {
    // The checks above leave one cause: aliases that expand past the cap.
    let first: Node | undefined;
    visit(doc, {
      Alias(_, alias) {
        first = alias;
        return visit.BREAK;
      },
    });
    refuse(
      first ? spot(first) : '1:1',
      `its aliases expand to more than ${MAX_CONFIG_ALIASES} copies (${(error as Error).message}); write the values out`,
    );
  }
  if (!isMap(doc.contents) || typeof root !== 'object' || root === null)
    fail([], 'must be a mapping of store, driver, gates, rigs, agent, timings, logs, api');
  const c = root as Record<string, unknown>;
  const only = (obj: Record<string, unknown>, path: string[], allowed: readonly string[]) => {
    for (const k of Object.keys(obj))
      if (!allowed.includes(k))
        fail([...path, k], `is not a setting here; allowed: ${allowed.join(', ')}`);
  };
  const section = (key: string, required = false): Record<string, unknown> => {
    const v = c[key];
    if (v === undefined || v === null) {
      if (required) fail([key], 'is missing');
      return {};
    }
    if (typeof v !== 'object' || Array.isArray(v))
      fail([key], `must be a mapping; got ${describe(v)}`);
    return v as Record<string, unknown>;
  };
  const int = (
    obj: Record<string, unknown>,
    path: string[],
    fallback: number,
    min: number,
  ): number => {
    const v = obj[path.at(-1) as string];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      fail(path, `must be an integer >= ${min}; got ${describe(v)}`);
    return v as number;
  };
  const str = (obj: Record<string, unknown>, path: string[], fallback?: string): string => {
    const v = obj[path.at(-1) as string];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || v === '')
      fail(path, `must be a non-empty string; got ${describe(v)}`);
    return v as string;
  };
  const oneOf = <T extends string>(
    obj: Record<string, unknown>,
    path: string[],
    allowed: readonly T[],
    fallback: T,
  ): T => {
    const v = obj[path.at(-1) as string];
    if (v === undefined) return fallback;
    if (!allowed.includes(v as T))
      fail(path, `must be one of ${allowed.join(', ')}; got ${describe(v)}`);
    return v as T;
  };
  only(c, [], ['store', 'driver', 'gates', 'rigs', 'agent', 'timings', 'logs', 'api']);
  const home = dirname(resolve(file));
  const at = (p: string) => (isAbsolute(p) ? p : join(home, p));

  const store = section('store');
  only(store, ['store'], ['path', 'durability']);
  const driver = section('driver');
  only(driver, ['driver'], ['kind', 'socket', 'stopGraceMs', 'inheritEnv']);
  const kind = oneOf(driver, ['driver', 'kind'], ['tmux', 'memory'] as const, 'tmux');
  // Only the tmux driver has a socket; a memory town never checks (or needs) one.
  let socket: TmuxSocket | undefined;
  if (kind === 'tmux' && driver.socket !== undefined) {
    const given = str(driver, ['driver', 'socket']);
    if (given.includes('/')) {
      const path = at(given);
      if (Buffer.byteLength(path) > MAX_SOCKET_BYTES)
        fail(
          ['driver', 'socket'],
          `a socket path must fit a Unix socket: at most ${MAX_SOCKET_BYTES} bytes once resolved against the config's folder; ${describe(path)} is ${Buffer.byteLength(path)}. Use a shorter path, a name, or leave it out (the town's own server, placed where it fits)`,
        );
      if (/\/tmux-\d+\/default$/.test(path))
        fail(
          ['driver', 'socket'],
          `${describe(path)} is your own tmux server; belfry keeps to a server of its own`,
        );
      socket = { path };
    } else {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(given) || given === 'default')
        fail(
          ['driver', 'socket'],
          `must be a name of 1 to 64 letters, digits, '_' or '-' (not 'default'), or a path (with a '/'); got ${describe(given)}`,
        );
      socket = { name: given };
    }
  }

  // What agents inherit from the daemon's environment (its secrets stay out unless listed).
  const inheritEnv = (driver.inheritEnv ?? DEFAULT_INHERITED_ENV) as readonly string[];
  const envProblem = inheritEnvProblem(inheritEnv);
  if (envProblem !== undefined) fail(['driver', 'inheritEnv'], envProblem);

  const gates = section('gates');
  only(gates, ['gates'], ['timer', 'human', 'github']);
  const flag = (key: string) => {
    const v = gates[key];
    if (v === undefined) return true;
    if (typeof v !== 'boolean' && (typeof v !== 'object' || v === null || Array.isArray(v)))
      fail(['gates', key], `must be true, false or a mapping; got ${describe(v)}`);
    return v !== false;
  };
  let github: BelfryConfig['gates']['github'] = false;
  if (flag('github')) {
    const g = (typeof gates.github === 'object' ? gates.github : {}) as Record<string, unknown>;
    only(g, ['gates', 'github'], ['tokenEnv', 'baseUrl', 'onFailure']);
    github = {
      tokenEnv: str(g, ['gates', 'github', 'tokenEnv'], 'GITHUB_TOKEN'),
      baseUrl: str(g, ['gates', 'github', 'baseUrl'], 'https://api.github.com'),
      onFailure: oneOf(
        g,
        ['gates', 'github', 'onFailure'],
        ['escalate', 'close'] as const,
        'escalate',
      ),
    };
  }

  const rigs = c.rigs ?? [];
  if (!Array.isArray(rigs)) fail(['rigs'], `must be a list of rig names; got ${describe(rigs)}`);
  for (const [i, r] of (rigs as unknown[]).entries())
    if (typeof r !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(r))
      fail(
        ['rigs', i],
        `must be a rig name (lowercase letters, digits, '-', starting with a letter, up to 32); got ${describe(r)}`,
      );

  const agent = section('agent', true);
  only(agent, ['agent'], ['command', 'cwd', 'env', 'prime']);
  // The same rules every session spec is checked by, so a config that loads can always sling.
  const command = agent.command;
  const commandProblem = sessionCommandProblem(command);
  if (commandProblem !== undefined)
    fail(['agent', 'command'], `${commandProblem}; got ${describe(command)}`);
  const env = (agent.env ?? {}) as Record<string, unknown>;
  if (typeof env !== 'object' || Array.isArray(env))
    fail(['agent', 'env'], `must be a mapping of names to strings; got ${describe(env)}`);
  for (const [k, v] of Object.entries(env)) {
    const problem = sessionVariableProblem(k, v);
    if (problem !== undefined)
      fail(['agent', 'env', k], `${problem}; got ${describe(k)}: ${describe(v)}`);
  }

  const timings = section('timings');
  only(timings, ['timings'], TIMING_KEYS);
  const t: Partial<TownTimings> = {};
  for (const k of TIMING_KEYS) {
    if (timings[k] === undefined) continue;
    // The same rule createTown checks a timing by.
    const problem = timingProblem(k, timings[k]);
    if (problem !== undefined) fail(['timings', k], problem);
    t[k] = timings[k] as number;
  }

  const logs = section('logs');
  only(logs, ['logs'], ['maxBytes', 'keep', 'level']);

  const api = section('api');
  only(api, ['api'], ['tcp', 'tokenFile']);
  let tcp: BelfryConfig['api']['tcp'];
  if (api.tcp !== undefined && api.tcp !== null && api.tcp !== false) {
    if (typeof api.tcp !== 'object' || Array.isArray(api.tcp))
      fail(['api', 'tcp'], `must be a mapping (host, port) or false; got ${describe(api.tcp)}`);
    const t = api.tcp as Record<string, unknown>;
    only(t, ['api', 'tcp'], ['host', 'port']);
    const host = str(t, ['api', 'tcp', 'host'], '127.0.0.1');
    if (isIP(host) === 0 && !/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host))
      fail(
        ['api', 'tcp', 'host'],
        `must be an IP address (127.0.0.1, ::1, 0.0.0.0) or a host name; got ${describe(host)}`,
      );
    const port = int(t, ['api', 'tcp', 'port'], 7411, 0);
    if (port > 65_535)
      fail(
        ['api', 'tcp', 'port'],
        `must be a port from 1 to 65535 (or 0: any free port, see \`belfry daemon status\`); got ${describe(port)}`,
      );
    tcp = { host, port };
  }

  return {
    file: resolve(file),
    home,
    stateDir: join(home, '.belfry'),
    store: {
      path: at(str(store, ['store', 'path'], '.belfry/town.db')),
      durability: oneOf(store, ['store', 'durability'], ['full', 'normal'] as const, 'full'),
    },
    driver:
      kind === 'tmux'
        ? {
            kind,
            ...(socket === undefined ? {} : { socket }),
            stopGraceMs: int(driver, ['driver', 'stopGraceMs'], 5_000, 0),
            inheritEnv,
          }
        : { kind },
    gates: { timer: flag('timer'), human: flag('human'), github },
    rigs: rigs as string[],
    agent: {
      command: command as string[],
      ...(agent.cwd === undefined ? {} : { cwd: at(str(agent, ['agent', 'cwd'])) }),
      env: env as Record<string, string>,
      prime: str(
        agent,
        ['agent', 'prime'],
        'You are {agent}. Your hook holds bead {bead}: {title}.',
      ),
    },
    timings: t,
    logs: {
      maxBytes: int(logs, ['logs', 'maxBytes'], 5_000_000, 1_000),
      keep: int(logs, ['logs', 'keep'], 3, 0),
      level: oneOf(logs, ['logs', 'level'], LOG_LEVELS, 'info'),
    },
    api: {
      ...(tcp === undefined ? {} : { tcp }),
      tokenFile: at(str(api, ['api', 'tokenFile'], '.belfry/api.token')),
    },
  };
}
