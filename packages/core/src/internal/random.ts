import { describe, fail } from './validate';

/**
 * Checks a `random` option (a function) and wraps it so that every draw is checked too: a source
 * that returns anything but a number in [0, 1) fails with a ConfigError at `path` naming the value,
 * instead of making a malformed id.
 *
 * @returns the checked source, or `undefined` when none is given.
 */
export function checkRandom(value: unknown, path: string): (() => number) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function')
    fail(
      'INVALID_OPTION',
      path,
      `must be a function returning a number in [0, 1); got ${describe(value)}`,
    );
  const random = value as () => unknown;
  return () => {
    const r = random();
    if (typeof r !== 'number' || !(r >= 0 && r < 1))
      fail('INVALID_OPTION', path, `must return a number in [0, 1); it returned ${describe(r)}`);
    return r;
  };
}
