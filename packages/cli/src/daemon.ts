import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname } from 'node:path';
import { createTown, type Town, type TownEvent } from '@belfry/core';
import type { SessionDriver } from '@belfry/core/driver';
import type { GateEvaluator } from '@belfry/core/gate';
import { createMemoryDriver } from '@belfry/driver-memory';
import { createTmuxDriver } from '@belfry/driver-tmux';
import { githubGate } from '@belfry/gate-github';
import { humanGate } from '@belfry/gate-human';
import { timerGate } from '@belfry/gate-timer';
import { SqliteStore } from '@belfry/store-sqlite';
import type { BelfryConfig } from './config';
import {
  DaemonLock,
  DaemonLog,
  type DaemonState,
  daemonPaths,
  ensureStateDir,
  listenControl,
  placeControlSocket,
  removePrivateSocketFolder,
  writeJsonAtomic,
} from './runtime';

/** Whether tmux can be run here. */
export function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The driver a config asks for (the memory driver where tmux is missing, when allowed). */
export function driverFor(
  config: BelfryConfig,
  options: { fallback?: boolean } = {},
): SessionDriver {
  if (config.driver.kind === 'tmux' && (hasTmux() || !options.fallback))
    return createTmuxDriver({
      socket: { name: config.driver.socket },
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

/** A running daemon: its town and how to stop it. */
export interface RunningDaemon {
  town: Town;
  /** Settles once the daemon stopped (lock released, socket removed). */
  stopped: Promise<void>;
  stop(reason: string): Promise<void>;
}

/** Exit codes of `belfry daemon run` / `start` when it cannot run. */
export const ALREADY_RUNNING = 3;

/**
 * Runs the daemon in this process: takes the lock (or throws ALREADY_RUNNING), opens the store,
 * starts the town, writes its state every heartbeat, logs, and listens on the control socket.
 */
export async function runDaemon(
  config: BelfryConfig,
  options: { onEvent?: (line: string) => void; fallbackDriver?: boolean } = {},
): Promise<RunningDaemon> {
  const paths = daemonPaths(config);
  ensureStateDir(paths);
  mkdirSync(dirname(config.store.path), { recursive: true, mode: 0o700 });
  const lock = DaemonLock.acquire(paths.lock);
  if (!lock) {
    const error = new Error(
      `a belfry daemon already runs for ${config.home} (it holds ${paths.lock})`,
    );
    (error as Error & { exitCode?: number }).exitCode = ALREADY_RUNNING;
    throw error;
  }
  const log = new DaemonLog(paths.log, config.logs.maxBytes, config.logs.keep);
  const say = (line: string) => {
    log.write(line);
    options.onEvent?.(line);
  };
  let store: SqliteStore | undefined;
  let server: Server | undefined;
  try {
    store = SqliteStore.open({ path: config.store.path, durability: config.store.durability });
    const driver = driverFor(config, { fallback: options.fallbackDriver ?? false });
    const fill = (text: string, v: Record<string, string>) =>
      text.replace(/\{(agent|bead|title)\}/g, (_, k: string) => v[k] ?? '');
    const town = createTown({
      store,
      driver,
      rigs: config.rigs,
      gates: gatesFor(config),
      timings: config.timings,
      agent: {
        launch: () => ({
          command: config.agent.command,
          env: config.agent.env,
          ...(config.agent.cwd ? { cwd: config.agent.cwd } : {}),
        }),
        prime: ({ polecat, bead }) =>
          fill(config.agent.prime, { agent: polecat.id, bead: bead.id, title: bead.title }),
      },
      mayor: (m) => {
        if (m.kind === 'report') say(`mayor ← [${m.report.severity}] ${m.report.title}`);
      },
    });
    const startedAt = Date.now();
    let heartbeatCount = 0;
    const writeState = () => {
      const state: DaemonState = {
        pid: process.pid,
        startedAt,
        lastHeartbeat: Date.now(),
        heartbeatCount,
        heartbeatMs: config.timings.heartbeatMs ?? 180_000,
        socket: paths.socket,
        config: config.file,
      };
      writeJsonAtomic(paths.state, state);
    };
    const writeStatus = async () => writeJsonAtomic(paths.status, await town.status());
    town.events.on('*', (e: TownEvent) => {
      if (e.type === 'heartbeat') {
        heartbeatCount = e.count;
        writeState();
        void writeStatus().catch(() => undefined);
        return;
      }
      if (e.type === 'patrol.step' || e.type === 'patrol.started') return;
      say(describeEvent(e));
    });
    placeControlSocket(paths);
    writeState();
    await town.start();
    await writeStatus();
    let stopping: Promise<void> | undefined;
    let resolveStopped: () => void = () => {};
    const stopped = new Promise<void>((r) => {
      resolveStopped = r;
    });
    const stop = (reason: string): Promise<void> => {
      stopping ??= (async () => {
        say(`stopping: ${reason}`);
        await town.stop();
        server?.close();
        rmSync(paths.socket, { force: true });
        removePrivateSocketFolder(paths);
        await store?.close();
        lock.release();
        say('stopped');
        resolveStopped();
      })();
      return stopping;
    };
    server = await listenControl(paths.socket, async (request) => {
      if (request.cmd === 'wake') town.wake();
      else if (request.cmd === 'stop') void stop('asked to stop');
      return { pid: process.pid };
    });
    say(
      `started: pid ${process.pid}, store ${config.store.path}, driver ${driver.kind}, rigs ${config.rigs.join(', ') || 'none'}`,
    );
    return { town, stopped, stop };
  } catch (error) {
    server?.close();
    removePrivateSocketFolder(paths);
    await store?.close().catch(() => undefined);
    lock.release();
    throw error;
  }
}

/** One line for the log and the foreground run. */
export function describeEvent(e: TownEvent): string {
  const { type, at: _at, ...rest } = e as TownEvent & { at?: number };
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${type}${fields ? ` ${fields}` : ''}`;
}
