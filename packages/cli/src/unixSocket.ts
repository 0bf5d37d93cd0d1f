import { lstatSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * The longest Unix socket path belfry places, in bytes. The kernel's limit (sun_path) is 104 to
 * 108 bytes with its NUL, by system; 100 leaves a margin everywhere.
 */
export const MAX_SOCKET_BYTES = 100;

/** Whether `path` fits a Unix socket's address (see {@link MAX_SOCKET_BYTES}). */
export function fitsUnixSocket(path: string): boolean {
  return Buffer.byteLength(path) <= MAX_SOCKET_BYTES;
}

/**
 * Where a socket goes when the state folder is too deep for one (the control socket, the town's
 * tmux server): a new folder made with mkdtemp (`belfry-` and a random name, mode 0700, so no
 * other user can create or take it first) under `$XDG_RUNTIME_DIR` when that is a private folder
 * of ours, else under the temp folder. The caller records the path it places there, in the
 * state folder.
 *
 * @param env - the environment (`XDG_RUNTIME_DIR`).
 * @returns the new folder.
 * @example
 * ```ts
 * const socket = join(makePrivateSocketFolder(), 'control.sock');
 * ```
 */
export function makePrivateSocketFolder(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.();
  const runtime = env.XDG_RUNTIME_DIR;
  let base = tmpdir();
  if (runtime) {
    try {
      const st = lstatSync(runtime);
      if (st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o077) === 0)
        base = runtime;
    } catch {
      // no usable runtime folder: the temp folder, in a private folder of its own
    }
  }
  return mkdtempSync(join(base, 'belfry-'));
}

/**
 * Whether `folder` is one {@link makePrivateSocketFolder} could have made for this user: a
 * folder (not a symlink) named `belfry-…`, ours, open to nobody else. Anything else is neither
 * trusted nor removed.
 */
export function isPrivateSocketFolder(folder: string): boolean {
  try {
    const st = lstatSync(folder);
    const uid = process.getuid?.();
    return (
      st.isDirectory() &&
      basename(folder).startsWith('belfry-') &&
      (uid === undefined || st.uid === uid) &&
      (st.mode & 0o077) === 0
    );
  } catch {
    return false;
  }
}
