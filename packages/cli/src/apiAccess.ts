import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, type Stats, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { DaemonFilesError } from './runtime';

/** The shortest token the daemon accepts from a file (a made one has 43 characters). */
export const MIN_API_TOKEN_LENGTH = 16;

/**
 * The API's bearer token, from `path`. A file that is missing is made: 32 random bytes as
 * base64url, mode 0600 (its folder 0700). A file that is there must be a regular file owned by
 * this user and closed to others (mode 0600 or stricter), holding one token of at least
 * {@link MIN_API_TOKEN_LENGTH} characters (the surrounding whitespace is ignored).
 *
 * @param path - the token file.
 * @returns the token.
 * @throws DaemonFilesError `API_TOKEN` saying what is wrong with the file and how to fix it.
 * @example
 * ```ts
 * const token = readApiToken('/srv/town/.belfry/api.token');
 * ```
 */
export function readApiToken(path: string): string {
  const refuse = (what: string, todo: string, cause?: unknown): never => {
    throw new DaemonFilesError({
      code: 'API_TOKEN',
      message: `the API token file ${path} ${what}; the daemon does not start with it: ${todo}`,
      ...(cause === undefined ? {} : { cause }),
    });
  };
  let st: Stats | undefined;
  try {
    st = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      refuse(`cannot be read (${(error as NodeJS.ErrnoException).code})`, 'check it', error);
  }
  if (st === undefined) {
    const token = randomBytes(32).toString('base64url');
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // `wx`: never through a file (or a link) someone put there since it was looked at.
      writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      refuse(
        `cannot be created (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        'make its folder writable, or name another file in api.tokenFile',
        error,
      );
    }
    return token;
  }
  if (!st.isFile())
    refuse(
      `is not a regular file (${st.isSymbolicLink() ? 'a symbolic link' : 'a folder or a device'})`,
      'remove it; the daemon then makes one',
    );
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    refuse(
      `belongs to uid ${st.uid}, not to the daemon's user (uid ${uid})`,
      `remove it (the daemon then makes one), or chown it to uid ${uid}`,
    );
  if ((st.mode & 0o077) !== 0)
    refuse(
      `has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, open to other users`,
      `make it private with \`chmod 600 ${path}\` and start again`,
    );
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < MIN_API_TOKEN_LENGTH || /\s/.test(token))
    refuse(
      `does not hold a token (one word of at least ${MIN_API_TOKEN_LENGTH} characters)`,
      'remove it (the daemon then makes one), or write a longer token into it',
    );
  return token;
}

/**
 * Whether an `Authorization` header carries `Bearer <token>`. The comparison takes the same time
 * whatever the header holds (both sides are hashed to one length, then compared in constant time).
 *
 * @param header - the request's `Authorization` header, if any.
 * @param token - the API token.
 * @returns true when the header names the token.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer +(\S+) *$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(token)) && given !== '';
}

/** Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1' || /^::ffff:127\./i.test(host);
}
