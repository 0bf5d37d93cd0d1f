import { DriverError } from '../errors';
import { describe } from '../internal/validate';
import type { FollowOptions, SessionSpec } from './SessionDriver';

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
 * What is wrong with a session's command, or undefined when nothing is: it must be a non-empty
 * argv array of strings without NUL characters. The one rule {@link checkSessionSpec} applies,
 * for callers that check a command earlier (a config file, at load) and word their own error.
 *
 * @param command - the command.
 * @returns the problem, worded to follow the command's name ("must be …"), or undefined.
 * @example
 * ```ts
 * sessionCommandProblem(['claude', '--resume']); // undefined
 * sessionCommandProblem('claude --resume'); // 'must be a list of strings …'
 * ```
 */
export function sessionCommandProblem(command: unknown): string | undefined {
  if (
    !Array.isArray(command) ||
    command.length === 0 ||
    command.some((a) => typeof a !== 'string' || a.includes('\0'))
  )
    return 'must be a list of strings (an argv array: a program and its arguments, not a shell string), not empty, without NUL characters';
  return undefined;
}

/**
 * What is wrong with one environment variable (or label) of a session, or undefined when
 * nothing is: the name must be non-empty, with no `=` and no NUL; the value a string with no NUL.
 * The one rule {@link checkSessionSpec} applies to `env` and `labels`, for callers that check
 * variables earlier (a config file, at load).
 *
 * @param name - the variable's name.
 * @param value - its value.
 * @returns the problem, worded to follow the variable's name ("must be …"), or undefined.
 * @example
 * ```ts
 * sessionVariableProblem('LANG', 'C.UTF-8'); // undefined
 * sessionVariableProblem('A=B', 'x'); // "must be a string, with a non-empty name …"
 * ```
 */
export function sessionVariableProblem(name: string, value: unknown): string | undefined {
  if (
    typeof value !== 'string' ||
    name.length === 0 ||
    name.includes('=') ||
    name.includes('\0') ||
    value.includes('\0')
  )
    return "must be a string, with a non-empty name that has no '=', and no NUL anywhere";
  return undefined;
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
  const commandProblem = sessionCommandProblem(s.command);
  if (commandProblem !== undefined) bad(`command ${commandProblem}`);
  const strings = (value: unknown, what: string) => {
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      bad(`${what} must be an object of strings`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value as object)) {
      const problem = sessionVariableProblem(k, v);
      if (problem !== undefined) bad(`${what}.${k} ${problem}`);
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

/**
 * Whether a process of this machine is alive, by signal 0 (a zombie counts, and so does another
 * user's process, which answers EPERM). For telling whether a lock's or a file's holder is gone.
 *
 * @example
 * ```ts
 * if (!processAlive(holderPid)) breakLock();
 * ```
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How many lines {@link SessionDriver.follow} gives when not told. */
export const FOLLOW_LINES = 200;

/** The longest cursor `follow` takes back (drivers make theirs far shorter). */
export const MAX_FOLLOW_CURSOR = 256;

/**
 * Checks the options of a driver's `follow` and gives them with their defaults.
 *
 * @throws DriverError `INVALID_SPEC` naming the option and what it allows.
 */
export function checkFollowOptions(options: unknown): {
  after: string | undefined;
  lines: number;
} {
  const refuse = (what: string): never => {
    throw new DriverError({ code: 'INVALID_SPEC', message: `follow: ${what}` });
  };
  if (options !== undefined && (typeof options !== 'object' || options === null))
    refuse(`options must be an object; got ${describe(options)}`);
  const o = (options ?? {}) as FollowOptions;
  const lines = o.lines ?? FOLLOW_LINES;
  if (!Number.isSafeInteger(lines) || lines < 1)
    refuse(`lines must be an integer >= 1; got ${describe(lines)}`);
  if (
    o.after !== undefined &&
    (typeof o.after !== 'string' || o.after === '' || o.after.length > MAX_FOLLOW_CURSOR)
  )
    refuse(
      `after must be the end a previous call gave (a string of 1 to ${MAX_FOLLOW_CURSOR} characters); got ${describe(o.after)}`,
    );
  return { after: o.after, lines };
}
