// Checks for plugin authors: the same option checks belfry's own packages use, so a driver's or
// gate evaluator's bad options fail with the same kind of ConfigError (a path, what was given,
// what is allowed).
import {
  describe,
  fail,
  type NumberRule,
  number,
  oneOf,
  optionalString,
  rejectUnknownKeys,
  requireObject,
} from './internal/validate';

/**
 * Option checks for drivers, gate evaluators and stores. Each throws a `ConfigError` whose
 * `path` names the value (`options.timeoutMs`) and whose message says what was given and what
 * is allowed.
 *
 * @example
 * ```ts
 * import { check } from '@belfry/core';
 *
 * function myGate(options: { intervalMs?: number } = {}) {
 *   const o = check.object(options, 'options');
 *   check.keys(o, ['intervalMs'], 'options');
 *   const intervalMs = check.number(o.intervalMs, 'options.intervalMs', 30_000, { integer: true, min: 1 });
 * }
 * ```
 */
export const check: {
  /** The value as a plain object, or a ConfigError (`must be an object`). */
  readonly object: (value: unknown, path: string) => Record<string, unknown>;
  /** Refuses a key that is not in `allowed` (`UNKNOWN_OPTION`, listing what is allowed). */
  readonly keys: (obj: Record<string, unknown>, allowed: readonly string[], path: string) => void;
  /** One of `allowed`, or `fallback` when undefined. */
  readonly oneOf: <T extends string>(
    value: unknown,
    allowed: readonly T[],
    path: string,
    fallback: T,
  ) => T;
  /** A number within `rule`, or `fallback` when undefined. */
  readonly number: (value: unknown, path: string, fallback: number, rule: NumberRule) => number;
  /** A non-empty string, or undefined. */
  readonly optionalString: (value: unknown, path: string) => string | undefined;
  /** Shows a bad value in a message without dumping whole objects. */
  readonly describe: (value: unknown) => string;
  /** Throws a ConfigError with `code`, `path` and `path: message`. */
  readonly fail: typeof fail;
} = {
  object: requireObject,
  keys: rejectUnknownKeys,
  oneOf,
  number,
  optionalString,
  describe,
  fail,
};

export type { NumberRule };
