import { ConfigError } from '@belfry/core';
import {
  createMemoryDriver,
  MemoryDriver,
  type MemoryDriverOptions,
  type MemoryProgram,
} from '@belfry/driver-memory';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';

/** The ConfigError `fn` throws (fails if it throws anything else, or nothing). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`expected a ConfigError, got ${String(error)}`);
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** Both ways of making a driver refuse `options` with the same ConfigError. */
function refused(options: unknown): ConfigError {
  const viaClass = configError(() => new MemoryDriver(options as MemoryDriverOptions));
  const viaFactory = configError(() => createMemoryDriver(options as MemoryDriverOptions));
  expect(viaFactory.path).toBe(viaClass.path);
  expect(viaFactory.code).toBe(viaClass.code);
  return viaClass;
}

const noop: MemoryProgram = () => {};

describe('MemoryDriver options', () => {
  it('refuses options that are not an object', () => {
    expect(refused(null)).toMatchObject({ code: 'INVALID_OPTION', path: 'options' });
    expect(refused('fast')).toMatchObject({ code: 'INVALID_OPTION', path: 'options' });
  });

  it('refuses an unknown option key, naming it and the allowed ones', () => {
    const error = refused({ maxLines: 10 });
    expect(error.path).toBe('options.maxLines');
    expect(error.message).toContain(
      'allowed: clock, programs, defaultProgram, defaultGraceMs, maxOutputLines',
    );
  });

  it('marks an unknown option key UNKNOWN_OPTION, as the rest of belfry does', () => {
    expect(refused({ maxLines: 10 }).code).toBe('UNKNOWN_OPTION');
  });

  it.each([Number.NaN, 0, -1, 1.5, '5', Number.POSITIVE_INFINITY])(
    'refuses maxOutputLines %s',
    (value) => {
      const error = refused({ maxOutputLines: value });
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.maxOutputLines' });
      expect(error.message).toContain('must be an integer >= 1');
    },
  );

  it.each([-1, 1.5, Number.NaN, '10'])('refuses defaultGraceMs %s', (value) => {
    const error = refused({ defaultGraceMs: value });
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.defaultGraceMs' });
    expect(error.message).toContain('must be an integer >= 0');
  });

  const zero = (): number => 0;
  const nothing = (): void => {};
  it.each<[string, unknown]>([
    ['a number', 42],
    ['a string', 'realClock'],
    ['an empty object', {}],
    ['now that is not a function', { now: 5, setTimeout: zero, clearTimeout: nothing }],
    ['no setTimeout', { now: zero, clearTimeout: nothing }],
    ['no clearTimeout', { now: zero, setTimeout: zero }],
  ])('refuses a clock that is %s', (_what, clock) => {
    const error = refused({ clock });
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.clock' });
    expect(error.message).toContain('must be a Clock');
  });

  it.each([
    ['a string', 'agent'],
    ['a number', 7],
    ['null', null],
    ['an object without run', { options: { startDelayMs: 10 } }],
    ['an object whose run is not a function', { run: 'echo', options: {} }],
  ])('refuses a program entry that is %s', (_what, program) => {
    const error = refused({ programs: { ok: noop, broken: program } });
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.programs.broken' });
    expect(error.message).toContain('must be a program function or { run, options }');
  });

  it('refuses programs that are not an object of programs', () => {
    expect(refused({ programs: 5 }).path).toBe('options.programs');
  });

  it.each([
    ['startDelayMs', { startDelayMs: -1 }, 'must be an integer >= 0'],
    ['startDelayMs', { startDelayMs: 2.5 }, 'must be an integer >= 0'],
    ['startDelayMs', { startDelayMs: '100' }, 'must be an integer >= 0'],
    ['failStart', { failStart: '' }, 'must be a non-empty message'],
    ['failStart', { failStart: 5 }, 'must be a non-empty message'],
    ['delayMs', { delayMs: 10 }, 'is not a program option; allowed: startDelayMs, failStart'],
  ])('refuses program options with a bad %s', (key, options, message) => {
    const error = refused({ programs: { slow: { run: noop, options } } });
    expect(error.path).toBe(`options.programs.slow.options.${key}`);
    expect(error.message).toContain(message);
  });

  it('refuses program options that are not an object', () => {
    expect(refused({ programs: { slow: { run: noop, options: 'fast' } } })).toMatchObject({
      code: 'INVALID_OPTION',
      path: 'options.programs.slow.options',
    });
  });

  it.each([
    ['an unknown program', 'nope'],
    ['not a string', 42],
  ])('refuses a defaultProgram that is %s with a ConfigError', (_what, defaultProgram) => {
    const error = refused({ defaultProgram });
    expect(error.path).toBe('options.defaultProgram');
  });

  it('accepts valid options, and they take effect', async () => {
    const clock = new SimulatedClock(1_000);
    const driver = createMemoryDriver({
      clock,
      programs: {
        hello: (s) => s.write('hello'),
        slow: { run: (s) => s.write('ready'), options: { startDelayMs: 2_000 } },
        plain: { run: noop, options: {} },
      },
      defaultProgram: 'silent',
      defaultGraceMs: 0,
      maxOutputLines: 2,
    });
    expect(driver).toBeInstanceOf(MemoryDriver);
    expect(new MemoryDriver({})).toBeInstanceOf(MemoryDriver);
    expect(new MemoryDriver()).toBeInstanceOf(MemoryDriver);

    await driver.start({ name: 'h', epoch: 1, command: ['hello'] });
    expect(await driver.capture('h')).toEqual(['hello']);

    let started = false;
    const slow = driver.start({ name: 's', epoch: 1, command: ['slow'] }).then(() => {
      started = true;
    });
    await clock.advance(1_999);
    expect(started).toBe(false);
    await clock.advance(1);
    await slow;
    expect(started).toBe(true);

    // An unknown command runs the default program: silent, so a nudge gets no echo.
    await driver.start({ name: 'u', epoch: 1, command: ['no-such-program'] });
    await driver.nudge('u', 'anyone?');
    expect(await driver.capture('u')).toEqual([]);

    // defaultGraceMs 0: a session that ignores the stop is killed at once.
    await driver.start({ name: 'st', epoch: 1, command: ['stubborn'] });
    const stopAt = clock.now();
    const stopping = driver.stop('st');
    await clock.advance(0);
    await stopping;
    expect(await driver.status('st')).toMatchObject({
      state: 'exited',
      signal: 'SIGKILL',
      exitedAt: stopAt,
    });

    // maxOutputLines 2: only the newest two lines are kept.
    await driver.start({ name: 'c', epoch: 1, command: ['chatty', '10'] });
    await clock.advance(50);
    expect(await driver.capture('c')).toEqual(['working 4', 'working 5']);
  });
});

describe('MemoryDriver.program', () => {
  it.each([
    ['an empty name', () => new MemoryDriver().program('', noop), 'name'],
    ['a name that is not a string', () => new MemoryDriver().program(7 as never, noop), 'name'],
    ['a run that is not a function', () => new MemoryDriver().program('x', 'nope' as never), 'run'],
    [
      'a negative startDelayMs',
      () => new MemoryDriver().program('x', noop, { startDelayMs: -1 }),
      'options.startDelayMs',
    ],
    [
      'a non-integer startDelayMs',
      () => new MemoryDriver().program('x', noop, { startDelayMs: 0.5 }),
      'options.startDelayMs',
    ],
    [
      'an empty failStart',
      () => new MemoryDriver().program('x', noop, { failStart: '' }),
      'options.failStart',
    ],
    [
      'an unknown option',
      () => new MemoryDriver().program('x', noop, { startDelay: 5 } as never),
      'options.startDelay',
    ],
    [
      'options that are not an object',
      () => new MemoryDriver().program('x', noop, null as never),
      'options',
    ],
  ])('refuses %s', (_what, call, path) => {
    const error = configError(call);
    expect(error).toMatchObject({ code: expect.any(String), path });
    expect(['INVALID_OPTION', 'UNKNOWN_OPTION']).toContain(error.code);
  });

  it('a refused registration leaves the program it would have replaced in place', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock() });
    driver.program('greeter', (s) => s.write('v1'));
    expect(() => driver.program('greeter', (s) => s.write('v2'), { failStart: '' })).toThrow(
      ConfigError,
    );
    expect(() => driver.program('greeter', 'v3' as never)).toThrow(ConfigError);
    await driver.start({ name: 'g', epoch: 1, command: ['greeter'] });
    expect(await driver.capture('g')).toEqual(['v1']);
  });

  it('registers a valid program, with its options', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock() });
    driver.program('refuses', noop, { failStart: 'no license' });
    await expect(driver.start({ name: 'r', epoch: 1, command: ['refuses'] })).rejects.toMatchObject(
      { code: 'START_FAILED', message: expect.stringContaining('no license') },
    );
  });
});

describe('the nudges a session keeps', () => {
  it('are bounded by maxOutputLines: the oldest go, the order is kept', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(), maxOutputLines: 3 });
    await driver.start({ name: 'a', epoch: 1, command: ['agent'] });
    for (let i = 1; i <= 7; i++) await driver.nudge('a', `n${i}`);
    expect(driver.nudgesOf('a')).toEqual(['n5', 'n6', 'n7']);
    // The echoed output is bounded the same way.
    expect(await driver.capture('a')).toEqual(['> n5', '> n6', '> n7']);
  });

  it('are bounded for a hung session too (nudges it ignores are still kept, and still bounded)', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(), maxOutputLines: 2 });
    await driver.start({ name: 'h', epoch: 1, command: ['agent'] });
    await driver.nudge('h', 'before');
    driver.hang('h');
    for (const text of ['x', 'y', 'z']) await driver.nudge('h', text);
    expect(driver.nudgesOf('h')).toEqual(['y', 'z']);
    expect(await driver.capture('h')).toEqual(['> before']);
  });

  it('keep 1,000 by default', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock() });
    await driver.start({ name: 'd', epoch: 1, command: ['silent'] });
    for (let i = 1; i <= 1_005; i++) await driver.nudge('d', `n${i}`);
    const kept = driver.nudgesOf('d');
    expect(kept).toHaveLength(1_000);
    expect(kept[0]).toBe('n6');
    expect(kept.at(-1)).toBe('n1005');
  });

  it('with maxOutputLines 1, only the latest is kept', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(), maxOutputLines: 1 });
    await driver.start({ name: 'o', epoch: 1, command: ['agent'] });
    await driver.nudge('o', 'first');
    await driver.nudge('o', 'second');
    expect(driver.nudgesOf('o')).toEqual(['second']);
  });
});
