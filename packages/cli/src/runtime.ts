import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BelfryConfig } from './config';

/** The daemon's files in the state folder. */
export interface DaemonPaths {
  dir: string;
  lock: string;
  state: string;
  status: string;
  log: string;
  socket: string;
}

/** A Unix socket path must fit in about 108 bytes: a deep folder gets one under the temp folder. */
export function daemonPaths(config: BelfryConfig): DaemonPaths {
  const dir = config.stateDir;
  let socket = join(dir, 'control.sock');
  if (Buffer.byteLength(socket) > 100) {
    const id = createHash('sha256').update(dir).digest('hex').slice(0, 16);
    socket = join(tmpdir(), `belfry-${id}.sock`);
  }
  return {
    dir,
    lock: join(dir, 'daemon.lock'),
    state: join(dir, 'state.json'),
    status: join(dir, 'status.json'),
    log: join(dir, 'daemon.log'),
    socket,
  };
}

/** Creates the state folder, readable by its owner only. */
export function ensureStateDir(paths: DaemonPaths): void {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
}

/**
 * The daemon's lock: an exclusive SQLite transaction on `daemon.lock`, held for the daemon's
 * life. The kernel releases it when the process ends however it ends, so "is a daemon running"
 * is a question to the lock, never a guess from a pid.
 */
export class DaemonLock {
  private constructor(private readonly db: Database.Database) {}

  /** Takes the lock, or returns undefined if another process holds it. */
  static acquire(path: string): DaemonLock | undefined {
    const db = new Database(path, { timeout: 0 });
    try {
      db.pragma('journal_mode = DELETE');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS held (at INTEGER)');
      return new DaemonLock(db);
    } catch (error) {
      db.close();
      if (/SQLITE_BUSY|SQLITE_LOCKED/.test(String((error as { code?: string }).code)))
        return undefined;
      throw error;
    }
  }

  /** Whether some process holds the lock now. */
  static held(path: string): boolean {
    if (!existsSync(path)) return false;
    const db = new Database(path, { timeout: 0, fileMustExist: true });
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      return false;
    } catch (error) {
      if (/SQLITE_BUSY|SQLITE_LOCKED/.test(String((error as { code?: string }).code))) return true;
      throw error;
    } finally {
      db.close();
    }
  }

  release(): void {
    try {
      this.db.exec('ROLLBACK');
    } finally {
      this.db.close();
    }
  }
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

/** Writes a JSON file so that a reader sees the old or the new one, never half of one. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The daemon's log: one line per entry, rotated past `maxBytes`, keeping `keep` old files. */
export class DaemonLog {
  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  write(line: string): void {
    try {
      if (existsSync(this.path) && statSync(this.path).size >= this.maxBytes) this.rotate();
    } catch {
      // rotation is best effort; the line is still written
    }
    appendFileSync(this.path, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
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

/** A request on the control socket, and its answer. */
export type ControlRequest = { cmd: 'wake' } | { cmd: 'stop' } | { cmd: 'ping' };

/**
 * The control socket: one JSON line in, one JSON line out. Created with mode 0600 (the umask is
 * narrowed while it is made, so it never exists with wider permissions).
 */
export async function listenControl(
  path: string,
  handle: (request: ControlRequest) => Promise<unknown>,
): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      let request: ControlRequest;
      try {
        request = JSON.parse(buffer.slice(0, nl)) as ControlRequest;
      } catch {
        socket.end(`${JSON.stringify({ ok: false, error: 'not JSON' })}\n`);
        return;
      }
      handle(request).then(
        (result) => socket.end(`${JSON.stringify({ ok: true, result: result ?? null })}\n`),
        (error: Error) => socket.end(`${JSON.stringify({ ok: false, error: error.message })}\n`),
      );
    });
    socket.on('error', () => undefined);
  });
  const before = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(before);
  }
  return server;
}

/** Sends one request to the daemon; undefined when no daemon listens. */
export function sendControl(
  path: string,
  request: ControlRequest,
  timeoutMs = 5_000,
): Promise<unknown> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(undefined);
    const socket = createConnection(path);
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(answer));
      } catch {
        resolve(undefined);
      }
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}
