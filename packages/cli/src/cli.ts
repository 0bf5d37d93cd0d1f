import { spawn } from 'node:child_process';
import { existsSync, lstatSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type Bead,
  BelfryError,
  ConfigError,
  type Convoy,
  checkRigName,
  createTownModel,
  type Gate,
  type LifecycleAction,
  type LifecycleRequest,
  type TownModel,
  type TownStatus,
  type Warrant,
  type WarrantRelease,
} from '@belfry/core';
import { humanOutcome } from '@belfry/gate-human';
import { Command, CommanderError, Option } from 'commander';
import { followEvents } from './api/events';
import type { ApiErrorBody, DaemonInfo } from './api/server';
import { type BelfryConfig, CONFIG_FILE, defaultConfigText, loadConfig } from './config';
import { ALREADY_RUNNING, describeEvent, runDaemon } from './daemon';
import { LINES_RULE, numeric, TIMEOUT_RULE } from './numericOption';
import {
  callDaemon,
  controlSocketProblem,
  DaemonLock,
  type DaemonState,
  daemonPaths,
  ensureStateDir,
  readJson,
} from './runtime';
import { openTownStore } from './townStore';
import { VERSION } from './version';

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

/** Output for a terminal or a pipe; NO_COLOR (or a pipe) turns colours off. */
interface Io {
  out(text: string): void;
  err(text: string): void;
  color: boolean;
}

class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * When a config cannot be read, whether a daemon still runs for the town (in the default state
 * folder beside the file): it runs on the config it read at its start, and the operator must
 * know how to reach it. An empty string when none does.
 */
function runningDespite(configFile: string): string {
  const dir = join(dirname(configFile), '.belfry');
  try {
    if (!DaemonLock.held(join(dir, 'daemon.lock'))) return '';
  } catch {
    return '';
  }
  const pid = readJson<DaemonState>(join(dir, 'state.json'))?.pid;
  return `belfry: a daemon still runs for this town${pid ? ` (pid ${pid})` : ''} on the config it read when it started; fix the file to steer it again, or stop it now with: kill -TERM ${pid ?? '<its pid>'}\n`;
}

/** Whether `path` is a Unix socket now. */
function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Who runs the command: the OS user's name (`--by` defaults to it). */
function osUser(): string {
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

/**
 * Runs the `belfry` command with `argv` (without node and the script) and returns its exit code.
 * The bin calls it with process.argv; tests call it in-process.
 *
 * @example
 * ```ts
 * const code = await main(['daemon', 'status', '--json'], { cwd: '/srv/town' });
 * ```
 */
export async function main(
  argv: readonly string[],
  options: {
    cwd?: string;
    out?: (t: string) => void;
    err?: (t: string) => void;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<number> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const io: Io = {
    out: options.out ?? ((t) => process.stdout.write(t)),
    err: options.err ?? ((t) => process.stderr.write(t)),
    color: env.NO_COLOR === undefined && process.stdout.isTTY === true,
  };
  const paint = (code: string, text: string) =>
    io.color ? `\u001b[${code}m${text}\u001b[0m` : text;
  let config: BelfryConfig | undefined;
  /** The config file being read (known even when it cannot be loaded). */
  let configFile: string | undefined;
  const cfg = (cmd: Command): BelfryConfig => {
    if (config) return config;
    // An agent's session has the town's config in BELFRY_CONFIG: it may work anywhere.
    const given = (cmd.optsWithGlobals().config as string | undefined) ?? env.BELFRY_CONFIG;
    const file = given ? resolve(cwd, given) : findConfig(cwd);
    if (!file)
      throw new Exit(
        EXIT.USAGE,
        `no ${CONFIG_FILE} here or above ${cwd}; run \`belfry init\` first`,
      );
    configFile = file;
    config = loadConfig(file);
    return config;
  };
  const json = (cmd: Command) => cmd.optsWithGlobals().json === true;
  const print = (cmd: Command, data: unknown, text: () => string) =>
    io.out(json(cmd) ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
  /** The store, opened beside a running daemon (or without one); requests wait in it. */
  const withModel = async <T>(cmd: Command, job: (model: TownModel) => Promise<T>): Promise<T> => {
    const c = cfg(cmd);
    ensureStateDir(daemonPaths(c));
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
  };
  /**
   * Calls the running daemon's API; undefined when no daemon answers. An error answer (4xx, 5xx)
   * is the command's failure, with the daemon's message.
   */
  const api = async <T>(
    cmd: Command,
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<T | undefined> => {
    const answer = await callDaemon<T | ApiErrorBody>(
      daemonPaths(cfg(cmd)).socket,
      method,
      route,
      body,
      30_000,
    );
    if (!answer) return undefined;
    if (answer.status >= 400) {
      const error = (answer.body as ApiErrorBody).error;
      throw new Exit(
        EXIT.FAILED,
        error
          ? `${error.message}${error.path ? ` (${error.path})` : ''}`
          : `the daemon answered ${answer.status}`,
      );
    }
    return answer.body as T;
  };
  /** The API's answer, or a clear failure when no daemon runs (for what only it can do). */
  const live = async <T>(
    cmd: Command,
    what: string,
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<T> => {
    const answer = await api<T>(cmd, method, route, body);
    if (answer === undefined)
      throw new Exit(
        EXIT.NOT_RUNNING,
        `no daemon runs; ${what} needs it (start it with \`belfry daemon start\`)`,
      );
    return answer;
  };
  /** `<rig>/<name>` as the API's path. */
  const agentPath = (agent: string) => {
    const m = /^([^/]+)\/([^/]+)$/.exec(agent);
    if (!m) throw new Exit(EXIT.USAGE, `an agent is <rig>/<name>; got ${JSON.stringify(agent)}`);
    return `/v1/agents/${encodeURIComponent(m[1] as string)}/${encodeURIComponent(m[2] as string)}`;
  };

  const program = new Command('belfry')
    .description('Supervise a town of agent sessions: a daemon, and the commands that steer it.')
    .version(`belfry ${VERSION}`, '-V, --version', 'print the version')
    .option('-c, --config <file>', `the config file (default: ${CONFIG_FILE} here or above)`)
    .option('--json', 'print data as JSON')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 the operation failed, 2 bad usage or config, 3 a daemon already runs (daemon status: it is stopped), 4 no daemon runs.\nNO_COLOR turns colours off.',
    );

  program
    .command('init')
    .description(`write a commented ${CONFIG_FILE} for this folder`)
    .option('--force', 'overwrite an existing config')
    .action((opts: { force?: boolean }, cmd: Command) => {
      const file = join(cwd, CONFIG_FILE);
      if (existsSync(file) && !opts.force)
        throw new Exit(EXIT.FAILED, `${file} exists; pass --force to overwrite it`);
      writeFileSync(file, defaultConfigText(cwd), { mode: 0o644 });
      ensureStateDir(daemonPaths(loadConfig(file)));
      print(
        cmd,
        { config: file },
        () => `wrote ${file}; start the daemon with \`belfry daemon start\``,
      );
    });

  const daemon = program.command('daemon').description('run, start, stop and inspect the daemon');

  daemon
    .command('run')
    .description('run the daemon in the foreground, printing events, until Ctrl-C')
    .option('--memory-if-no-tmux', 'use the memory driver where tmux is missing')
    .action(async (opts: { memoryIfNoTmux?: boolean }, cmd: Command) => {
      const c = cfg(cmd);
      // Output that cannot be written (a full disk under daemon.stderr, a closed pipe) is lost,
      // never the end of the daemon.
      for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
      const running = await runDaemon(c, {
        onEvent: (line) => io.out(`${paint('2', new Date().toISOString())} ${line}\n`),
        fallbackDriver: opts.memoryIfNoTmux === true,
      }).catch((error: Error & { exitCode?: number }) => {
        throw new Exit(error.exitCode ?? EXIT.FAILED, error.message);
      });
      const onSignal = (signal: string) => void running.stop(`${signal}`);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const exit = await running.stopped;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (exit.failed) throw new Exit(EXIT.FAILED, `the daemon stopped: ${exit.reason}`);
    });

  daemon
    .command('start')
    .description('start the daemon in the background; returns once it holds the lock')
    .addOption(
      new Option('--timeout <time>', 'how long to wait for it (ms, or with a unit: 15s, 1m)')
        .argParser(numeric(TIMEOUT_RULE))
        .default(15_000, '15s'),
    )
    .action(async (opts: { timeout: number }, cmd: Command) => {
      const c = cfg(cmd);
      const paths = daemonPaths(c);
      ensureStateDir(paths);
      if (DaemonLock.held(paths.lock))
        throw new Exit(EXIT.ALREADY_RUNNING, `a daemon already runs for ${c.home}`);
      const bin = process.argv[1] as string;
      const errors = join(c.stateDir, 'daemon.stderr');
      // What this start adds to the file is what explains a failure, not an earlier run's lines.
      const errorsFrom = existsSync(errors) ? statSync(errors).size : 0;
      const child = spawn(
        process.execPath,
        [...process.execArgv, bin, 'daemon', 'run', '--config', c.file],
        {
          detached: true,
          stdio: ['ignore', 'ignore', openSync(errors, 'a', 0o600)],
          cwd: c.home,
          env,
        },
      );
      child.unref();
      const deadline = Date.now() + opts.timeout;
      while (Date.now() < deadline) {
        if (child.exitCode === ALREADY_RUNNING) {
          const pid = readJson<DaemonState>(paths.state)?.pid;
          throw new Exit(
            EXIT.ALREADY_RUNNING,
            `a daemon already runs for ${c.home}${pid ? ` (pid ${pid})` : ''}`,
          );
        }
        if (child.exitCode !== null || child.signalCode !== null) break;
        // Read again each time: a deep town's daemon records a socket of its own choosing.
        const socket = daemonPaths(c).socket;
        // Something else at the path (a folder, a file) is the daemon's to replace or fail on.
        if (DaemonLock.held(paths.lock) && isSocket(socket)) {
          const problem = controlSocketProblem(socket);
          if (problem !== undefined)
            throw new Exit(
              EXIT.FAILED,
              `the control socket ${socket} ${problem}; not trusting it, so the daemon's start is not confirmed`,
            );
          // Started means this child answers: another starter's daemon may hold the lock, and
          // then this child ends with ALREADY_RUNNING.
          // A daemon still starting may be slow to answer: asked again at the next round.
          const answer = await callDaemon<DaemonInfo>(
            socket,
            'GET',
            '/v1/ping',
            undefined,
            1_000,
          ).catch(() => undefined);
          if (answer?.body.pid === child.pid) {
            print(
              cmd,
              { pid: child.pid, started: true },
              () => `daemon started (pid ${child.pid})`,
            );
            return;
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const tail = existsSync(errors)
        ? readFileSync(errors)
            .subarray(errorsFrom)
            .toString('utf8')
            .trim()
            .split('\n')
            .slice(-5)
            .join('\n')
        : '';
      throw new Exit(
        EXIT.FAILED,
        child.exitCode === null && child.signalCode === null
          ? `the daemon (pid ${child.pid}) did not confirm its start within ${opts.timeout} ms; see \`belfry daemon logs\`${tail ? `:\n${tail}` : ''}`
          : `the daemon did not start${tail ? `:\n${tail}` : ''}`,
      );
    });

  daemon
    .command('stop')
    .description('stop the daemon gracefully')
    .addOption(
      new Option('--timeout <time>', 'how long to wait for it (ms, or with a unit: 30s, 1m)')
        .argParser(numeric(TIMEOUT_RULE))
        .default(30_000, '30s'),
    )
    .action(async (opts: { timeout: number }, cmd: Command) => {
      const paths = daemonPaths(cfg(cmd));
      if (!DaemonLock.held(paths.lock)) throw new Exit(EXIT.NOT_RUNNING, 'no daemon runs');
      // Its going away mid-answer is what was asked for: the lock says when it is gone.
      await callDaemon(paths.socket, 'POST', '/v1/stop').catch(() => undefined);
      const deadline = Date.now() + opts.timeout;
      while (Date.now() < deadline) {
        if (!DaemonLock.held(paths.lock)) {
          print(cmd, { stopped: true }, () => 'daemon stopped');
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Exit(EXIT.FAILED, `the daemon did not stop within ${opts.timeout} ms`);
    });

  daemon
    .command('status')
    .description('whether the daemon runs, and its heartbeat')
    .action(async (_opts: unknown, cmd: Command) => {
      const paths = daemonPaths(cfg(cmd));
      const state = readJson<DaemonState>(paths.state);
      const running = DaemonLock.held(paths.lock);
      const now = Date.now();
      const stale =
        running && state !== undefined && now - state.lastHeartbeat > 3 * state.heartbeatMs;
      // Files it cannot write (a full disk) are only known to the daemon: ask it.
      const answer = running
        ? await callDaemon<DaemonInfo>(paths.socket, 'GET', '/v1/ping', undefined, 2_000).catch(
            () => undefined,
          )
        : undefined;
      const faults = answer?.body.faults ?? [];
      const data = {
        state: running ? (stale ? 'stale' : 'running') : 'stopped',
        ...(state ?? {}),
        ...(running ? { faults } : {}),
      };
      print(cmd, data, () =>
        [
          running
            ? `${stale ? paint('33', 'stale') : paint('32', 'running')}: pid ${state?.pid}, up since ${new Date(state?.startedAt ?? now).toISOString()}, ${state?.heartbeatCount ?? 0} heartbeats, the last ${Math.round((now - (state?.lastHeartbeat ?? now)) / 1000)} s ago`
            : `stopped${state ? ` (last run: pid ${state.pid}, last heartbeat ${new Date(state.lastHeartbeat).toISOString()})` : ''}`,
          ...faults.map(
            (f) =>
              `${paint('31', 'cannot write')} ${f.file} since ${new Date(f.since).toISOString()} (${f.failures} times): ${f.error}`,
          ),
        ].join('\n'),
      );
      // As `systemctl is-active`: a script can test it.
      if (!running) throw new Exit(EXIT.STOPPED, '');
    });

  daemon
    .command('logs')
    .description("print the daemon's log")
    .addOption(
      new Option('-n, --lines <n>', 'the last n lines').argParser(numeric(LINES_RULE)).default(50),
    )
    .option('-f, --follow', 'keep printing what is written')
    .action(async (opts: { lines: number; follow?: boolean }, cmd: Command) => {
      const { log } = daemonPaths(cfg(cmd));
      if (!existsSync(log)) throw new Exit(EXIT.FAILED, `no log yet (${log})`);
      const n = opts.lines;
      const text = readFileSync(log, 'utf8');
      io.out(`${n === 0 ? '' : `${text.trimEnd().split('\n').slice(-n).join('\n')}\n`}`);
      if (!opts.follow) return;
      let offset = statSync(log).size;
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        const size = existsSync(log) ? statSync(log).size : 0;
        if (size < offset) offset = 0; // rotated
        if (size > offset) {
          io.out(readFileSync(log).subarray(offset, size).toString('utf8'));
          offset = size;
        }
      }
    });

  daemon
    .command('install')
    .description('print a service definition for the daemon')
    .requiredOption('--systemd', 'a systemd user unit')
    .action((_opts: unknown, cmd: Command) => {
      const c = cfg(cmd);
      io.out(`# ~/.config/systemd/user/belfry-${basename(c.home)}.service
[Unit]
Description=belfry daemon for ${c.home}
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
WorkingDirectory=${c.home}
ExecStart=${process.execPath} ${resolve(process.argv[1] as string)} daemon run --config ${c.file}
Restart=on-failure
RestartSec=5
# Only the daemon is stopped: the tmux server and the agents in it outlive a stop or a restart,
# and the next daemon adopts them (systemd's default, control-group, would kill them all).
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=default.target

# To use it:
#   mkdir -p ~/.config/systemd/user
#   belfry daemon install --systemd > ~/.config/systemd/user/belfry-${basename(c.home)}.service
#   systemctl --user daemon-reload
#   systemctl --user enable --now belfry-${basename(c.home)}.service
#   loginctl enable-linger "$USER"   # keep it running after you log out
`);
    });

  const rig = program
    .command('rig')
    .description('park, unpark, dock or undock a rig (carried out by the daemon)');
  for (const action of [
    'park',
    'unpark',
    'dock',
    'undock',
  ] as const satisfies readonly LifecycleAction[]) {
    const command = rig
      .command(`${action} <rig>`)
      .description(
        action === 'dock'
          ? 'dock a rig: its in-flight work may finish within the drain limit, then what is left is stopped (--now: stop at once); the request is stored and the daemon woken'
          : `${action} a rig: the request is stored and the daemon woken`,
      );
    if (action === 'dock')
      command.option('--now', 'stop the rig’s sessions at once instead of draining them');
    command.action(async (name: string, opts: { now?: boolean }, cmd: Command) => {
      const args = opts.now === true ? { immediate: true } : undefined;
      // Through the running daemon, else stored for it (the model's checks either way).
      const viaDaemon = await api<LifecycleRequest>(
        cmd,
        'POST',
        `/v1/rigs/${encodeURIComponent(name)}/${action}`,
        args ?? null,
      );
      const request =
        viaDaemon ??
        (await withModel(cmd, (m) =>
          m.lifecycle.request({
            action,
            target: name,
            requestedBy: 'cli',
            ...(args === undefined ? {} : { args }),
          }),
        ));
      const woke = viaDaemon !== undefined;
      print(
        cmd,
        { request, daemon: woke ? 'woken' : 'not running' },
        () =>
          `${action} ${name}: request ${request.id} stored; ${woke ? 'the daemon is carrying it out' : 'it waits for the daemon to start'}`,
      );
    });
  }

  const beads = program.command('bead').description('beads (units of work)');
  beads
    .command('create <title>')
    .description('create a bead')
    .option('--rig <rig>', 'the rig it belongs to')
    .action(async (title: string, opts: { rig?: string }, cmd: Command) => {
      const input = { title, ...(opts.rig ? { rig: opts.rig } : {}) };
      const bead =
        (await api<Bead>(cmd, 'POST', '/v1/beads', input)) ??
        (await withModel(cmd, (m) => m.beads.create(input)));
      print(cmd, bead, () => bead.id);
    });
  beads
    .command('list')
    .description('beads with a status and/or in a rig')
    .option('--status <status>', 'only beads with this status (open, hooked, done, blocked, …)')
    .option('--rig <rig>', 'only beads of this rig')
    .action(async (opts: { status?: string; rig?: string }, cmd: Command) => {
      const filter = {
        ...(opts.status ? { status: opts.status } : {}),
        ...(opts.rig ? { rig: opts.rig } : {}),
      };
      if (Object.keys(filter).length === 0)
        throw new Exit(EXIT.USAGE, 'give --status, --rig, or both');
      const query = new URLSearchParams(filter).toString();
      const list =
        (await api<Bead[]>(cmd, 'GET', `/v1/beads?${query}`)) ??
        (await withModel(cmd, (m) => m.beads.list(filter)));
      print(cmd, list, () =>
        list.length === 0
          ? 'no beads'
          : list
              .map((b) => `${b.id}  ${b.status.padEnd(7)} ${b.rig ?? '-'}  ${b.title}`)
              .join('\n'),
      );
    });
  beads
    .command('show <bead>')
    .description('one bead')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const bead =
        (await api<Bead>(cmd, 'GET', `/v1/beads/${encodeURIComponent(id)}`)) ??
        (await withModel(cmd, (m) => m.beads.require(id)));
      print(cmd, bead, () =>
        [`${bead.id} ${bead.status}: ${bead.title}`, `rig: ${bead.rig ?? '-'}`].join('\n'),
      );
    });

  program
    .command('sling <bead> <rig>')
    .description("hang a bead on a polecat's hook in a rig")
    .action(async (bead: string, rigName: string, _opts: unknown, cmd: Command) => {
      // Through the running town (its Witness starts the session at once), else into the store.
      const viaDaemon = await api<{ agent: string; created: boolean }>(cmd, 'POST', '/v1/sling', {
        bead,
        rig: rigName,
      });
      const { agent, created } =
        viaDaemon ??
        (await withModel(cmd, async (m) => {
          const { polecat, created } = await m.polecats.sling(bead, checkRigName(rigName, 'rig'));
          return { agent: polecat.id, created };
        }));
      print(
        cmd,
        { agent, bead, created, daemon: viaDaemon ? 'running' : 'not running' },
        () =>
          `${bead} → ${agent}${created ? ' (a new polecat)' : ''}; ${viaDaemon ? 'its session is starting' : 'its session starts when the daemon runs'}`,
      );
    });

  program
    .command('done [bead]')
    .description(
      'an agent finished its bead (run inside its session: the agent and bead come from BELFRY_AGENT and BELFRY_BEAD)',
    )
    .option('--agent <agent>', 'the agent (<rig>/<name>; default: $BELFRY_AGENT)')
    .option('--status <status>', 'what the bead becomes', 'done')
    .action(
      async (given: string | undefined, opts: { agent?: string; status: string }, cmd: Command) => {
        const agent = opts.agent ?? env.BELFRY_AGENT;
        const bead = given ?? env.BELFRY_BEAD;
        if (!agent || !bead)
          throw new Exit(
            EXIT.USAGE,
            `which ${!agent ? 'agent' : 'bead'}? Run it inside the agent's session (it sets BELFRY_AGENT and BELFRY_BEAD), or pass ${!agent ? '--agent <rig>/<name>' : 'the bead'}`,
          );
        await live(cmd, 'done', 'POST', '/v1/done', { agent, bead, status: opts.status });
        print(
          cmd,
          { agent, bead, status: opts.status },
          () => `${bead} ${opts.status}; ${agent}'s session is stopped`,
        );
      },
    );

  program
    .command('nudge <agent> <text>')
    .description("send text to an agent's session (delivery verified)")
    .action(async (agent: string, text: string, _opts: unknown, cmd: Command) => {
      await live(cmd, 'a nudge', 'POST', `${agentPath(agent)}/nudge`, { text });
      print(cmd, { agent, delivered: true }, () => `delivered to ${agent}`);
    });

  program
    .command('agent')
    .description("an agent's session")
    .command('logs <agent>')
    .description("an agent's last lines of output")
    .addOption(
      new Option('-n, --lines <n>', 'how many lines').argParser(numeric(LINES_RULE)).default(50),
    )
    .action(async (agent: string, opts: { lines: number }, cmd: Command) => {
      const { lines } = await live<{ lines: string[] }>(
        cmd,
        "an agent's output",
        'GET',
        `${agentPath(agent)}/output?lines=${Math.max(1, opts.lines)}`,
      );
      print(cmd, { agent, lines }, () => lines.join('\n'));
    });

  program
    .command('events')
    .description("the town's recent events (-f: and those to come)")
    .option('-f, --follow', 'keep printing events as they happen')
    .action(async (opts: { follow?: boolean }, cmd: Command) => {
      const socket = daemonPaths(cfg(cmd)).socket;
      const ended = await followEvents(socket, opts.follow === true, (id, event, data) =>
        io.out(
          json(cmd)
            ? `${JSON.stringify({ id, event, data })}\n`
            : `${id ?? '-'} ${event === 'town' ? describeEvent(data as never) : `${event}: ${JSON.stringify(data)}`}\n`,
        ),
      );
      if (ended === 'no-daemon')
        throw new Exit(
          EXIT.NOT_RUNNING,
          'no daemon runs; events need it (start it with `belfry daemon start`)',
        );
    });

  const gate = program.command('gate').description('list, approve and reject gates');
  gate
    .command('list')
    .description('the gates')
    .option('--open', 'only open gates')
    .option('--type <type>', 'only gates of this type')
    .action(async (opts: { open?: boolean; type?: string }, cmd: Command) => {
      const gates = await withModel(cmd, async (m) => {
        const open = await m.gates.open(opts.type ? { type: opts.type } : {});
        if (opts.open) return open;
        const closed = await m.store.transaction((tx) =>
          tx.find<Gate>('gates', 'byStatus', { prefix: ['closed'] }),
        );
        return [...open, ...closed.filter((g) => !opts.type || g.type === opts.type)];
      });
      print(cmd, gates, () =>
        gates.length === 0
          ? 'no gates'
          : gates
              .map(
                (g) =>
                  `${g.id}  ${g.type.padEnd(7)} ${g.status.padEnd(6)} ${JSON.stringify(g.spec)}${g.escalations.length ? `  ! ${g.escalations.at(-1)?.reason}` : ''}`,
              )
              .join('\n'),
      );
    });
  for (const decision of ['approve', 'reject'] as const) {
    gate
      .command(`${decision} <gate>`)
      .description(`${decision} a human gate`)
      .option('--by <name>', 'who decides (default: you, the OS user)', osUser())
      .option('--comment <text>', 'why')
      .action(async (id: string, opts: { by: string; comment?: string }, cmd: Command) => {
        const input = {
          by: opts.by,
          ...(opts.comment === undefined ? {} : { comment: opts.comment }),
        };
        // The running town's human gate decides it (gate.closed, its molecules move on); without
        // a daemon the decision is stored, checked by the same rule (humanOutcome).
        const viaDaemon = await api<Gate>(
          cmd,
          'POST',
          `/v1/gates/${encodeURIComponent(id)}/${decision}`,
          input,
        );
        const closed =
          viaDaemon ??
          (await withModel(cmd, async (m) => {
            const outcome = humanOutcome(
              await m.gates.require(id),
              decision === 'approve' ? 'approved' : 'rejected',
              { by: opts.by, ...(opts.comment === undefined ? {} : { comment: opts.comment }) },
              Date.now(),
            );
            return (await m.gates.close(id, outcome.result, outcome)).gate;
          }));
        print(
          cmd,
          closed,
          () => `gate ${id} ${decision === 'approve' ? 'approved' : 'rejected'} by ${opts.by}`,
        );
      });
  }

  const convoys = program.command('convoy').description('create convoys and follow them');
  convoys
    .command('create <title> <bead...>')
    .description('a convoy of beads, tracked until every one is done')
    .action(async (title: string, beadIds: string[], _opts: unknown, cmd: Command) => {
      const input = { title, beadIds };
      const convoy =
        (await api<Convoy>(cmd, 'POST', '/v1/convoys', input)) ??
        (await withModel(cmd, (m) => m.convoys.create(input)));
      print(cmd, convoy, () => convoy.id);
    });
  convoys
    .command('status <convoy>')
    .description("a convoy's state")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const convoy =
        (await api<Convoy>(cmd, 'GET', `/v1/convoys/${encodeURIComponent(id)}`)) ??
        (await withModel(cmd, (m) => m.convoys.require(id)));
      print(
        cmd,
        convoy,
        () =>
          `${convoy.id} ${convoy.status}: ${convoy.title}; ${convoy.openCount} of ${convoy.beadIds.length} beads open`,
      );
    });

  const warrant = program.command('warrant').description('file and list warrants');
  warrant
    .command('file <target>')
    .description('file a warrant against an agent')
    .requiredOption('--reason <text>', 'why')
    .option('--by <name>', 'who files it (default: you, the OS user)', osUser())
    .option(
      '--release <open|blocked>',
      "what becomes of the agent's bead: open (back to the pool) or blocked",
      'open',
    )
    .action(
      async (
        target: string,
        opts: { reason: string; by: string; release: string },
        cmd: Command,
      ) => {
        const input = {
          target,
          reason: opts.reason,
          filedBy: opts.by,
          release: opts.release as WarrantRelease,
        };
        const { warrant: w, created } =
          (await api<{ warrant: Warrant; created: boolean }>(cmd, 'POST', '/v1/warrants', input)) ??
          (await withModel(cmd, (m) => m.warrants.file(input)));
        print(
          cmd,
          w,
          () =>
            `${created ? 'filed' : 'already pending'}: warrant ${w.id} against ${target} (release ${w.release}); executed at the next patrol`,
        );
      },
    );
  warrant
    .command('list')
    .description('pending warrants')
    .action(async (_opts: unknown, cmd: Command) => {
      const list = await withModel(cmd, (m) => m.warrants.pending());
      print(cmd, list, () =>
        list.length === 0
          ? 'no pending warrants'
          : list.map((w) => `${w.id} ${w.target}: ${w.reason}`).join('\n'),
      );
    });

  program
    .command('status')
    .description('the tree: rigs, witnesses, polecats with their sessions (live from the daemon)')
    .action(async (_opts: unknown, cmd: Command) => {
      const paths = daemonPaths(cfg(cmd));
      // Live from the running town; the daemon's last snapshot only when it does not answer.
      const now = await api<{ town: TownStatus }>(cmd, 'GET', '/v1/status').catch(() => undefined);
      if (now) {
        const data = {
          daemonRunning: true,
          live: true,
          stale: false,
          asOf: Date.now(),
          ...now.town,
        };
        print(cmd, data, () => renderTree(data, true, paint));
        return;
      }
      const running = DaemonLock.held(paths.lock);
      const status = readJson<TownStatus>(paths.status);
      if (!status)
        throw new Exit(
          running ? EXIT.FAILED : EXIT.NOT_RUNNING,
          running
            ? 'the daemon has not written its status yet'
            : 'no daemon runs, and none has run here',
        );
      // The tree is the daemon's last snapshot: say how old it is, and never pass a stopped or
      // silent daemon's tree off as the town now.
      const state = readJson<DaemonState>(paths.state);
      const asOf = status.daemon.lastHeartbeat ?? state?.lastHeartbeat ?? null;
      const stale =
        running && state !== undefined && Date.now() - state.lastHeartbeat > 3 * state.heartbeatMs;
      const data = { daemonRunning: running, live: false, stale, asOf, ...status };
      print(cmd, data, () => {
        const when = asOf === null ? 'an unknown time' : new Date(asOf).toISOString();
        const label = !running
          ? `${paint('31', 'daemon stopped')}; the tree as of ${when}, when it last beat:`
          : stale
            ? `${paint('33', 'daemon stale')} (no heartbeat for ${Math.round((Date.now() - (state?.lastHeartbeat ?? 0)) / 1000)} s); the tree as of ${when}:`
            : undefined;
        return [...(label ? [label] : []), renderTree(data, running, paint)].join('\n');
      });
      if (!running) throw new Exit(EXIT.NOT_RUNNING, '');
    });

  try {
    // `belfry nosuch --help` is an unknown command, not the root's help with exit 0.
    const unknown = unknownCommand(program, argv);
    if (unknown) {
      io.err(`belfry: ${unknown}\n(run with --help for usage)\n`);
      return EXIT.USAGE;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.OK;
  } catch (error) {
    if (error instanceof CommanderError)
      return error.exitCode === 0 ||
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version'
        ? EXIT.OK
        : EXIT.USAGE;
    if (error instanceof Exit) {
      if (error.message !== '') io.err(`belfry: ${error.message}\n`);
      return error.code;
    }
    if (error instanceof ConfigError) {
      io.err(`belfry: ${error.message}\n${configFile ? runningDespite(configFile) : ''}`);
      return EXIT.USAGE;
    }
    if (error instanceof BelfryError) {
      io.err(`belfry: ${error.message}\n`);
      return EXIT.FAILED;
    }
    throw error;
  }
}

/**
 * The first word of `argv` that should name a (sub)command but names none, as a message; undefined
 * when every command word is known. Option values are skipped (`-c <file>`, `--timeout 5s`).
 */
function unknownCommand(program: Command, argv: readonly string[]): string | undefined {
  let command = program;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--' || word === 'help') return undefined;
    if (word.startsWith('-')) {
      const option = [...command.options, ...program.options].find(
        (o) => o.long === word || o.short === word,
      );
      if (option && (option.required || option.optional) && !word.includes('=')) i++;
      continue;
    }
    if (command.commands.length === 0) return undefined;
    const next = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) {
      const where = command === program ? 'belfry' : `belfry ${command.name()}`;
      return `unknown command '${word}' for ${where}; commands: ${command.commands.map((c) => c.name()).join(', ')}`;
    }
    command = next;
  }
  return undefined;
}

function renderTree(
  s: TownStatus & { daemonRunning: boolean },
  running: boolean,
  paint: (c: string, t: string) => string,
): string {
  const lines = [
    `daemon: ${running ? paint('32', 'running') : paint('31', 'stopped')}${s.daemon.lastHeartbeat ? `, last heartbeat ${new Date(s.daemon.lastHeartbeat).toISOString()}` : ''}, ${s.daemon.heartbeatCount} heartbeats`,
    `deacon: ${s.deacon.state}, ${s.deacon.restarts} restarts`,
  ];
  for (const rig of s.rigs) {
    lines.push(
      `rig ${rig.name} (${rig.state}): witness ${rig.witness?.state ?? 'none'}, ${rig.witness?.restarts ?? 0} restarts`,
    );
    for (const p of rig.polecats)
      lines.push(
        `  ${p.agent}: ${p.session.state}${p.beadId ? ` on ${p.beadId}` : ''}, ${p.restarts} restarts, ${p.respawns} respawns${p.session.lastActivityAt ? `, active ${new Date(p.session.lastActivityAt).toISOString()}` : ''}`,
      );
  }
  lines.push(`gates open: ${s.gates.open}`);
  return lines.join('\n');
}
