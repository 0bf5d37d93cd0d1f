import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { DaemonInfo } from '../api/server';
import { DaemonLock } from '../daemonLock';
import { formatLogLine, LOG_LEVELS, type LogLevel } from '../logFormat';
import { LINES_RULE, numeric, TIMEOUT_RULE } from '../numericOption';
import {
  ALREADY_RUNNING,
  callDaemon,
  controlSocketProblem,
  type DaemonState,
  daemonPaths,
  ensureStateDir,
  readJson,
} from '../runtime';
import { type Context, EXIT, Exit, type Register } from './context';

/** The pid the running daemon recorded, if it did. */
async function runningPid(paths: { state: string; socket: string }): Promise<number | undefined> {
  // Asked of the daemon itself (state.json may still be the last run's while it starts); it
  // listens within moments of taking the lock.
  const deadline = Date.now() + 3_000;
  for (;;) {
    const answer = await callDaemon<DaemonInfo>(
      paths.socket,
      'GET',
      '/v1/ping',
      undefined,
      1_000,
    ).catch(() => undefined);
    if (answer?.body.pid !== undefined) return answer.body.pid;
    if (Date.now() > deadline) return readJson<DaemonState>(paths.state)?.pid;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether `path` is a Unix socket now. */
function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** `--log-level`: one of the log's levels, else a usage error listing them. */
function logLevelOption(): Option {
  return new Option(
    '--log-level <level>',
    "the least severe entries the daemon logs (default: the config's logs.level, else info)",
  ).choices(LOG_LEVELS);
}

/** `belfry daemon`. */
export const register: Register = (program: Command, c: Context) => {
  const daemon = program.command('daemon').description('run, start, stop and inspect the daemon');

  daemon
    .command('run')
    .description('run the daemon in the foreground, printing events, until Ctrl-C')
    .option('--memory-if-no-tmux', 'use the memory driver where tmux is missing')
    .addOption(logLevelOption())
    .action(async (opts: { memoryIfNoTmux?: boolean; logLevel?: LogLevel }, cmd: Command) => {
      const config = c.cfg(cmd);
      // Output that cannot be written (a full disk under daemon.stderr, a closed pipe) is lost,
      // never the end of the daemon.
      for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
      // The daemon's code (its server, drivers and store) is loaded by this command only.
      const { runDaemon } = await import('../daemon');
      const running = await runDaemon(config, {
        // What the log gets, readable (the same entries: the same level).
        onLog: (line) => c.out(`${formatLogLine(line.trimEnd(), c.paint)}\n`),
        fallbackDriver: opts.memoryIfNoTmux === true,
        ...(opts.logLevel === undefined ? {} : { logLevel: opts.logLevel }),
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
    .addOption(logLevelOption())
    .action(async (opts: { timeout: number; logLevel?: LogLevel }, cmd: Command) => {
      const config = c.cfg(cmd);
      const paths = daemonPaths(config);
      ensureStateDir(paths);
      if (DaemonLock.held(paths.lock)) {
        const pid = await runningPid(paths);
        throw new Exit(
          EXIT.ALREADY_RUNNING,
          `a daemon already runs for ${config.home}${pid ? ` (pid ${pid})` : ''}`,
        );
      }
      const bin = process.argv[1] as string;
      const errors = join(config.stateDir, 'daemon.stderr');
      // What this start adds to the file is what explains a failure, not an earlier run's lines.
      const errorsFrom = existsSync(errors) ? statSync(errors).size : 0;
      const child = spawn(
        process.execPath,
        [
          ...process.execArgv,
          bin,
          'daemon',
          'run',
          '--config',
          config.file,
          ...(opts.logLevel === undefined ? [] : ['--log-level', opts.logLevel]),
        ],
        {
          detached: true,
          stdio: ['ignore', 'ignore', openSync(errors, 'a', 0o600)],
          cwd: config.home,
          env: c.env,
        },
      );
      child.unref();
      const deadline = Date.now() + opts.timeout;
      while (Date.now() < deadline) {
        if (child.exitCode === ALREADY_RUNNING) {
          const pid = readJson<DaemonState>(paths.state)?.pid;
          throw new Exit(
            EXIT.ALREADY_RUNNING,
            `a daemon already runs for ${config.home}${pid ? ` (pid ${pid})` : ''}`,
          );
        }
        if (child.exitCode !== null || child.signalCode !== null) break;
        // Read again each time: a deep town's daemon records a socket of its own choosing.
        const socket = daemonPaths(config).socket;
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
            c.print(
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
      const paths = daemonPaths(c.cfg(cmd));
      if (!DaemonLock.held(paths.lock)) throw new Exit(EXIT.NOT_RUNNING, 'no daemon runs');
      // Its going away mid-answer is what was asked for: the lock says when it is gone.
      await callDaemon(paths.socket, 'POST', '/v1/stop').catch(() => undefined);
      const deadline = Date.now() + opts.timeout;
      while (Date.now() < deadline) {
        if (!DaemonLock.held(paths.lock)) {
          c.print(cmd, { stopped: true }, () => 'daemon stopped');
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
      const paths = daemonPaths(c.cfg(cmd));
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
        ...(answer ? { townId: answer.body.townId } : {}),
        ...(answer?.body.tcp ? { tcp: answer.body.tcp } : {}),
      };
      c.print(cmd, data, () =>
        [
          running
            ? `${stale ? c.paint('33', 'stale') : c.paint('32', 'running')}: pid ${state?.pid}${answer ? `, town ${answer.body.townId}` : ''}, up since ${new Date(state?.startedAt ?? now).toISOString()}, ${state?.heartbeatCount ?? 0} heartbeats, the last ${Math.round((now - (state?.lastHeartbeat ?? now)) / 1000)} s ago`
            : `stopped${state ? ` (last run: pid ${state.pid}, last heartbeat ${new Date(state.lastHeartbeat).toISOString()})` : ''}`,
          ...(answer?.body.tcp
            ? [
                `API on TCP too: http://${answer.body.tcp.host.includes(':') ? `[${answer.body.tcp.host}]` : answer.body.tcp.host}:${answer.body.tcp.port} (bearer token required)`,
              ]
            : []),
          ...faults.map(
            (f) =>
              `${c.paint('31', 'cannot write')} ${f.file} since ${new Date(f.since).toISOString()} (${f.failures} times): ${f.error}`,
          ),
        ].join('\n'),
      );
      // As `systemctl is-active`: a script can test it.
      if (!running) throw new Exit(EXIT.STOPPED, '');
    });

  daemon
    .command('logs')
    .description("print the daemon's log, readable (with --json: its JSON lines as they are)")
    .addOption(
      new Option('-n, --lines <n>', 'the last n lines').argParser(numeric(LINES_RULE)).default(50),
    )
    .option('-f, --follow', 'keep printing what is written')
    .action(async (opts: { lines: number; follow?: boolean }, cmd: Command) => {
      const { log } = daemonPaths(c.cfg(cmd));
      if (!existsSync(log)) throw new Exit(EXIT.FAILED, `no log yet (${log})`);
      // A line that is not a JSON entry (an older daemon's text) is printed as it is.
      const show = c.json(cmd)
        ? (line: string) => line
        : (line: string) => formatLogLine(line, c.paint);
      const print = (lines: readonly string[]) =>
        c.out(lines.map((line) => `${show(line)}\n`).join(''));
      const n = opts.lines;
      const text = readFileSync(log, 'utf8');
      if (n > 0 && text.trim() !== '') print(text.trimEnd().split('\n').slice(-n));
      if (!opts.follow) return;
      let offset = statSync(log).size;
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        const size = existsSync(log) ? statSync(log).size : 0;
        if (size < offset) offset = 0; // rotated
        if (size > offset) {
          const chunk = readFileSync(log).subarray(offset, size);
          // Whole lines only: one being written is printed once it ends.
          const end = chunk.lastIndexOf(0x0a);
          if (end >= 0) {
            print(chunk.subarray(0, end).toString('utf8').split('\n'));
            offset += end + 1;
          }
        }
      }
    });

  daemon
    .command('install')
    .description('print a service definition for the daemon')
    .requiredOption('--systemd', 'a systemd user unit')
    .action((_opts: unknown, cmd: Command) => {
      const config = c.cfg(cmd);
      // One unit per town folder: two towns in folders of the same name (x/town, y/town) get
      // two units (the folder's name for people, a hash of its path to tell them apart).
      const unit = `belfry-${basename(config.home).replace(/[^A-Za-z0-9_.-]/g, '_')}-${createHash('sha256').update(config.home).digest('hex').slice(0, 8)}.service`;
      c.out(`# ~/.config/systemd/user/${unit}
[Unit]
Description=belfry daemon for ${config.home}
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
WorkingDirectory=${config.home}
ExecStart=${process.execPath} ${resolve(process.argv[1] as string)} daemon run --config ${config.file}
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
#   belfry daemon install --systemd > ~/.config/systemd/user/${unit}
#   systemctl --user daemon-reload
#   systemctl --user enable --now ${unit}
#   loginctl enable-linger "$USER"   # keep it running after you log out
`);
    });
};
