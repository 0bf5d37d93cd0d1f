import {
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
};

/** A town on simulated time, with what a test needs around it. */
export interface TestTown {
  town: Town;
  model: TownModel;
  clock: SimulatedClock;
  driver: MemoryDriver;
  store: Store;
  /** Every town event so far, in order. */
  events: TownEvent[];
  /** Moves simulated time, letting promises settle between timers. */
  advance(ms: number): Promise<void>;
  /**
   * Advances time in steps until an event of `type` (matching `where`) arrives after the call,
   * and returns it; fails after `withinMs` of simulated time with the events seen. `since` (an
   * index into `events`) also looks at earlier events: `since: 0` finds one that happened while
   * the town started.
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
 * Builds a town for a test: memory store and driver, a simulated clock, recorded events, and
 * helpers to move time, crash or hang sessions, and wait for events.
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
    ...rest
  } = options;
  const clock = givenClock ?? new SimulatedClock(1_700_000_000_000);
  const driver = givenDriver ?? createMemoryDriver({ clock });
  const store = givenStore ?? new MemoryStore();
  const town = createTown({
    ...rest,
    rigs,
    store,
    driver: wrapDriver ? wrapDriver(driver) : driver,
    clock,
  });
  const events: TownEvent[] = [];
  town.events.on('*', (e) => events.push(e));
  const t: TestTown = {
    town,
    model: town.model,
    clock,
    driver,
    store,
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
          throw new Error(
            `no ${type} event within ${withinMs} ms of simulated time; events seen since ${since === undefined ? 'the call' : `index ${since}`}: ${seen}`,
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
