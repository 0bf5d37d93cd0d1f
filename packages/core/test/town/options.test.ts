import {
  ConfigError,
  createTown,
  DEFAULT_TIMINGS,
  SupervisorError,
  type Town,
  type TownEvent,
  type TownOptions,
  type TownTimings,
} from '@belfry/core';
import type { GateEvaluator } from '@belfry/core/gate';
import { createMemoryDriver } from '@belfry/driver-memory';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { timerEvaluator } from './helpers';

const START = 1_700_000_000_000;

function setup(options: Partial<TownOptions> = {}) {
  const clock = new SimulatedClock(START);
  const driver = createMemoryDriver({ clock });
  const town = createTown({ driver, clock, ...options });
  const events: TownEvent[] = [];
  town.events.on('*', (e) => events.push(e));
  return { clock, driver, town, events };
}

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

/** createTown with a valid driver plus `extra`, expected to throw a ConfigError. */
function refused(extra: Record<string, unknown>): ConfigError {
  const clock = new SimulatedClock(START);
  return configError(() =>
    createTown({ driver: createMemoryDriver({ clock }), clock, ...extra } as TownOptions),
  );
}

function accepted(extra: Record<string, unknown>): Town {
  const clock = new SimulatedClock(START);
  return createTown({ driver: createMemoryDriver({ clock }), clock, ...extra } as TownOptions);
}

/** Moves the clock until `promise` settles; fails after `withinMs` of simulated time. */
async function settleOn<T>(clock: SimulatedClock, promise: Promise<T>, withinMs = 600_000) {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  watched.catch(() => {});
  await clock.advance(0);
  for (let waited = 0; !settled; waited += 1_000) {
    if (waited >= withinMs) throw new Error(`still pending after ${withinMs} ms of simulated time`);
    await clock.advance(1_000);
  }
  return watched;
}

function evaluator(type: string): GateEvaluator {
  return { ...timerEvaluator(), type };
}

const TIMING_KEYS = Object.keys(DEFAULT_TIMINGS) as Array<keyof TownTimings>;
const COUNT_KEYS: Array<keyof TownTimings> = ['maxRespawns', 'keepPatrolDigests'];

describe('createTown options', () => {
  describe('the options object and the driver', () => {
    it('refuses an unknown option, naming it and the allowed ones', () => {
      const error = refused({ colck: new SimulatedClock() });
      expect(error).toMatchObject({ code: 'UNKNOWN_OPTION', path: 'options.colck' });
      expect(error.message).toMatch(
        /^options\.colck: is not an option here; allowed: store, driver, clock/,
      );
    });

    it('refuses options that are not an object', () => {
      expect(configError(() => createTown(null as unknown as TownOptions))).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options',
      });
    });

    it.each([
      ['missing', undefined],
      ['null', null],
    ])('refuses a driver that is %s (MISSING_OPTION)', (_what, driver) => {
      const clock = new SimulatedClock(START);
      const options = { clock, ...(driver === undefined ? {} : { driver }) };
      const error = configError(() => createTown(options as unknown as TownOptions));
      expect(error).toMatchObject({ code: 'MISSING_OPTION', path: 'options.driver' });
      expect(error.message).toContain('a SessionDriver');
    });

    it.each([
      ['not an object', 'memory', 'start, status, list, nudge, capture, stop'],
      [
        'without start',
        { list: async () => [], stop: async () => {} },
        'start, status, nudge, capture',
      ],
      [
        'without list',
        { start: async () => ({}), stop: async () => {} },
        'status, list, nudge, capture',
      ],
      [
        'without stop',
        { start: async () => ({}), list: async () => [] },
        'status, nudge, capture, stop',
      ],
    ])('refuses a driver that is %s, naming what it lacks', (_what, driver, missing) => {
      const clock = new SimulatedClock(START);
      const error = configError(() => createTown({ clock, driver } as unknown as TownOptions));
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.driver' });
      expect(error.message).toContain(`missing: ${missing}`);
    });

    // The docs: "Unknown options and bad values throw a ConfigError whose path names the field".
    it.each([
      ['options.timings', { timings: 5 }],
      ['options.rigs', { rigs: 'api' }],
      ['options.gates', { gates: {} }],
      ['options.pollers', { pollers: {} }],
      ['options.triage', { triage: 'mechanical' }],
      ['options.mayor', { mayor: 'console' }],
      ['options.agent.launch', { agent: { launch: ['agent'] } }],
      ['options.agent.lunch', { agent: { lunch: () => ({ command: ['agent'] }) } }],
    ])('refuses a bad value with a ConfigError at %s', (path, extra) => {
      const error = refused(extra);
      expect(error.path).toBe(path);
      expect(['INVALID_OPTION', 'UNKNOWN_OPTION']).toContain(error.code);
    });
  });

  describe('timings', () => {
    it('refuses an unknown timing key, naming it and the known ones', () => {
      const error = refused({ timings: { hearbeatMs: 1_000 } });
      expect(error).toMatchObject({ code: 'UNKNOWN_OPTION', path: 'options.timings.hearbeatMs' });
      expect(error.message).toContain('allowed: heartbeatMs, patrolIntervalMs');
    });

    const durations = TIMING_KEYS.filter((k) => !COUNT_KEYS.includes(k));
    const badDurations = durations.flatMap((key) =>
      [0, -1, 1.5, '5', Number.NaN, Number.POSITIVE_INFINITY, null].map(
        (value) => [key, value] as const,
      ),
    );
    it.each(badDurations)('refuses timings.%s = %s', (key, value) => {
      const error = refused({ timings: { [key]: value } });
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: `options.timings.${key}` });
      expect(error.message).toContain('must be an integer >= 1');
    });

    const badCounts = COUNT_KEYS.flatMap((key) =>
      [-1, 1.5, '5', Number.NaN].map((value) => [key, value] as const),
    );
    it.each(badCounts)('refuses timings.%s = %s', (key, value) => {
      const error = refused({ timings: { [key]: value } });
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: `options.timings.${key}` });
      expect(error.message).toContain('must be an integer >= 0');
    });

    it('allows maxRespawns: 0 and keepPatrolDigests: 0 (counts, not times), and 1 ms timings', () => {
      expect(() => accepted({ timings: { maxRespawns: 0 } })).not.toThrow();
      expect(() => accepted({ timings: { keepPatrolDigests: 0 } })).not.toThrow();
      expect(() =>
        accepted({ timings: Object.fromEntries(TIMING_KEYS.map((k) => [k, 1])) }),
      ).not.toThrow();
    });

    it('keepPatrolDigests: 0 keeps no digest once a patrol is over', async () => {
      const { town, clock, events } = setup({ timings: { keepPatrolDigests: 0 } });
      await town.start();
      await clock.advance(0);
      const finished = events.filter(
        (e): e is Extract<TownEvent, { type: 'patrol.finished' }> => e.type === 'patrol.finished',
      );
      expect(finished).toHaveLength(1);
      expect(await town.model.beads.get(finished[0]?.digestBeadId as string)).toBeUndefined();
      await settleOn(clock, town.stop());
    });
  });

  describe('rig names', () => {
    it('accepts names of up to 32 letters, digits, _ and -', async () => {
      const rigs = ['a', 'A9', 'r'.repeat(32), 'my_rig-2', '9lives'];
      const { town, clock } = setup({ rigs });
      await town.start();
      expect((await town.model.rigs.list()).map((r) => r.id).sort()).toEqual([...rigs].sort());
      await settleOn(clock, town.stop());
    });

    it.each([
      ['33 characters', 'r'.repeat(33)],
      ["a '/'", 'api/web'],
      ['a space', 'my rig'],
      ["a '.'", 'api.v2'],
      ["a leading '-'", '-api'],
      ['empty', ''],
      ['not a string', 42],
    ])('refuses a name with %s at options.rigs[i]', (_what, bad) => {
      const error = refused({ rigs: ['api', bad] });
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.rigs[1]' });
      expect(error.message).toContain("1 to 32 letters, digits, '_' or '-'");
    });

    it('town.rigs.create refuses a bad name, and creates a good one', async () => {
      const { town } = setup();
      await expect(town.rigs.create('bad name')).rejects.toBeInstanceOf(ConfigError);
      await expect(town.rigs.create('bad name')).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        path: 'name',
      });
      await expect(town.rigs.create('x'.repeat(33))).rejects.toMatchObject({ path: 'name' });
      expect(await town.model.rigs.list()).toEqual([]);
      expect((await town.rigs.create('x'.repeat(32))).id).toBe('x'.repeat(32));
    });

    it('the longest rig and polecat names still make a session name a driver takes', async () => {
      const rig = 'r'.repeat(32);
      const name = 'p'.repeat(31);
      const { town, clock, events } = setup({ rigs: [rig], polecatNames: [name] });
      await town.start();
      const bead = await town.model.beads.create({ title: 'long names', rig });
      const { agent } = await town.sling(bead.id, rig);
      expect(agent).toBe(`${rig}/${name}`);
      await clock.advance(15_000);
      const spawned = events.find((e) => e.type === 'polecat.spawned');
      expect(spawned).toMatchObject({ agent, beadId: bead.id });
      expect((await town.driver.status(`${rig}-${name}`)).state).toBe('running');
      await settleOn(clock, town.stop());
    });
  });

  describe('polecatNames', () => {
    it.each([
      ["a '-'", 'nux-2'],
      ['32 characters', 'p'.repeat(32)],
      ['an upper-case letter', 'Nux'],
      ['a leading digit', '9nux'],
      ['empty', ''],
    ])('refuses a name with %s at options.polecatNames[i]', (_what, bad) => {
      const error = refused({ polecatNames: ['toast', bad] });
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.polecatNames[1]' });
      expect(error.message).toContain("no '-'");
    });

    it('accepts names of up to 31 characters', () => {
      expect(() => accepted({ polecatNames: ['p'.repeat(31), 'a', 'a_1'] })).not.toThrow();
    });

    it('refuses a name listed twice (DUPLICATE_ID)', () => {
      const error = refused({ polecatNames: ['toast', 'nux', 'toast'] });
      expect(error).toMatchObject({ code: 'DUPLICATE_ID', path: 'options.polecatNames[2]' });
      expect(error.message).toContain('"toast" is listed twice');
    });

    it('refuses an empty list, and a list that is not an array', () => {
      expect(refused({ polecatNames: [] })).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options.polecatNames',
      });
      expect(refused({ polecatNames: 'toast' })).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options.polecatNames',
      });
    });
  });

  describe('gate evaluators', () => {
    it('refuses two evaluators for one gate type (DUPLICATE_ID at the second)', () => {
      const error = refused({ gates: [evaluator('timer'), evaluator('ci'), evaluator('timer')] });
      expect(error).toMatchObject({ code: 'DUPLICATE_ID', path: 'options.gates[2].type' });
      expect(error.message).toContain('options.gates[0]');
      expect(refused({ gates: [evaluator('timer'), evaluator('timer')] })).toMatchObject({
        code: 'DUPLICATE_ID',
        path: 'options.gates[1].type',
      });
    });

    it('refuses an evaluator without evaluate, and one that is not an object', () => {
      const { evaluate: _drop, ...noEvaluate } = evaluator('ci');
      expect(refused({ gates: [evaluator('timer'), noEvaluate] })).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options.gates[1].evaluate',
      });
      expect(refused({ gates: [null] })).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options.gates[0].evaluate',
      });
    });

    it('accepts evaluators of distinct types', () => {
      expect(() => accepted({ gates: [evaluator('timer'), evaluator('ci')] })).not.toThrow();
    });
  });

  describe('pollers', () => {
    const poller = (extra: Record<string, unknown> = {}) => ({
      name: 'sync',
      intervalMs: 60_000,
      run: () => {},
      ...extra,
    });

    it.each([
      ['a space', 'my poller'],
      ["a '/'", 'a/b'],
      ["a leading '.'", '.hidden'],
      ['65 characters', 'p'.repeat(65)],
      ['empty', ''],
      ['not a string', 7],
    ])('refuses a name with %s', (_what, name) => {
      expect(refused({ pollers: [poller({ name: 'ok' }), poller({ name })] })).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options.pollers[1].name',
      });
    });

    it('refuses two pollers of one name (DUPLICATE_ID)', () => {
      const error = refused({ pollers: [poller(), poller({ intervalMs: 1_000 })] });
      expect(error).toMatchObject({ code: 'DUPLICATE_ID', path: 'options.pollers[1].name' });
      expect(error.message).toContain('"sync" is listed twice');
    });

    it.each([
      ['intervalMs', 0],
      ['intervalMs', -5],
      ['intervalMs', 1.5],
      ['intervalMs', undefined],
      ['timeoutMs', 0],
      ['timeoutMs', -1],
      ['timeoutMs', 2.5],
      ['timeoutMs', '100'],
    ])('refuses %s = %s', (key, value) => {
      expect(refused({ pollers: [poller({ [key]: value })] })).toMatchObject({
        code: 'INVALID_OPTION',
        path: `options.pollers[0].${key}`,
      });
    });

    it('refuses a poller without run', () => {
      expect(refused({ pollers: [poller({ run: undefined })] })).toMatchObject({
        code: 'INVALID_OPTION',
        path: 'options.pollers[0].run',
      });
    });

    it("accepts names of letters, digits, '_', '-' and '.' up to 64, and intervals of 1 ms", () => {
      expect(() =>
        accepted({
          pollers: [
            poller({ name: 'gh.sync-v2_x' }),
            poller({ name: 'p'.repeat(64), intervalMs: 1, timeoutMs: 1 }),
          ],
        }),
      ).not.toThrow();
    });
  });
});

describe('createTown defaults', () => {
  it('DEFAULT_TIMINGS are the documented numbers, frozen', () => {
    expect(DEFAULT_TIMINGS).toEqual({
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
    expect(Object.isFrozen(DEFAULT_TIMINGS)).toBe(true);
  });

  it('with no timings, the first heartbeat comes exactly heartbeatMs (180,000 ms) after start, then every 180,000 ms', async () => {
    const { town, clock, events } = setup();
    await clock.advance(7_000); // created at START, started later
    const startedAt = clock.now();
    await town.start();
    await clock.advance(DEFAULT_TIMINGS.heartbeatMs - 1);
    expect(events.filter((e) => e.type === 'heartbeat')).toEqual([]);
    await clock.advance(1);
    const first = events.filter((e) => e.type === 'heartbeat');
    expect(first).toEqual([{ type: 'heartbeat', count: 1, at: startedAt + 180_000 }]);
    expect(DEFAULT_TIMINGS.heartbeatMs).toBe(180_000);
    await clock.advance(2 * 180_000);
    expect(events.filter((e) => e.type === 'heartbeat').map((e) => e.at - startedAt)).toEqual([
      180_000, 360_000, 540_000,
    ]);
    // Each heartbeat also brings a patrol.
    expect(events.filter((e) => e.type === 'patrol.started').map((e) => e.at - startedAt)).toEqual([
      0, 180_000, 360_000, 540_000,
    ]);
    const status = await town.status();
    expect(status.daemon).toMatchObject({
      heartbeatCount: 3,
      lastHeartbeat: startedAt + 540_000,
    });
    await settleOn(clock, town.stop());
  });

  it('the patrol interval defaults to 300,000 ms (seen without heartbeats)', async () => {
    const { town, clock, events } = setup({ timings: { heartbeatMs: 100_000_000 } });
    await town.start();
    await clock.advance(900_000);
    expect(events.filter((e) => e.type === 'heartbeat')).toEqual([]);
    expect(DEFAULT_TIMINGS.patrolIntervalMs).toBe(300_000);
    expect(events.filter((e) => e.type === 'patrol.started').map((e) => e.at - START)).toEqual([
      0,
      DEFAULT_TIMINGS.patrolIntervalMs,
      2 * DEFAULT_TIMINGS.patrolIntervalMs,
      900_000,
    ]);
    await settleOn(clock, town.stop());
  });
});

describe('the town lifecycle', () => {
  it('status().daemon.startedAt is the clock time at start (not at creation)', async () => {
    const { town, clock } = setup();
    await clock.advance(42_000);
    await town.start();
    expect((await town.status()).daemon).toMatchObject({
      running: true,
      startedAt: START + 42_000,
      heartbeatCount: 0,
    });
    await clock.advance(1_000);
    expect((await town.status()).daemon.startedAt).toBe(START + 42_000);
    await settleOn(clock, town.stop());
    expect((await town.status()).daemon.running).toBe(false);
  });

  it('a town not yet started is not running', async () => {
    const { town } = setup();
    expect((await town.status()).daemon).toMatchObject({
      running: false,
      startedAt: undefined,
      heartbeatCount: 0,
    });
  });

  it('start() twice on a running town is a no-op: one tree, one heartbeat per period', async () => {
    const { town, clock, events } = setup({ rigs: ['api'] });
    await town.start();
    await clock.advance(10_000);
    expect(await town.start()).toBe(town);
    expect((await town.status()).daemon.startedAt).toBe(START);
    await clock.advance(180_000 - 10_000);
    expect(events.filter((e) => e.type === 'heartbeat')).toEqual([
      { type: 'heartbeat', count: 1, at: START + 180_000 },
    ]);
    expect(events.filter((e) => e.type === 'patrol.started')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'witness.started')).toHaveLength(1);
    expect((await town.status()).rigs).toHaveLength(1);
    await settleOn(clock, town.stop());
  });

  it.each([
    ['stop()', (town: Town, clock: SimulatedClock) => settleOn(clock, town.stop())],
    ['kill()', (town: Town) => town.kill()],
  ])(
    'a town ended by %s refuses start() with NOT_RUNNING, telling to create a new town',
    async (_how, end) => {
      const { town, clock, events } = setup({ rigs: ['api'] });
      await town.start();
      await clock.advance(1_000);
      await end(town, clock);
      const error = await town.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SupervisorError);
      expect(error).toMatchObject({ code: 'NOT_RUNNING' });
      expect((error as Error).message).toMatch(/create a new one with createTown/);
      // And it stays down.
      const before = events.length;
      await clock.advance(600_000);
      expect(events.slice(before)).toEqual([]);
      expect((await town.status()).daemon.running).toBe(false);
    },
  );

  it('stop() on a town never started settles, and the town then refuses start()', async () => {
    const { town, clock } = setup();
    await settleOn(clock, town.stop(), 60_000);
    await expect(town.start()).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  });
});
