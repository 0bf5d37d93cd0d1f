import {
  accessSync,
  appendFileSync,
  chmodSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { BelfryError } from '@belfry/core/config';
import { processAlive } from '@belfry/core/driver';
import type { BelfryConfig } from './config';
import { fitsUnixSocket, isPrivateSocketFolder, makePrivateSocketFolder } from './unixSocket';

/** The exit code of `belfry daemon run` / `start` when a daemon already runs for the town. */
export const ALREADY_RUNNING = 3;

/**
 * The daemon's files cannot be used: the state folder (`STATE_FOLDER`: missing and not creatable,
 * read-only, not a folder, or owned by another user) or the control socket (`CONTROL_SOCKET`: not
 * ours, or open to others), or the daemon itself (`DAEMON_GONE`: it went away while it handled a
 * request), or the API's TCP listener (`API_TOKEN`: its token file is open to others, not ours, or
 * holds no token; `API_TCP`: its address cannot be listened on). The message says what, where and
 * what to do; `belfry` exits with 1.
 *
 * @example
 * ```ts
 * try {
 *   ensureStateDir(daemonPaths(config));
 * } catch (error) {
 *   if (error instanceof DaemonFilesError) console.error(error.message);
 * }
 * ```
 */
export class DaemonFilesError extends BelfryError<
  'STATE_FOLDER' | 'CONTROL_SOCKET' | 'DAEMON_GONE' | 'API_TOKEN' | 'API_TCP'
> {
  override readonly name = 'DaemonFilesError';
}

/** The daemon's files in the state folder. */
export interface DaemonPaths {
  dir: string;
  lock: string;
  state: string;
  status: string;
  log: string;
  /**
   * The control socket: `control.sock` in the state folder, or, when that path is too long for a
   * Unix socket, the one the running daemon recorded in {@link DaemonPaths.socketRecord}.
   */
  socket: string;
  /** Where a daemon records a control socket it had to place outside the state folder. */
  socketRecord: string;
}

/**
 * The daemon's files. A state folder too deep for a Unix socket path gets its socket in a private
 * folder (see {@link placeControlSocket}); the path the daemon chose is read from its record.
 */
export function daemonPaths(config: BelfryConfig): DaemonPaths {
  const dir = config.stateDir;
  const inFolder = join(dir, 'control.sock');
  const socketRecord = join(dir, 'control.socket');
  let socket = inFolder;
  if (!fitsUnixSocket(inFolder)) {
    const recorded = readText(socketRecord);
    if (recorded) socket = recorded;
  }
  return {
    dir,
    lock: join(dir, 'daemon.lock'),
    state: join(dir, 'state.json'),
    status: join(dir, 'status.json'),
    log: join(dir, 'daemon.log'),
    socket,
    socketRecord,
  };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

const myUid = (): number | undefined => process.getuid?.();
const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * Creates the state folder (mode 0700) or checks the one there is: it must be a folder (not a
 * symlink), owned by this user, and writable; a folder of ours open to others (0777, say) is
 * tightened to 0700. Anything else is refused before a file is written in it.
 *
 * @throws DaemonFilesError `STATE_FOLDER`, saying what is wrong with which folder and what to do.
 */
export function ensureStateDir(paths: DaemonPaths): void {
  const dir = paths.dir;
  const refuse = (what: string, todo: string, cause?: unknown): never => {
    throw new DaemonFilesError({
      code: 'STATE_FOLDER',
      message: `the state folder ${dir} ${what}; belfry keeps its lock, log, store and control socket there: ${todo}`,
      ...(cause === undefined ? {} : { cause }),
    });
  };
  const reason = (error: unknown) => {
    const e = error as NodeJS.ErrnoException;
    return e.code === 'EROFS' ? 'EROFS: a read-only file system' : (e.code ?? String(error));
  };
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    refuse(
      `cannot be created (${reason(error)})`,
      'make its parent writable, or move the town to a writable folder',
      error,
    );
  }
  let st: Stats | undefined;
  try {
    st = lstatSync(dir);
  } catch (error) {
    refuse(`cannot be read (${reason(error)})`, 'check its permissions', error);
  }
  if (st === undefined) return;
  if (!st.isDirectory())
    refuse(
      `is not a folder (${st.isSymbolicLink() ? 'a symbolic link' : 'a file'})`,
      'remove it; belfry creates the folder itself',
    );
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid)
    refuse(
      `belongs to uid ${st.uid}, not to you (uid ${uid})`,
      'remove it, or run belfry as its owner',
    );
  if ((st.mode & 0o077) !== 0) {
    try {
      chmodSync(dir, 0o700);
    } catch (error) {
      refuse(
        `has mode ${octal(st.mode)} and cannot be made private (${reason(error)})`,
        'chmod 700 it',
        error,
      );
    }
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (error) {
    refuse(
      `is not writable (${reason(error)})`,
      'make it writable, or move the town to a writable folder',
      error,
    );
  }
}

/**
 * What makes the control socket at `path` untrustworthy, or undefined when it is ours: a socket
 * owned by this user, closed to others, in a folder nobody else can write to (so it cannot have
 * been put there, or swapped, by another local user).
 *
 * @param path - the socket's path (it must exist).
 * @returns the problem, or undefined.
 */
export function controlSocketProblem(path: string): string | undefined {
  const uid = myUid();
  let st: Stats;
  let folder: Stats;
  try {
    st = lstatSync(path);
    folder = lstatSync(dirname(path));
  } catch (error) {
    return `cannot be checked (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (!st.isSocket()) return 'is not a socket';
  if (uid !== undefined && st.uid !== uid)
    return `belongs to uid ${st.uid}, not to you (uid ${uid})`;
  if ((st.mode & 0o077) !== 0) return `has mode ${octal(st.mode)}, open to other users`;
  if (!folder.isDirectory() || (uid !== undefined && folder.uid !== uid))
    return `is in ${dirname(path)}, which is not a folder of yours`;
  if ((folder.mode & 0o022) !== 0)
    return `is in ${dirname(path)} (mode ${octal(folder.mode)}), which others can write to`;
  return undefined;
}

/** Throws (DaemonFilesError `CONTROL_SOCKET`) when `path` is not a control socket this user can trust. */
export function assertTrusted(path: string): void {
  const problem = controlSocketProblem(path);
  if (problem !== undefined)
    throw new DaemonFilesError({
      code: 'CONTROL_SOCKET',
      message: `the control socket ${path} ${problem}; refusing to use it. Stop the daemon, remove it and start again`,
    });
}

/**
 * Chooses where a starting daemon listens. `control.sock` in the (private) state folder when the
 * path fits a Unix socket; otherwise in a private folder of its own (see
 * {@link makePrivateSocketFolder}). The choice is recorded in the state folder, where the CLI
 * finds it; a previous daemon's private folder is removed.
 *
 * @param paths - the daemon's files (the state folder must exist, see {@link ensureStateDir}).
 * @param env - the environment (`XDG_RUNTIME_DIR`).
 * @returns the socket's path.
 */
export function placeControlSocket(
  paths: DaemonPaths,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const inFolder = join(paths.dir, 'control.sock');
  removePrivateSocketFolder(paths);
  if (fitsUnixSocket(inFolder)) return inFolder;
  const socket = join(makePrivateSocketFolder(env), 'control.sock');
  writeFileSync(
    `${paths.socketRecord}.tmp`,
    `${socket}
`,
    { mode: 0o600 },
  );
  renameSync(`${paths.socketRecord}.tmp`, paths.socketRecord);
  paths.socket = socket;
  return socket;
}

/** Removes the private socket folder a daemon recorded (if it is ours), and the record. */
export function removePrivateSocketFolder(paths: DaemonPaths): void {
  const recorded = readText(paths.socketRecord);
  rmSync(paths.socketRecord, { force: true });
  if (!recorded) return;
  const folder = dirname(recorded);
  if (isPrivateSocketFolder(folder)) rmSync(folder, { recursive: true, force: true });
}

/** What the daemon writes each tick (atomically): who it is and that it is alive. */
export interface DaemonState {
  pid: number;
  startedAt: number;
  lastHeartbeat: number;
  heartbeatCount: number;
  heartbeatMs: number;
  socket: string;
  config: string;
}

/**
 * Writes a JSON file so that a reader sees the old or the new one, never half of one. A failed
 * write (a full disk) leaves the old file and no half-written copy beside it.
 */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/**
 * Removes what a killed daemon left half-written in the state folder (`state.json.<pid>.tmp`,
 * `status.json.<pid>.tmp`, the socket record's `.tmp`). Called by the lock's holder, the only
 * writer of those files.
 */
export function removeLeftovers(paths: DaemonPaths): void {
  let names: string[];
  try {
    names = readdirSync(paths.dir);
  } catch {
    return;
  }
  for (const name of names) {
    const ours = /^(state|status)\.json\.\d+\.tmp$|^control\.socket\.tmp$/.test(name);
    // The town's record is written by commands too: only a dead writer's copy is left over.
    const writer = /^town\.json\.(\d+)\.tmp$/.exec(name)?.[1];
    if (ours || (writer !== undefined && !processAlive(Number(writer))))
      rmSync(join(paths.dir, name), { force: true });
  }
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * The daemon's log file: one line per entry (the daemon writes JSON lines, see
 * `DaemonLogger`), rotated past `maxBytes`, keeping `keep` old files.
 */
export class DaemonLog {
  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  /** Appends `line` (and a newline, unless it ends with one). */
  write(line: string): void {
    try {
      if (existsSync(this.path) && statSync(this.path).size >= this.maxBytes) this.rotate();
    } catch {
      // rotation is best effort; the line is still written
    }
    appendFileSync(this.path, line.endsWith('\n') ? line : `${line}\n`, { mode: 0o600 });
  }

  private rotate(): void {
    if (this.keep === 0) {
      rmSync(this.path, { force: true });
      return;
    }
    for (let i = this.keep - 1; i >= 1; i--)
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    renameSync(this.path, `${this.path}.1`);
  }
}

/** A daemon's answer to one API call: the HTTP status and the JSON body. */
export interface DaemonAnswer<T = unknown> {
  status: number;
  body: T;
}

/**
 * Calls the daemon's API (`/v1/…`, JSON) on its control socket. Resolves undefined when no daemon
 * listens there (no socket, nobody answering, or no answer within `timeoutMs`): the caller says
 * so, and falls back to the store where it can.
 *
 * @throws DaemonFilesError `CONTROL_SOCKET` when a socket is there but not one to trust (see
 *   {@link controlSocketProblem}): nothing is sent to it.
 */
export function callDaemon<T = unknown>(
  socket: string,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
  timeoutMs = 5_000,
): Promise<DaemonAnswer<T> | undefined> {
  if (!existsSync(socket)) return Promise.resolve(undefined);
  try {
    assertTrusted(socket);
  } catch (error) {
    return Promise.reject(error);
  }
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    let connected = false;
    /** Nobody answered (no daemon), or the daemon went away with the request in its hands. */
    const failed = (why = 'went away while it handled') => {
      clearTimeout(timer);
      if (!connected) return resolve(undefined);
      reject(
        new DaemonFilesError({
          code: 'DAEMON_GONE',
          message: `the daemon ${why} ${method} ${route} (killed, crashed or stuck): it may or may not have done it, never half of it. See \`belfry daemon status\` and \`belfry daemon logs\`, then check and try again`,
        }),
      );
    };
    const request = httpRequest(
      {
        // A connection of its own: on a kept-alive one 'connect' never fires again, and the
        // daemon going away mid-request would read as no daemon at all. (Made here rather than
        // by an agent, which spends milliseconds of every command's start on naming the server.)
        createConnection: () => connect(socket),
        method,
        path: route,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => {
          clearTimeout(timer);
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as T });
          } catch {
            resolve({ status: response.statusCode ?? 0, body: text as T });
          }
        });
        response.on('error', () => failed());
        response.on('aborted', () => failed());
      },
    );
    request.on('socket', (s) => s.once('connect', () => (connected = true)));
    const timer = setTimeout(() => {
      failed(`did not answer within ${timeoutMs} ms to`);
      request.destroy();
    }, timeoutMs);
    request.on('error', () => failed());
    request.end(payload);
  });
}
