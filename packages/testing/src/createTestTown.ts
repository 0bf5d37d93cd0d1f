import {
  ConfigError,
  createTown,
  MemoryStore,
  type Store,
  type Town,
  type TownEvent,
  type TownModel,
  type TownOptions,
} from '@belfry/core';
import type { SessionDriver, SessionStatus } from '@belfry/core/driver';
import { createMemoryDriver, type MemoryDriver } from '@belfry/driver-memory';
import { SimulatedClock } from './SimulatedClock';
import { checkSeed, seededRandom } from './seededRandom';

/**
 * The seed of every test town that is given neither `seed` nor `random`, unless the
 * `BELFRY_TEST_SEED` environment variable names another: so every run of a test is the same run.
 */
export const DEFAULT_TEST_SEED = 12_345;

/** The environment variable that replaces {@link DEFAULT_TEST_SEED} (to replay a failed run). */
const SEED_ENV = 'BELFRY_TEST_SEED';

/** How many test towns each store has had, so a later town on the same records draws new ids. */
const townsOn = new WeakMap<Store, number>();

/** Options of {@link createTestTown}: the town's, with the store, driver and clock made for you. */
export type TestTownOptions = Omit<TownOptions, 'driver' | 'clock' | 'store'> & {
  /** @defaultValue a new MemoryStore (pass one to restart a town on the same records) */
  store?: Store;
  /** @defaultValue a new MemoryDriver on the clock (pass one to keep sessions across towns) */
  driver?: MemoryDriver;
  /**
   * Puts a driver of your own between the town and the memory driver (to inject faults or record
   * calls); the helpers (`crash`, `hang`, `session`) still act on the memory driver behind it.
   * @defaultValue the town uses the memory driver directly
   */
  wrapDriver?: (driver: MemoryDriver) => SessionDriver;
  /** @defaultValue a new SimulatedClock at 1_700_000_000_000 */
  clock?: SimulatedClock;
  /** @defaultValue ['api'] */
  rigs?: readonly string[];
  /** Start the town. @defaultValue true */
  start?: boolean;
  /**
   * Seeds the town's `random` with {@link seededRandom}, so backoff jitter, Boot's ids and record
   * ids are the same on every run: an integer from 0 to 4294967295. Not with `random`.
   * @defaultValue the `BELFRY_TEST_SEED` environment variable, else {@link DEFAULT_TEST_SEED}
   */
  seed?: number;
};

/** A town on simulated time, with what a test needs around it. */
export interface TestTown {
  town: Town;
  model: TownModel;
  clock: SimulatedClock;
  driver: MemoryDriver;
  store: Store;
  /**
   * The seed of the town's `random` (replay a run with `createTestTown({ seed })`), or
   * `undefined` when the test gave a `random` of its own.
   */
  seed: number | undefined;
  /** Every town event so far, in order. */
  events: TownEvent[];
  /** Moves simulated time, letting promises settle between timers. */
  advance(ms: number): Promise<void>;
  /**
   * Advances time in steps until an event of `type` (matching `where`) arrives after the call,
   * and returns it; fails after `withinMs` of simulated time with the events seen. `since` (an
   * index into `events`) also looks at earlier events: `since: 0` finds one that happened while
   * the town started. Its error names the seed, to replay the run.
   */
  next<T extends TownEvent['type']>(
    type: T,
    options?: {
      where?: (event: Extract<TownEvent, { type: T }>) => boolean;
      withinMs?: number;
      stepMs?: number;
      since?: number;
    },
  ): Promise<Extract<TownEvent, { type: T }>>;
  /** Creates a bead in `rig` (default the first rig) and slings it there. */
  work(title: string, rig?: string): Promise<{ agent: string; beadId: string }>;
  /** The session of an agent (`rig/name`). */
  session(agent: string): Promise<SessionStatus>;
  /** Kills an agent's session, as a crash. */
  crash(agent: string, signal?: string): void;
  /** Hangs an agent's session: alive, no activity. */
  hang(agent: string): void;
  /** Stops the town (sessions keep running). */
  stop(): Promise<void>;
}

function sessionOf(agent: string): string {
  return agent.replace('/', '-');
}

/**
 * The seed a test town uses: `seed`, else `BELFRY_TEST_SEED` from the environment, else
 * {@link DEFAULT_TEST_SEED}.
 */
function seedOf(seed: unknown): number {
  if (seed !== undefined) return checkSeed(seed, 'options.seed');
  const fromEnv = globalThis.process?.env?.[SEED_ENV];
  if (fromEnv === undefined || fromEnv === '') return DEFAULT_TEST_SEED;
  if (!/^\d{1,10}$/.test(fromEnv.trim()))
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: SEED_ENV,
      message: `${SEED_ENV} (the environment): must be an integer from 0 to 4294967295; got ${JSON.stringify(fromEnv)}`,
    });
  return checkSeed(Number(fromEnv), `${SEED_ENV} (the environment)`);
}

/**
 * Builds a town for a test: memory store and driver, a simulated clock, a seeded source of
 * randomness, recorded events, and helpers to move time, crash or hang sessions, and wait for
 * events. With the same seed and the same steps, a test town gives the same events (with the same
 * times) and the same record ids on every run. A second test town on the same store draws from
 * the seed mixed with how many that store has had, so its ids never repeat the first one's.
 *
 * @param options - see {@link TestTownOptions}.
 * @returns the started test town (unless `start: false`).
 * @example
 * ```ts
 * const t = await createTestTown();
 * const { agent } = await t.work('fix the login bug');
 * await t.next('polecat.spawned');
 * t.crash(agent);
 * const again = await t.next('polecat.spawned', { withinMs: 120_000 });
 * expect(again.respawn).toBe(true);
 * ```
 */
export async function createTestTown(options: TestTownOptions = {}): Promise<TestTown> {
  const {
    store: givenStore,
    driver: givenDriver,
    wrapDriver,
    clock: givenClock,
    start = true,
    rigs = ['api'],
    seed: givenSeed,
    random: givenRandom,
    ...rest
  } = options;
  if (givenSeed !== undefined && givenRandom !== undefined)
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'options.seed',
      message:
        'options.seed: give either seed (the test town seeds its random with it) or random (your own source), not both',
    });
  const seed = givenRandom === undefined ? seedOf(givenSeed) : undefined;
  const clock = givenClock ?? new SimulatedClock(1_700_000_000_000);
  const driver = givenDriver ?? createMemoryDriver({ clock });
  const store = givenStore ?? new MemoryStore();
  const generation = townsOn.get(store) ?? 0;
  townsOn.set(store, generation + 1);
  // The first town on a store draws from the seed itself; each later one from a stream of its
  // own (the seed moved by a golden-ratio step), so a town restarted on the same records never
  // makes an id the first one already made.
  const random =
    givenRandom ?? seededRandom(((seed as number) + Math.imul(generation, 0x9e37_79b9)) >>> 0);
  const town = createTown({
    ...rest,
    rigs,
    store,
    driver: wrapDriver ? wrapDriver(driver) : driver,
    clock,
    random,
  });
  const events: TownEvent[] = [];
  town.events.on('*', (e) => events.push(e));
  const t: TestTown = {
    town,
    model: town.model,
    clock,
    driver,
    store,
    seed,
    events,
    advance: (ms) => clock.advance(ms),
    async next(type, { where, withinMs = 600_000, stepMs = 1_000, since } = {}) {
      if (
        since !== undefined &&
        (!Number.isSafeInteger(since) || since < 0 || since > events.length)
      )
        throw new RangeError(
          `next: since must be an index into events (0 to ${events.length}); got ${since}`,
        );
      const from = since ?? events.length;
      const found = () =>
        events
          .slice(from)
          .find(
            (e) =>
              e.type === type && (!where || where(e as Extract<TownEvent, { type: typeof type }>)),
          ) as Extract<TownEvent, { type: typeof type }> | undefined;
      let waited = 0;
      await clock.advance(0);
      for (;;) {
        const hit = found();
        if (hit) return hit;
        if (waited >= withinMs) {
          const seen =
            events
              .slice(from)
              .map((e) => e.type)
              .slice(-20)
              .join(', ') || 'none';
          const replay =
            seed === undefined
              ? 'random given by the test'
              : `seed ${seed}: replay with createTestTown({ seed: ${seed} })`;
          throw new Error(
            `no ${type} event within ${withinMs} ms of simulated time; events seen since ${since === undefined ? 'the call' : `index ${since}`}: ${seen} (${replay})`,
          );
        }
        await clock.advance(stepMs);
        waited += stepMs;
      }
    },
    async work(title, rig = rigs[0] as string) {
      const bead = await town.model.beads.create({ title, rig });
      const { agent } = await town.sling(bead.id, rig);
      return { agent, beadId: bead.id };
    },
    session: (agent) => driver.status(sessionOf(agent)),
    crash: (agent, signal) => driver.crash(sessionOf(agent), signal),
    hang: (agent) => driver.hang(sessionOf(agent)),
    async stop() {
      let done = false;
      const stopped = town.stop().finally(() => {
        done = true;
      });
      // Graceful stops wait on the clock (shutdown budgets); move it until the tree is down.
      for (let i = 0; i < 600 && !done; i++) await clock.advance(1_000);
      await stopped;
    },
  };
  if (start) {
    await town.start();
    await clock.advance(0);
  }
  return t;
}
