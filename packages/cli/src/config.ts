import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, type TownTimings } from '@belfry/core';
import { isMap, LineCounter, parseDocument } from 'yaml';

/** The name of the config file `belfry init` writes and every command looks for. */
export const CONFIG_FILE = 'belfry.yaml';

/** A validated config, paths resolved against the config file's folder. */
export interface BelfryConfig {
  /** The config file. */
  file: string;
  /** The folder the config lives in (the town's home). */
  home: string;
  /** Where the daemon keeps its lock, state, logs and control socket. */
  stateDir: string;
  store: { path: string; durability: 'full' | 'normal' };
  driver: { kind: 'tmux'; socket: string; stopGraceMs: number } | { kind: 'memory' };
  gates: {
    timer: boolean;
    human: boolean;
    github: { tokenEnv: string; baseUrl: string; onFailure: 'escalate' | 'close' } | false;
  };
  rigs: string[];
  agent: { command: string[]; cwd?: string; env: Record<string, string>; prime: string };
  timings: Partial<TownTimings>;
  logs: { maxBytes: number; keep: number };
}

/** What `belfry init` writes: every key, commented. */
export function defaultConfigText(folder: string): string {
  const socket = `belfry-${folder.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'town'}`;
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
  # The private tmux server's socket name (tmux -L). Never your own server.
  socket: ${socket}
  # How long a stopped session gets between SIGTERM and SIGKILL.
  stopGraceMs: 5000

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
  # The daemon's log (.belfry/daemon.log) is rotated past this size, keeping this many old ones.
  maxBytes: 5000000
  keep: 3
`;
}

const TIMING_KEYS = [
  'heartbeatMs',
  'patrolIntervalMs',
  'surveyMs',
  'spawnGraceMs',
  'staleAfterMs',
  'gateIntervalMs',
  'gateTimeoutMs',
  'stopGraceMs',
] as const;

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
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = e?.linePos?.[0];
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: file,
      message: `${file}${at ? `:${at.line}` : ''}: not valid YAML: ${e?.message.split('\n')[0]}`,
    });
  }
  const lineOf = (path: readonly (string | number)[]): string => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? '' : `:${lines.linePos(offset).line}`;
  };
  const fail = (path: readonly (string | number)[], what: string): never => {
    const key = path.join('.');
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: key,
      message: `${file}${lineOf(path)}: ${key || 'the file'}: ${what}`,
    });
  };
  const describe = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));
  const root = doc.toJS() as unknown;
  if (!isMap(doc.contents) || typeof root !== 'object' || root === null)
    fail([], 'must be a mapping of store, driver, gates, rigs, agent, timings, logs');
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
  only(c, [], ['store', 'driver', 'gates', 'rigs', 'agent', 'timings', 'logs']);
  const home = dirname(resolve(file));
  const at = (p: string) => (isAbsolute(p) ? p : join(home, p));

  const store = section('store');
  only(store, ['store'], ['path', 'durability']);
  const driver = section('driver');
  only(driver, ['driver'], ['kind', 'socket', 'stopGraceMs']);
  const kind = oneOf(driver, ['driver', 'kind'], ['tmux', 'memory'] as const, 'tmux');
  const socket = str(
    driver,
    ['driver', 'socket'],
    `belfry-${
      home
        .split('/')
        .at(-1)
        ?.replace(/[^A-Za-z0-9_-]/g, '-') ?? 'town'
    }`,
  );
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(socket) || socket === 'default')
    fail(
      ['driver', 'socket'],
      `must be 1 to 64 letters, digits, '_' or '-' (not 'default'); got ${describe(socket)}`,
    );

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
  const command = agent.command;
  if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string'))
    fail(
      ['agent', 'command'],
      `must be a list of strings (a program and its arguments, not a shell string); got ${describe(command)}`,
    );
  const env = (agent.env ?? {}) as Record<string, unknown>;
  if (typeof env !== 'object' || Array.isArray(env))
    fail(['agent', 'env'], `must be a mapping of names to strings; got ${describe(env)}`);
  for (const [k, v] of Object.entries(env))
    if (typeof v !== 'string') fail(['agent', 'env', k], `must be a string; got ${describe(v)}`);

  const timings = section('timings');
  only(timings, ['timings'], TIMING_KEYS);
  const t: Partial<TownTimings> = {};
  for (const k of TIMING_KEYS)
    if (timings[k] !== undefined) t[k] = int(timings, ['timings', k], 0, 1);

  const logs = section('logs');
  only(logs, ['logs'], ['maxBytes', 'keep']);

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
        ? { kind, socket, stopGraceMs: int(driver, ['driver', 'stopGraceMs'], 5_000, 0) }
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
    },
  };
}
