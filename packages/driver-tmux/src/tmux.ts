import { execFile } from 'node:child_process';
import { DriverError } from '@belfry/core/driver';

/** Which tmux server: a socket name under tmux's socket directory (`-L`), or a path (`-S`). */
export type TmuxSocket = { name: string } | { path: string };

/** What went wrong with a tmux call, from its stderr. */
export type TmuxFailure =
  /** No server on the socket (no socket file, or a socket nobody listens on). */
  | 'no-server'
  /** `new-session` with a name that exists. */
  | 'duplicate'
  /** The target session, window or pane does not exist. */
  | 'not-found'
  /** The command is over tmux's message size (about 16 KB). */
  | 'too-long'
  /** The call did not finish within its timeout. */
  | 'timeout'
  /** tmux is not installed (or not at the path given). */
  | 'no-tmux'
  | 'other';

/** A failed tmux call, classified. */
export class TmuxCallError extends Error {
  constructor(
    readonly failure: TmuxFailure,
    readonly args: readonly string[],
    readonly stderr: string,
  ) {
    super(`tmux ${args[0] ?? ''} failed (${failure}): ${stderr.trim() || 'no message'}`);
  }
}

function classify(stderr: string): TmuxFailure {
  if (/no server running|error connecting to|server exited unexpectedly/i.test(stderr))
    return 'no-server';
  if (/duplicate session/i.test(stderr)) return 'duplicate';
  // A server whose last session is gone answers lookups with "no current target" while it exits.
  if (
    /can't find (session|window|pane)|no such (session|window|pane)|session not found|no current (target|session)/i.test(
      stderr,
    )
  )
    return 'not-found';
  if (/command too long/i.test(stderr)) return 'too-long';
  return 'other';
}

/** The arguments that put a tmux command on one private server: UTF-8, the socket, no user config. */
function serverArgs(socket: TmuxSocket): string[] {
  return [
    '-u',
    ...('path' in socket ? ['-S', socket.path] : ['-L', socket.name]),
    '-f',
    '/dev/null',
  ];
}

/**
 * The argv (tmux's arguments, without the program) that attaches a terminal to a session on a
 * driver's private server: the operator's way into an agent's session. With `readOnly` the
 * client cannot type into it (tmux `attach -r`). Detach with tmux's prefix key, then `d`.
 *
 * @example
 * ```ts
 * import { spawnSync } from 'node:child_process';
 * import { attachArgs } from '@belfry/driver-tmux';
 *
 * spawnSync('tmux', attachArgs({ path: '/srv/town/.belfry/tmux.sock' }, 'api-toast', { readOnly: true }), {
 *   stdio: 'inherit',
 * });
 * ```
 */
export function attachArgs(
  socket: TmuxSocket,
  session: string,
  options: { readOnly?: boolean } = {},
): string[] {
  // `=name` matches the session name exactly, never a prefix of another session's name.
  return [
    ...serverArgs(socket),
    'attach-session',
    ...(options.readOnly ? ['-r'] : []),
    '-t',
    `=${session}`,
  ];
}

/** Runs tmux with argv (never a shell) on one private server. */
export class Tmux {
  /** The arguments every call starts with: UTF-8, the socket, no user configuration. */
  private readonly prefix: readonly string[];

  constructor(
    private readonly binary: string,
    readonly socket: TmuxSocket,
    private readonly timeoutMs: number,
    /**
     * The environment tmux runs with, read at each call (a server it starts keeps it).
     * @defaultValue this process's
     */
    private readonly env?: () => Readonly<Record<string, string>>,
  ) {
    this.prefix = serverArgs(socket);
  }

  /** Runs one tmux command list; resolves with its stdout, or rejects with a TmuxCallError. */
  run(args: readonly string[], input?: string, timeoutMs = this.timeoutMs): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.binary,
        [...this.prefix, ...args],
        {
          timeout: timeoutMs,
          maxBuffer: 64 * 1024 * 1024,
          encoding: 'utf8',
          ...(this.env === undefined ? {} : { env: this.env() }),
        },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          const e = error as NodeJS.ErrnoException & { killed?: boolean; signal?: string };
          if (e.code === 'ENOENT')
            return reject(new TmuxCallError('no-tmux', args, `${this.binary}: not found`));
          if (e.killed || e.signal === 'SIGTERM')
            return reject(new TmuxCallError('timeout', args, `no answer within ${timeoutMs} ms`));
          reject(new TmuxCallError(classify(stderr), args, stderr));
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  /** Like `run`, but a missing server or target resolves to undefined. */
  async runIfThere(args: readonly string[]): Promise<string | undefined> {
    try {
      return await this.run(args);
    } catch (error) {
      if (
        error instanceof TmuxCallError &&
        (error.failure === 'no-server' || error.failure === 'not-found')
      )
        return undefined;
      throw error;
    }
  }
}

/** A tmux failure as the DriverError a caller of the driver sees. */
export function driverError(error: unknown, what: string): DriverError {
  if (error instanceof DriverError) return error;
  if (error instanceof TmuxCallError) {
    const code =
      error.failure === 'timeout'
        ? 'TIMEOUT'
        : error.failure === 'duplicate'
          ? 'EXISTS'
          : error.failure === 'too-long'
            ? 'INVALID_SPEC'
            : 'UNAVAILABLE';
    return new DriverError({ code, message: `${what}: ${error.message}`, cause: error });
  }
  return new DriverError({
    code: 'UNAVAILABLE',
    message: `${what}: ${error instanceof Error ? error.message : String(error)}`,
    cause: error,
  });
}
