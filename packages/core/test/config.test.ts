import { ConfigError, createSupervisor, supervisor } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';

const logic = createMachine({});

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('options are checked, with errors that say what is allowed', () => {
  it.each([
    [
      { strategy: 'one_for_none' },
      'options.strategy',
      "must be one of 'one_for_one', 'one_for_all', 'rest_for_one'; got \"one_for_none\"",
    ],
    [{ maxRestarts: -1 }, 'options.maxRestarts', 'must be an integer >= 0; got -1'],
    [{ maxRestarts: 1.5 }, 'options.maxRestarts', 'must be an integer >= 0; got 1.5'],
    [{ withinMs: 0 }, 'options.withinMs', 'must be a finite number > 0; got 0'],
    [{ withinMs: Number.NaN }, 'options.withinMs', 'must be a finite number > 0; got NaN'],
    [
      { autoShutdown: 'sometimes' },
      'options.autoShutdown',
      "must be one of 'never', 'any_significant', 'all_significant'",
    ],
    [{ maxChildren: 0 }, 'options.maxChildren', 'must be an integer >= 1 or Infinity; got 0'],
    [
      { children: 'a' },
      'options.children',
      'must be an array of child specs or a function returning one',
    ],
    [
      { clock: { now: () => 0 } },
      'options.clock',
      'must have now(), setTimeout(callback, ms) and clearTimeout(handle)',
    ],
    [{ random: 0.5 }, 'options.random', 'must be a function returning a number in [0, 1)'],
    [{ id: '' }, 'options.id', 'must be a non-empty string'],
  ])('rejects %o at %s', (options, path, message) => {
    const err = configError(() => supervisor(options as never));
    expect(err.code).toBe('INVALID_OPTION');
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
  });

  it('rejects unknown option names, listing the allowed ones', () => {
    const err = configError(() => supervisor({ maxRestart: 3 } as never));
    expect(err).toMatchObject({ code: 'UNKNOWN_OPTION', path: 'options.maxRestart' });
    expect(err.message).toContain('allowed: id, strategy, maxRestarts, withinMs');
  });

  it.each([
    [
      'options.children[0].id',
      { logic },
      'MISSING_OPTION',
      'must be a non-empty string; got undefined',
    ],
    ['options.children[0].logic', { id: 'a' }, 'MISSING_OPTION', 'must be xstate actor logic'],
    [
      'options.children[0].logic',
      { id: 'a', logic: { transition: 1 } },
      'INVALID_OPTION',
      'must be xstate actor logic',
    ],
    [
      'options.children[0].restart',
      { id: 'a', logic, restart: 'sometimes' },
      'INVALID_OPTION',
      "must be one of 'permanent', 'transient', 'temporary'",
    ],
    [
      'options.children[0].shutdown',
      { id: 'a', logic, shutdown: -5 },
      'INVALID_OPTION',
      "must be 'brutal', 'infinity' or an integer number of ms >= 0; got -5",
    ],
    [
      'options.children[0].shutdown',
      { id: 'a', logic, shutdown: 'kill' },
      'INVALID_OPTION',
      'got "kill"',
    ],
    [
      'options.children[0].shutdownEvent.type',
      { id: 'a', logic, shutdownEvent: { kind: 'x' } },
      'INVALID_OPTION',
      'must be a non-empty string; got undefined',
    ],
    [
      'options.children[0].significant',
      { id: 'a', logic, significant: 'yes' },
      'INVALID_OPTION',
      'must be a boolean',
    ],
    [
      'options.children[0].backoff.factor',
      { id: 'a', logic, backoff: { factor: 0.5 } },
      'INVALID_OPTION',
      'must be a finite number >= 1; got 0.5',
    ],
    [
      'options.children[0].backoff.jitter',
      { id: 'a', logic, backoff: { jitter: 2 } },
      'INVALID_OPTION',
      'must be a finite number >= 0 <= 1; got 2',
    ],
    [
      'options.children[0].backoff.maxMs',
      { id: 'a', logic, backoff: { minMs: 500, maxMs: 100 } },
      'BAD_COMBINATION',
      'must be >= minMs (500); got 100',
    ],
    [
      'options.children[0].backoff.min',
      { id: 'a', logic, backoff: { min: 5 } },
      'UNKNOWN_OPTION',
      'allowed: minMs, maxMs, factor, jitter, resetAfterMs',
    ],
    [
      'options.children[0].probes.liveness.check',
      { id: 'a', logic, probes: { liveness: { periodMs: 5 } } },
      'MISSING_OPTION',
      'must be a function',
    ],
    [
      'options.children[0].probes.liveness.failureThreshold',
      { id: 'a', logic, probes: { liveness: { check: () => true, failureThreshold: 0 } } },
      'INVALID_OPTION',
      'must be an integer >= 1',
    ],
    [
      'options.children[0].probes.heartbeat.intervalMs',
      { id: 'a', logic, probes: { heartbeat: {} } },
      'MISSING_OPTION',
      'is required',
    ],
    [
      'options.children[0].probes.readiness',
      { id: 'a', logic, probes: { readiness: {} } },
      'UNKNOWN_OPTION',
      'allowed: startup, liveness, heartbeat',
    ],
    [
      'options.children[0].getInput',
      { id: 'a', logic, input: 1, getInput: () => 2 },
      'BAD_COMBINATION',
      'give either input or getInput, not both',
    ],
    [
      'options.children[0].significant',
      { id: 'a', logic, restart: 'permanent', significant: true },
      'BAD_COMBINATION',
      'a permanent child cannot be significant',
    ],
    [
      'options.children[0].significant',
      { id: 'a', logic, restart: 'transient', significant: true },
      'BAD_COMBINATION',
      "need the supervisor's autoShutdown",
    ],
  ])('rejects a bad child spec at %s', (path, spec, code, message) => {
    const err = configError(() => supervisor({ children: [spec as never] }));
    expect(err.code).toBe(code);
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
    expect(err.message.startsWith(`${path}: `)).toBe(true);
  });

  it('rejects duplicate child ids and too many children', () => {
    expect(
      configError(() =>
        supervisor({
          children: [
            { id: 'a', logic },
            { id: 'a', logic },
          ],
        }),
      ),
    ).toMatchObject({
      code: 'DUPLICATE_ID',
      path: 'options.children[1].id',
    });
    expect(
      configError(() =>
        supervisor({
          maxChildren: 1,
          children: [
            { id: 'a', logic },
            { id: 'b', logic },
          ],
        }),
      ),
    ).toMatchObject({ code: 'BAD_COMBINATION', path: 'options.children' });
  });

  it('rejects a custom shutdownEvent for a sub-supervisor, which only understands belfry.shutdown', () => {
    const err = configError(() =>
      supervisor({
        children: [{ id: 'sub', logic: supervisor(), shutdownEvent: { type: 'STOP' } }],
      }),
    );
    expect(err).toMatchObject({
      code: 'BAD_COMBINATION',
      path: 'options.children[0].shutdownEvent',
    });
  });

  it('fills in the documented defaults', () => {
    const sup = createSupervisor({
      children: [
        { id: 'machine', logic },
        { id: 'sub', logic: supervisor() },
        {
          id: 'promise',
          logic: {
            transition: (s: unknown) => s,
            getInitialSnapshot: () => ({ status: 'active' }),
          } as never,
        },
      ],
    });
    sup.start();
    expect(
      sup.whichChildren().map((c) => [c.id, c.type, c.restart, c.shutdown, c.significant]),
    ).toEqual([
      ['machine', 'worker', 'permanent', 5_000, false],
      ['sub', 'supervisor', 'permanent', 'infinity', false],
      ['promise', 'worker', 'permanent', 'brutal', false],
    ]);
    sup.kill();
  });

  it('checks createSupervisor options the same way, outside the actor', () => {
    expect(() => createSupervisor({ strategy: 'bogus' as never })).toThrow(ConfigError);
  });
});
