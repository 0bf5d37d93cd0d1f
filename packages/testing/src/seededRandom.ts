import { ConfigError } from '@belfry/core';

/**
 * A small seeded source of randomness (mulberry32): numbers uniform in [0, 1), the same sequence
 * for the same seed on every run and platform. Give it to a town (`createTown({ random })`) or a
 * supervisor to make backoff jitter, Boot's ids and record ids replayable. Not for secrets.
 *
 * @param seed - an integer from 0 to 4294967295 (2^32 - 1).
 * @returns a function returning the next number of the sequence on each call.
 * @throws ConfigError `INVALID_OPTION` when `seed` is not such an integer.
 * @example
 * ```ts
 * const random = seededRandom(42);
 * const again = seededRandom(42);
 * random() === again(); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = checkSeed(seed, 'seed');
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Checks a seed: an integer from 0 to 2^32 - 1.
 *
 * @throws ConfigError `INVALID_OPTION` at `path`.
 */
export function checkSeed(value: unknown, path: string): number {
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 0 ||
    value > 0xffff_ffff
  ) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path,
      message: `${path}: must be an integer from 0 to 4294967295; got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`,
    });
  }
  return value;
}
