import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, DriverError, TOWN_LABEL } from '@belfry/core';
import type { SessionStatus } from '@belfry/core/driver';
import { createTmuxDriver, type TmuxSocket } from '@belfry/driver-tmux';
import type { BelfryConfig } from './config';
import { readTownRecord, recordTmuxSocket } from './townStore';
import {
  fitsUnixSocket,
  isPrivateSocketFolder,
  MAX_SOCKET_BYTES,
  makePrivateSocketFolder,
} from './unixSocket';

/** The town's own tmux server's socket, in its state folder. */
export const TMUX_SOCKET_FILE = 'tmux.sock';

/** A socket as tmux's options give it: `-S <path>` or `-L <name>`. */
export function describeTmuxSocket(socket: TmuxSocket): string {
  return 'path' in socket ? `-S ${socket.path}` : `-L ${socket.name}`;
}

function sameSocket(a: TmuxSocket, b: TmuxSocket): boolean {
  return 'path' in a
    ? 'path' in b && resolve(a.path) === resolve(b.path)
    : 'name' in b && a.name === b.name;
}

/**
 * The socket name a town whose config named none ran on before towns had a server in their
 * state folder: `belfry-`, the folder's name (up to 32 characters, others as `-`) and 8 hex
 * digits of a hash of its path. Only read to find the sessions such a town left running.
 *
 * @param home - the town's folder (absolute).
 */
export function legacyTmuxSocketName(home: string): string {
  const slug = basename(home)
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 32);
  const hash = createHash('sha256').update(resolve(home)).digest('hex').slice(0, 8);
  return `belfry-${slug ? `${slug}-` : ''}${hash}`;
}

/** Where a town's tmux server is, and, when it is not where one would look, why. */
export interface ResolvedTmuxSocket {
  socket: TmuxSocket;
  /** Set when the state folder was too deep for the socket: where it went instead, and why. */
  note?: string;
}

/**
 * The tmux server a daemon of this config runs its sessions on. The one the config names (a
 * name, `-L`, or a path, `-S`); else the town's own, `tmux.sock` in its state folder (`-S`), so
 * no two towns share a server whatever their folders are called. A state folder too deep for a
 * Unix socket path gets the socket in a private folder instead, by the rule the control socket
 * follows (see {@link makePrivateSocketFolder}): the one `recorded` when it is still there (the
 * server and its agents outlive the daemon), else a new one.
 *
 * @param config - a tmux town's config.
 * @param recorded - the socket the town's record holds (see {@link TownRecord.tmuxSocket}).
 * @param env - the environment (`XDG_RUNTIME_DIR`).
 * @returns the socket, with a note when it is outside the state folder for want of room.
 * @example
 * ```ts
 * resolveTmuxSocket(loadConfig('belfry.yaml')).socket; // { path: '/srv/town/.belfry/tmux.sock' }
 * ```
 */
export function resolveTmuxSocket(
  config: BelfryConfig,
  recorded?: TmuxSocket,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedTmuxSocket {
  if (config.driver.kind === 'tmux' && config.driver.socket)
    return { socket: config.driver.socket };
  const inFolder = join(config.stateDir, TMUX_SOCKET_FILE);
  if (fitsUnixSocket(inFolder)) return { socket: { path: inFolder } };
  const why = `the state folder ${config.stateDir} is too deep for a Unix socket (${Buffer.byteLength(inFolder)} bytes; at most ${MAX_SOCKET_BYTES})`;
  if (recorded && 'path' in recorded && isPrivateSocketFolder(dirname(recorded.path)))
    return {
      socket: recorded,
      note: `the town's tmux server is at ${recorded.path}: ${why}; it is in a private folder, as recorded in the town's record (.belfry/town.json)`,
    };
  const path = join(makePrivateSocketFolder(env), TMUX_SOCKET_FILE);
  return {
    socket: { path },
    note: `the town's tmux server is at ${path}: ${why}; it goes in a new private folder, recorded in the town's record (.belfry/town.json)`,
  };
}

/**
 * The running sessions of the town on a tmux server: labelled with its id, or carrying belfry's
 * labels and no town (started before towns had ids). None when no server runs there.
 */
async function townSessionsOn(socket: TmuxSocket, townId: string): Promise<SessionStatus[]> {
  let sessions: SessionStatus[];
  try {
    sessions = await createTmuxDriver({ socket }).list();
  } catch (error) {
    throw new DriverError({
      code: 'UNAVAILABLE',
      message: `cannot ask tmux ${describeTmuxSocket(socket)}, where the town last ran its sessions, whether they still run there (${(error as Error).message}); the daemon does not start on another server without knowing`,
      cause: error,
    });
  }
  return sessions.filter((s) => {
    if (s.state !== 'running') return false;
    const town = s.labels?.[TOWN_LABEL];
    return town === townId || (town === undefined && s.labels?.agent !== undefined);
  });
}

/**
 * Settles the tmux server a starting daemon runs the town's sessions on (see
 * {@link resolveTmuxSocket}) and records it in the town's record. When it is not the one the
 * town ran on last (recorded; for a town from before that was recorded, the socket name it used
 * by default) and the town's agents still run there, the daemon must not start: it would not see
 * them, and would start their work a second time beside them.
 *
 * @param config - a tmux town's config; its store (and so its record) must have been opened.
 * @param townId - the town's id (its sessions' `town` label).
 * @param env - the environment (`XDG_RUNTIME_DIR`).
 * @returns the socket, with a note when it is outside the state folder for want of room.
 * @throws ConfigError `INVALID_OPTION` at `driver.socket` naming both sockets and what to do,
 *   when the town's sessions run on the other one; DriverError `UNAVAILABLE` when the server it last ran on cannot be asked.
 * @example
 * ```ts
 * const { socket } = await settleTmuxSocket(config, await townIdOf(store));
 * const driver = createTmuxDriver({ socket });
 * ```
 */
export async function settleTmuxSocket(
  config: BelfryConfig,
  townId: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedTmuxSocket> {
  const recorded = readTownRecord(config)?.tmuxSocket;
  const resolved = resolveTmuxSocket(config, recorded, env);
  const { socket } = resolved;
  const previous =
    recorded ??
    (config.driver.kind === 'tmux' && config.driver.socket === undefined
      ? { name: legacyTmuxSocketName(config.home) }
      : undefined);
  if (previous && !sameSocket(previous, socket)) {
    const left = await townSessionsOn(previous, townId);
    if (left.length > 0) {
      const keep =
        'path' in previous ? `driver.socket: ${previous.path}` : `driver.socket: ${previous.name}`;
      throw new ConfigError({
        code: 'INVALID_OPTION',
        path: 'driver.socket',
        message: `${config.file}: driver.socket: this daemon would run the town's sessions on tmux ${describeTmuxSocket(socket)}, but ${left.length} of them (${left
          .slice(0, 3)
          .map((s) => s.name)
          .join(
            ', ',
          )}${left.length > 3 ? ', …' : ''}) still run on tmux ${describeTmuxSocket(previous)}, where the town last ran them; refusing to start beside them. To keep them, set \`${keep}\` in ${config.file}; to move, let them finish (or stop them: \`tmux ${describeTmuxSocket(previous)} kill-server\`; their work stays on its hooks and starts again on the new server), then start the daemon again`,
      });
    }
  }
  if (!recorded || !sameSocket(recorded, socket)) recordTmuxSocket(config, socket);
  return resolved;
}
