import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createTown, type Town, type TownEvent } from '@belfry/core';
import type { SessionDriver } from '@belfry/core/driver';
import type { GateEvaluator } from '@belfry/core/gate';
import { createMemoryDriver } from '@belfry/driver-memory';
import { createTmuxDriver, type TmuxSocket } from '@belfry/driver-tmux';
import { githubGate } from '@belfry/gate-github';
import { type HumanGateEvaluator, humanGate } from '@belfry/gate-human';
import { timerGate } from '@belfry/gate-timer';
import type { SqliteStore } from '@belfry/store-sqlite';
import { type ApiOptions, type ApiServer, startApi } from './api/server';
import { isLoopback, readApiToken } from './apiAccess';
import type { BelfryConfig } from './config';
import { DaemonLogger, severityLevel } from './DaemonLogger';
import { DaemonLock } from './daemonLock';
import type { LogLevel } from './logFormat';
import {
  ALREADY_RUNNING,
  DaemonFilesError,
  DaemonLog,
  type DaemonState,
  daemonPaths,
  ensureStateDir,
  placeControlSocket,
  readJson,
  removeLeftovers,
  removePrivateSocketFolder,
  writeJsonAtomic,
} from './runtime';
import { resolveTmuxSocket, settleTmuxSocket } from './tmuxSocket';
import { openTownStore, readTownRecord, townIdOf } from './townStore';
import { VERSION } from './version';

/** Whether tmux can be run here. */
export function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a daemon of this config runs tmux (not the memory driver, which stands in where tmux is
 * missing when `fallback` allows it).
 */
export function usesTmux(config: BelfryConfig, options: { fallback?: boolean } = {}): boolean {
  return config.driver.kind === 'tmux' && (hasTmux() || !options.fallback);
}

/**
 * The driver a config asks for (the memory driver where tmux is missing, when allowed). tmux runs
 * on `options.socket`, the one the daemon settled (see {@link settleTmuxSocket}), else on the one
 * the config resolves to.
 */
export function driverFor(
  config: BelfryConfig,
  options: { fallback?: boolean; socket?: TmuxSocket } = {},
): SessionDriver {
  if (config.driver.kind === 'tmux' && usesTmux(config, options))
    return createTmuxDriver({
      socket:
        options.socket ?? resolveTmuxSocket(config, readTownRecord(config)?.tmuxSocket).socket,
      stopGraceMs: config.driver.stopGraceMs,
      inheritEnv: config.driver.inheritEnv,
    });
  return createMemoryDriver();
}

/** The gate evaluators a config turns on. */
export function gatesFor(config: BelfryConfig): GateEvaluator[] {
  const gates: GateEvaluator[] = [];
  if (config.gates.timer) gates.push(timerGate());
  if (config.gates.human) gates.push(humanGate());
  if (config.gates.github)
    gates.push(
      githubGate({
        token: process.env[config.gates.github.tokenEnv] ?? null,
        baseUrl: config.gates.github.baseUrl,
        onFailure: config.gates.github.onFailure,
      }),
    );
  return gates;
}

/** How a daemon ended: why, and whether that was a failure (`belfry daemon run` exits 1). */
export interface DaemonExit {
  reason: string;
  failed: boolean;
}

/** A running daemon: its town and how to stop it. */
export interface RunningDaemon {
  town: Town;
  /** Settles once the daemon stopped (lock released, socket removed), saying why. */
  stopped: Promise<DaemonExit>;
  stop(reason: string): Promise<void>;
}

/**
 * Runs the daemon in this process: takes the lock (or throws ALREADY_RUNNING), opens the town's
 * store (see {@link openTownStore}), listens on the control socket, and only then starts the town
 * (a daemon that cannot listen never starts one); writes its state every heartbeat, checks there
 * that the store file is still the one it opened, and logs (JSON lines through pino, see
 * {@link DaemonLogger}). Writing its own files never ends it (see {@link OwnFiles}); the town
 * failing, or its store being removed or replaced, stops it as a failure. With `api.tcp` in the
 * config it serves its API on TCP too, with the bearer token from `api.tokenFile` (a token file
 * open to others stops the start).
 */
export async function runDaemon(
  config: BelfryConfig,
  options: {
    /** Each log entry as written (a JSON line with its newline), e.g. for the foreground. */
    onLog?: (line: string) => void;
    /** The least severe entries logged. @defaultValue `config.logs.level` */
    logLevel?: LogLevel;
    fallbackDriver?: boolean;
  } = {},
): Promise<RunningDaemon> {
  const paths = daemonPaths(config);
  ensureStateDir(paths);
  mkdirSync(dirname(config.store.path), { recursive: true, mode: 0o700 });
  const lock = DaemonLock.acquire(paths.lock);
  if (!lock) {
    const holder = readJson<DaemonState>(paths.state)?.pid;
    const error = new Error(
      `a belfry daemon already runs for ${config.home}${holder ? ` (pid ${holder})` : ''}; it holds ${paths.lock}`,
    );
    (error as Error & { exitCode?: number }).exitCode = ALREADY_RUNNING;
    throw error;
  }
  // Only the lock's holder writes these: what is there is a killed daemon's half-written file.
  removeLeftovers(paths);
  const logFile = new DaemonLog(paths.log, config.logs.maxBytes, config.logs.keep);
  const files = new OwnFiles();
  /** A change of a file's state (its first failure, its recovery): a warning, or news. */
  const tellChange = (file: string, change: string) =>
    log.log(files.faults().some((f) => f.file === file) ? 'warn' : 'info', change, { file });
  const log: DaemonLogger = new DaemonLogger({
    level: options.logLevel ?? config.logs.level,
    secrets: [config.gates.github ? process.env[config.gates.github.tokenEnv] : undefined],
    write: (line) => {
      options.onLog?.(line);
      const change = files.attempt('daemon.log', () => logFile.write(line));
      // After this entry: while the log fails, only the foreground hears it (no loop, the failure
      // is known); once it is written again, the recovery goes into it.
      if (change) queueMicrotask(() => tellChange('daemon.log', change));
    },
  });
  const say = (line: string) => log.info(line);
  const writeOwn = (file: string, write: () => void) => {
    const change = files.attempt(file, write);
    if (change) tellChange(file, change);
  };
  let store: SqliteStore | undefined;
  let server: ApiServer | undefined;
  let town: Town | undefined;
  let stopping: Promise<void> | undefined;
  let resolveStopped: (exit: DaemonExit) => void = () => {};
  const stopped = new Promise<DaemonExit>((r) => {
    resolveStopped = r;
  });
  const stop = (reason: string, failed = false): Promise<void> => {
    stopping ??= (async () => {
      log.log(failed ? 'error' : 'info', `stopping: ${reason}`);
      await town
        ?.stop()
        .catch((error: Error) => log.error(`the town did not stop cleanly: ${error.message}`));
      await server?.close().catch(() => undefined);
      rmSync(paths.socket, { force: true });
      removePrivateSocketFolder(paths);
      await store?.close().catch(() => undefined);
      lock.release();
      say('stopped');
      resolveStopped({ reason, failed });
    })();
    return stopping;
  };
  try {
    store = openTownStore(config);
    const opened = store;
    // The town's id labels its sessions: another town's are never stopped, adopted or counted.
    const townId = await townIdOf(store);
    const fallback = options.fallbackDriver ?? false;
    // On the town's own tmux server; refused when its agents still run on another one.
    const tmux = usesTmux(config, { fallback })
      ? await settleTmuxSocket(config, townId)
      : undefined;
    if (tmux?.note) say(tmux.note);
    const driver = driverFor(config, {
      fallback,
      ...(tmux === undefined ? {} : { socket: tmux.socket }),
    });
    const gates = gatesFor(config);
    const fill = (text: string, v: Record<string, string>) =>
      text.replace(/\{(agent|bead|title)\}/g, (_, k: string) => v[k] ?? '');
    const running = createTown({
      id: townId,
      store,
      driver,
      rigs: config.rigs,
      gates,
      timings: config.timings,
      agent: {
        launch: () => ({
          command: config.agent.command,
          // `belfry done` inside the session finds the town wherever the agent works.
          env: { ...config.agent.env, BELFRY_CONFIG: config.file },
          ...(config.agent.cwd ? { cwd: config.agent.cwd } : {}),
        }),
        prime: ({ polecat, bead }) =>
          fill(config.agent.prime, { agent: polecat.id, bead: bead.id, title: bead.title }),
      },
      mayor: (m) => {
        if (m.kind === 'report')
          log.log(
            severityLevel(m.report.severity),
            `mayor ← [${m.report.severity}] ${m.report.title}`,
            { incidentKey: m.report.incidentKey, source: m.report.source },
          );
      },
    });
    town = running;
    const startedAt = Date.now();
    // The token before anything listens: a token file open to others stops the start.
    let tcp: ApiOptions['tcp'];
    if (config.api.tcp) {
      const token = readApiToken(config.api.tokenFile);
      log.addSecret(token);
      tcp = { ...config.api.tcp, token };
    }
    // Listen before the town starts: a daemon that cannot take its socket starts nothing.
    placeControlSocket(paths);
    try {
      rmSync(paths.socket, { force: true });
      const human = humanOf(gates);
      server = await startApi(paths.socket, {
        town: running,
        daemon: () => ({
          pid: process.pid,
          version: VERSION,
          townId,
          startedAt,
          faults: files.faults(),
          ...(server?.tcp ? { tcp: server.tcp } : {}),
        }),
        stop: () => void stop('asked to stop'),
        ...(human ? { human } : {}),
        ...(tcp ? { tcp } : {}),
      });
    } catch (error) {
      if (error instanceof DaemonFilesError) throw error;
      throw new DaemonFilesError({
        code: 'CONTROL_SOCKET',
        message: `cannot listen on the control socket ${paths.socket} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); the daemon did not start its town. Remove what is at that path, or free it, and start again`,
        cause: error,
      });
    }
    let heartbeatCount = 0;
    const writeState = () =>
      writeOwn('state.json', () =>
        writeJsonAtomic(paths.state, {
          pid: process.pid,
          startedAt,
          lastHeartbeat: Date.now(),
          heartbeatCount,
          heartbeatMs: config.timings.heartbeatMs ?? 180_000,
          socket: paths.socket,
          config: config.file,
        } satisfies DaemonState),
      );
    const writeStatus = async () => {
      const status = await running.status();
      writeOwn('status.json', () => writeJsonAtomic(paths.status, status));
    };
    running.events.on('*', (e: TownEvent) => {
      log.event(e);
      if (e.type === 'heartbeat') {
        heartbeatCount = e.count;
        try {
          opened.verifyFile();
        } catch (error) {
          void stop((error as Error).message, true);
          return;
        }
        writeState();
        void writeStatus().catch(() => undefined);
      }
    });
    writeState();
    await running.start();
    running.whenStopped().then(
      () => void stop('the town stopped', !stopping),
      (error: Error) => void stop(`the town failed: ${error.message}`, true),
    );
    await writeStatus();
    say(
      `started: pid ${process.pid}, store ${config.store.path}, driver ${driver.kind}, rigs ${config.rigs.join(', ') || 'none'}`,
    );
    if (server?.tcp) {
      const { host, port } = server.tcp;
      const where = { host, port, tokenFile: config.api.tokenFile };
      if (isLoopback(host)) log.info(`the API listens on TCP at ${host}:${port} too`, where);
      else
        log.warn(
          `the API listens on TCP at ${host}:${port}, which is not a loopback address: whoever can reach it and has the token in ${config.api.tokenFile} can steer the town`,
          where,
        );
    }
    return { town: running, stopped, stop };
  } catch (error) {
    log.error(`could not start: ${(error as Error).message}`);
    await town?.stop().catch(() => undefined);
    await server?.close().catch(() => undefined);
    removePrivateSocketFolder(paths);
    await store?.close().catch(() => undefined);
    lock.release();
    throw error;
  }
}

/** A file of the daemon's own that it cannot write now. */
export interface OwnFileFault {
  file: string;
  /** The error (its code and message), e.g. `ENOSPC: no space left on device`. */
  error: string;
  /** When writing it first failed (ms since the epoch), and how often it failed since. */
  since: number;
  failures: number;
}

/**
 * The daemon's writes to its own files (state, status, log). None of them may end the daemon: a
 * failed write (a full disk) is remembered with when it began and how often it failed; its first
 * failure and its recovery are each told once; `ping` answers the open ones.
 */
export class OwnFiles {
  private readonly failing = new Map<string, OwnFileFault>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Runs one write. Returns a line to tell when this write changed the file's state (its first
   * failure, or its first success after failures), otherwise undefined.
   */
  attempt(file: string, write: () => void): string | undefined {
    try {
      write();
    } catch (error) {
      const known = this.failing.get(file);
      if (known) {
        known.failures++;
        return undefined;
      }
      const e = error as NodeJS.ErrnoException;
      const fault = {
        file,
        error: e.message ?? String(error),
        since: this.now(),
        failures: 1,
      };
      this.failing.set(file, fault);
      return `cannot write ${file}: ${fault.error}; the daemon goes on and tries again`;
    }
    const was = this.failing.get(file);
    if (!was) return undefined;
    this.failing.delete(file);
    return `${file} is written again (it failed ${was.failures} times over ${Math.round((this.now() - was.since) / 1000)} s: ${was.error})`;
  }

  /** The files failing now. */
  faults(): OwnFileFault[] {
    return [...this.failing.values()].map((f) => ({ ...f }));
  }
}

/** The town's human gate evaluator, if the config turned it on (approve and reject). */
function humanOf(gates: readonly GateEvaluator[]): HumanGateEvaluator | undefined {
  return gates.find((g) => g.type === 'human') as HumanGateEvaluator | undefined;
}
