import { checkRandom } from '../internal/random';
import { describe, fail } from '../internal/validate';
import type { JsonObject } from '../store/Store';
import { checkPolecatName, checkRigName, checkTownId } from './names';
import type { TownOptions, TownTimings } from './types';

/** The default timings (ms). */
export const DEFAULT_TIMINGS: Readonly<TownTimings> = Object.freeze({
  heartbeatMs: 180_000,
  patrolIntervalMs: 300_000,
  witnessPingTimeoutMs: 5_000,
  surveyMs: 30_000,
  spawnGraceMs: 300_000,
  staleAfterMs: 1_800_000,
  maxRespawns: 3,
  gateIntervalMs: 60_000,
  gateTimeoutMs: 30_000,
  convoyStallMs: 3_600_000,
  bootTimeoutMs: 60_000,
  leaseMs: 60_000,
  stopGraceMs: 10_000,
  drainMs: 1_800_000,
  keepPatrolDigests: 480,
  callTimeoutMs: 60_000,
  patrolBudgetMs: 600_000,
});

const DRIVER_METHODS = ['start', 'status', 'list', 'nudge', 'capture', 'stop'] as const;

const OPTION_KEYS = [
  'store',
  'driver',
  'clock',
  'gates',
  'rigs',
  'timings',
  'mayor',
  'triage',
  'agent',
  'pollers',
  'polecatNames',
  'statuses',
  'terminalStatuses',
  'beadPrefix',
  'random',
  'id',
] as const;

/**
 * Checks a town's options, each against what it allows, and returns the town's timings (the
 * defaults with the given ones over them).
 *
 * @throws ConfigError naming the option that is wrong and what is allowed.
 */
export function checkOptions(options: TownOptions): TownTimings {
  if (typeof options !== 'object' || options === null)
    fail('INVALID_OPTION', 'options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key))
      fail(
        'UNKNOWN_OPTION',
        `options.${key}`,
        `is not an option here; allowed: ${OPTION_KEYS.join(', ')}`,
      );
  }
  const d = options.driver as unknown as Record<string, unknown> | undefined;
  if (d === undefined || d === null)
    fail(
      'MISSING_OPTION',
      'options.driver',
      'is required: a SessionDriver (for example createMemoryDriver() from @belfry/driver-memory)',
    );
  const missing = DRIVER_METHODS.filter((m) => typeof d[m] !== 'function');
  if (missing.length > 0)
    fail(
      'INVALID_OPTION',
      'options.driver',
      `must implement SessionDriver (${DRIVER_METHODS.join(', ')}); missing: ${missing.join(', ')}`,
    );
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (options.timings !== undefined && !isObject(options.timings))
    fail(
      'INVALID_OPTION',
      'options.timings',
      `must be an object of timings; got ${describe(options.timings)}`,
    );
  for (const key of ['rigs', 'gates', 'pollers', 'statuses', 'terminalStatuses'] as const) {
    if (options[key] !== undefined && !Array.isArray(options[key]))
      fail('INVALID_OPTION', `options.${key}`, `must be an array; got ${describe(options[key])}`);
  }
  for (const key of ['mayor', 'triage'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function')
      fail('INVALID_OPTION', `options.${key}`, `must be a function; got ${describe(options[key])}`);
  }
  checkRandom(options.random, 'options.random');
  if (options.id !== undefined) checkTownId(options.id, 'options.id');
  if (options.agent !== undefined) {
    if (!isObject(options.agent))
      fail(
        'INVALID_OPTION',
        'options.agent',
        `must be an object { launch?, prime? }; got ${describe(options.agent)}`,
      );
    for (const [key, value] of Object.entries(options.agent)) {
      if (key !== 'launch' && key !== 'prime')
        fail(
          'UNKNOWN_OPTION',
          `options.agent.${key}`,
          'is not an option here; allowed: launch, prime',
        );
      if (value !== undefined && typeof value !== 'function')
        fail(
          'INVALID_OPTION',
          `options.agent.${key}`,
          `must be a function; got ${describe(value)}`,
        );
    }
  }
  const timings: TownTimings = { ...DEFAULT_TIMINGS };
  for (const [key, value] of Object.entries(options.timings ?? {})) {
    const problem = timingProblem(key, value);
    if (problem !== undefined)
      fail(
        key in DEFAULT_TIMINGS ? 'INVALID_OPTION' : 'UNKNOWN_OPTION',
        `options.timings.${key}`,
        problem,
      );
    (timings as unknown as Record<string, number>)[key] = value as number;
  }
  for (const [i, rig] of (options.rigs ?? []).entries()) checkRigName(rig, `options.rigs[${i}]`);
  if (options.polecatNames !== undefined) {
    if (!Array.isArray(options.polecatNames) || options.polecatNames.length === 0)
      fail(
        'INVALID_OPTION',
        'options.polecatNames',
        `must be a non-empty array of names; got ${describe(options.polecatNames)}`,
      );
    const seen = new Set<string>();
    for (const [i, name] of options.polecatNames.entries()) {
      checkPolecatName(name, `options.polecatNames[${i}]`);
      if (seen.has(name))
        fail('DUPLICATE_ID', `options.polecatNames[${i}]`, `${describe(name)} is listed twice`);
      seen.add(name);
    }
  }
  const types = new Map<string, number>();
  for (const [i, g] of (options.gates ?? []).entries()) {
    if (typeof g?.evaluate !== 'function')
      fail(
        'INVALID_OPTION',
        `options.gates[${i}].evaluate`,
        'must be a function: a GateEvaluator evaluates gates in batches',
      );
    if (g.attach !== undefined && typeof g.attach !== 'function')
      fail(
        'INVALID_OPTION',
        `options.gates[${i}].attach`,
        `must be a function when given; got ${describe(g.attach)}`,
      );
    const first = types.get(g.type);
    if (first !== undefined)
      fail(
        'DUPLICATE_ID',
        `options.gates[${i}].type`,
        `gate type ${describe(g.type)} already has an evaluator (options.gates[${first}]); one evaluator per type`,
      );
    types.set(g.type, i);
  }
  const pollerNames = new Set<string>();
  for (const [i, p] of (options.pollers ?? []).entries()) {
    if (typeof p?.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(p.name))
      fail(
        'INVALID_OPTION',
        `options.pollers[${i}].name`,
        `must be 1 to 64 letters, digits, '_', '-' or '.'; got ${describe(p?.name)}`,
      );
    if (pollerNames.has(p.name))
      fail(
        'DUPLICATE_ID',
        `options.pollers[${i}].name`,
        `poller ${describe(p.name)} is listed twice`,
      );
    pollerNames.add(p.name);
    if (
      p.timeoutMs !== undefined &&
      (typeof p.timeoutMs !== 'number' || !Number.isSafeInteger(p.timeoutMs) || p.timeoutMs < 1)
    )
      fail(
        'INVALID_OPTION',
        `options.pollers[${i}].timeoutMs`,
        `must be an integer >= 1; got ${describe(p.timeoutMs)}`,
      );
    if (typeof p.intervalMs !== 'number' || !Number.isSafeInteger(p.intervalMs) || p.intervalMs < 1)
      fail(
        'INVALID_OPTION',
        `options.pollers[${i}].intervalMs`,
        `must be an integer >= 1; got ${describe(p.intervalMs)}`,
      );
    if (typeof p.run !== 'function')
      fail('INVALID_OPTION', `options.pollers[${i}].run`, 'must be a function');
  }
  return timings;
}

/** Checks the options of `town.rigs.dock` and turns them into the request's args. */
export function checkDockOptions(options: { immediate?: boolean }): JsonObject {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    fail('INVALID_OPTION', 'options', `must be an object { immediate? }; got ${describe(options)}`);
  for (const key of Object.keys(options))
    if (key !== 'immediate')
      fail('UNKNOWN_OPTION', `options.${key}`, 'is not an option of dock; allowed: immediate');
  if (options.immediate === undefined) return {};
  if (typeof options.immediate !== 'boolean')
    fail(
      'INVALID_OPTION',
      'options.immediate',
      `must be true or false; got ${describe(options.immediate)}`,
    );
  return { immediate: options.immediate };
}

/**
 * What is wrong with one timing of a town, or undefined when nothing is: the one rule
 * `createTown` and a config loader (the CLI's `timings:`) share. A timing is a known name
 * ({@link DEFAULT_TIMINGS}) and an integer: at least 1 ms, or at least 0 for the counts
 * `maxRespawns` and `keepPatrolDigests`.
 *
 * @example
 * ```ts
 * timingProblem('heartbeatMs', 0); // 'must be an integer >= 1; got 0'
 * ```
 */
export function timingProblem(key: string, value: unknown): string | undefined {
  if (!Object.hasOwn(DEFAULT_TIMINGS, key))
    return `is not a timing; allowed: ${Object.keys(DEFAULT_TIMINGS).join(', ')}`;
  const min = key === 'maxRespawns' || key === 'keepPatrolDigests' ? 0 : 1;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    return `must be an integer >= ${min}; got ${describe(value)}`;
  return undefined;
}
