import { DriverError } from '../errors';
import { describe } from '../internal/validate';
import type { SessionSpec } from './SessionDriver';

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether every driver takes `name` as a session name (what {@link checkSessionName} checks). */
export function isSessionName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

/**
 * Checks a session name: letters, digits, `_` and `-`, 1 to 64 characters. Names are never
 * rewritten; anything else is refused.
 *
 * @param name - the name.
 * @returns the name.
 * @throws DriverError `INVALID_NAME`, saying what is allowed.
 * @example
 * ```ts
 * checkSessionName('api-toast'); // ok
 * checkSessionName('api.toast'); // DriverError: '.' is not allowed
 * ```
 */
export function checkSessionName(name: unknown): string {
  if (!isSessionName(name)) {
    throw new DriverError({
      code: 'INVALID_NAME',
      message: `session name ${describe(name)} is not allowed: use 1 to 64 letters, digits, '_' or '-'`,
    });
  }
  return name;
}

/**
 * Checks a session spec (name, epoch, command, env, labels) and returns a copy.
 *
 * @param spec - the spec.
 * @returns the spec, copied.
 * @throws DriverError `INVALID_NAME` or `INVALID_SPEC`.
 * @example
 * ```ts
 * const spec = checkSessionSpec({ name: 'api-toast', epoch: 1, command: ['claude'] });
 * ```
 */
export function checkSessionSpec(spec: unknown): SessionSpec {
  if (typeof spec !== 'object' || spec === null) {
    throw new DriverError({
      code: 'INVALID_SPEC',
      message: `a session spec must be an object; got ${describe(spec)}`,
    });
  }
  const s = spec as Record<string, unknown>;
  const name = checkSessionName(s.name);
  const bad = (message: string): never => {
    throw new DriverError({ code: 'INVALID_SPEC', message: `session ${name}: ${message}` });
  };
  if (typeof s.epoch !== 'number' || !Number.isSafeInteger(s.epoch) || s.epoch < 0) {
    bad(`epoch must be an integer >= 0; got ${describe(s.epoch)}`);
  }
  if (
    !Array.isArray(s.command) ||
    s.command.length === 0 ||
    s.command.some((a) => typeof a !== 'string' || a.includes('\0'))
  ) {
    bad(
      'command must be a non-empty argv array of strings without NUL characters (a program and its arguments, not a shell string)',
    );
  }
  const strings = (value: unknown, what: string) => {
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      bad(`${what} must be an object of strings`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value as object)) {
      if (
        typeof v !== 'string' ||
        k.length === 0 ||
        k.includes('=') ||
        k.includes('\0') ||
        v.includes('\0')
      ) {
        bad(`${what}.${k} must be a string, with no '=' in the key and no NUL anywhere`);
      }
      out[k] = v as string;
    }
    return out;
  };
  if (s.cwd !== undefined && (typeof s.cwd !== 'string' || s.cwd.length === 0))
    bad(`cwd must be a non-empty string; got ${describe(s.cwd)}`);
  const env = strings(s.env, 'env');
  const labels = strings(s.labels, 'labels');
  return {
    name,
    epoch: s.epoch as number,
    command: [...(s.command as string[])],
    ...(s.cwd === undefined ? {} : { cwd: s.cwd as string }),
    ...(env === undefined ? {} : { env }),
    ...(labels === undefined ? {} : { labels }),
  };
}
