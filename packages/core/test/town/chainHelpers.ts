import type {
  IndexQuery,
  MayorMessage,
  Report,
  Store,
  StoredRecord,
  StoreSchema,
  StoreTx,
  SupervisorEvent,
  TownEvent,
  TownOptions,
  TownTimings,
} from '@belfry/core';
import { MemoryStore } from '@belfry/core';
import type { SessionDriver, SessionSpec, SessionStatus, StopOptions } from '@belfry/core/driver';
import { MemoryDriver } from '@belfry/driver-memory';
import {
  createTestTown,
  type SimulatedClock,
  type TestTown,
  type TestTownOptions,
} from '@belfry/testing';

/** Small timings so a scenario needs few steps (each on simulated time). */
export const TIMINGS = {
  heartbeatMs: 60_000,
  patrolIntervalMs: 120_000,
  surveyMs: 10_000,
  spawnGraceMs: 30_000,
  staleAfterMs: 120_000,
} satisfies Partial<TownTimings>;

/**
 * Agents that keep working: the memory driver's `chatty` program writes a line every 10 s, so a
 * session stays active (the default `agent` only echoes nudges and goes quiet after its prime).
 */
export const BUSY_AGENT = { launch: () => ({ command: ['chatty', '10000'] }) } as const;

/** Two rigs of busy agents on the small timings: what most chain scenarios start from. */
export const TWO_RIGS = {
  timings: TIMINGS,
  agent: BUSY_AGENT,
  rigs: ['api', 'web'],
} satisfies Partial<TownOptions>;

/** A memory driver that records every `start` call, to prove that no second session was asked for. */
export class CountingDriver extends MemoryDriver {
  readonly starts: SessionSpec[] = [];

  override async start(spec: SessionSpec): Promise<SessionStatus> {
    this.starts.push(spec);
    return super.start(spec);
  }

  /** The `start` calls for one session name. */
  startsOf(name: string): SessionSpec[] {
    return this.starts.filter((s) => s.name === name);
  }
}

/**
 * A store with injectable faults, around a MemoryStore:
 * - `failMolecules`: every transaction that touches the `molecules` collection fails. The patrol
 *   is a molecule and begins by reading it, so the Deacon's patrol fails at once; Witnesses and
 *   polecats never touch molecules.
 * - `hangRig(rig)`: a transaction that only reads that rig's record (the first thing a Witness's
 *   survey does) commits but never answers, so the survey hangs. The store itself is not blocked.
 */
export class FaultyStore implements Store {
  readonly inner = new MemoryStore();
  failMolecules = false;
  /** Transactions failed by `failMolecules`. */
  failed = 0;
  private readonly hung = new Set<string>();

  get schema(): StoreSchema {
    return this.inner.schema;
  }

  hangRig(rig: string): void {
    this.hung.add(rig);
  }

  releaseRig(rig: string): void {
    this.hung.delete(rig);
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const ops: string[] = [];
    const guard = (collection: string, op: string, id?: string) => {
      ops.push(`${op}:${collection}:${id ?? ''}`);
      if (this.failMolecules && collection === 'molecules') {
        this.failed++;
        throw new Error('injected fault: the molecules collection is unavailable');
      }
    };
    const result = await this.inner.transaction((tx) =>
      fn({
        get: <R extends StoredRecord>(c: string, id: string) => {
          guard(c, 'get', id);
          return tx.get<R>(c, id);
        },
        insert: <R extends StoredRecord>(c: string, r: R) => {
          guard(c, 'insert');
          return tx.insert(c, r);
        },
        update: <R extends StoredRecord>(c: string, r: R) => {
          guard(c, 'update');
          return tx.update(c, r);
        },
        delete: (c: string, id: string) => {
          guard(c, 'delete');
          return tx.delete(c, id);
        },
        find: <R extends StoredRecord>(c: string, index: string, q?: IndexQuery) => {
          guard(c, 'find');
          return tx.find<R>(c, index, q);
        },
        count: (c: string, index: string, q?: IndexQuery) => {
          guard(c, 'count');
          return tx.count(c, index, q);
        },
        nextSequence: (name: string) => tx.nextSequence(name),
      }),
    );
    const only = ops.length === 1 ? ops[0] : undefined;
    if (only?.startsWith('get:rigs:') && this.hung.has(only.slice('get:rigs:'.length)))
      return new Promise<T>(() => {});
    return result;
  }

  schemaVersion(): Promise<number> {
    return this.inner.schemaVersion();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * One daemon process's view of a shared store. `sever()` is the process dying: from then on its
 * transactions (and the answers of those in flight) never come back, so nothing the crashed
 * daemon had started carries on. `town.kill()` alone stops the tree, but an in-process promise
 * chain it had started (a session start awaiting the driver, say) would still run to its end.
 */
export class ProcessStore implements Store {
  private dead = false;

  constructor(readonly inner: Store) {}

  get schema(): StoreSchema {
    return this.inner.schema;
  }

  sever(): void {
    this.dead = true;
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.dead) return new Promise<T>(() => {});
    const result = await this.inner.transaction(fn);
    if (this.dead) return new Promise<T>(() => {});
    return result;
  }

  schemaVersion(): Promise<number> {
    return this.inner.schemaVersion();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * One daemon process's handle on a shared driver: like {@link ProcessStore}, `sever()` is the
 * process dying, so neither new calls nor the answers of calls in flight come back to it. The
 * sessions themselves live on in the shared driver, as tmux sessions outlive their daemon.
 */
export class ProcessDriver implements SessionDriver {
  readonly kind: string;
  private dead = false;

  constructor(readonly inner: SessionDriver) {
    this.kind = inner.kind;
  }

  sever(): void {
    this.dead = true;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dead) return new Promise<T>(() => {});
    const result = await fn();
    if (this.dead) return new Promise<T>(() => {});
    return result;
  }

  start(spec: SessionSpec): Promise<SessionStatus> {
    return this.call(() => this.inner.start(spec));
  }
  status(name: string): Promise<SessionStatus> {
    return this.call(() => this.inner.status(name));
  }
  list(): Promise<SessionStatus[]> {
    return this.call(() => this.inner.list());
  }
  nudge(name: string, text: string): Promise<void> {
    return this.call(() => this.inner.nudge(name, text));
  }
  capture(name: string, options?: { lines?: number }): Promise<string[]> {
    return this.call(() => this.inner.capture(name, options));
  }
  stop(name: string, options?: StopOptions): Promise<void> {
    return this.call(() => this.inner.stop(name, options));
  }
}

/** Records the supervision tree's events of a town. */
export function recordSupervision(t: TestTown): SupervisorEvent[] {
  const seen: SupervisorEvent[] = [];
  t.town.supervision.on('*', (e) => seen.push(e));
  return seen;
}

/** Moves simulated time until `promise` settles (an operator request waits on the patrol). */
export async function settleOn<T>(
  t: { clock: SimulatedClock },
  promise: Promise<T>,
  { stepMs = 1_000, withinMs = 600_000 } = {},
): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  watched.catch(() => {});
  for (let waited = 0; !settled && waited <= withinMs; waited += stepMs)
    await t.clock.advance(stepMs);
  if (!settled) throw new Error(`the promise did not settle within ${withinMs} ms`);
  return watched;
}

/**
 * Crashes the daemon (`town.kill()`: the tree stops at once, sessions keep running) and starts a
 * new one on the same store, driver and clock, as systemd would.
 */
export async function restartDaemon(
  t: TestTown,
  options: Omit<TestTownOptions, 'store' | 'driver' | 'clock'> = {},
): Promise<TestTown> {
  t.town.kill();
  // A process store dies with its daemon; the new daemon opens the same records afresh.
  let store = t.store;
  if (store instanceof ProcessStore) {
    store.sever();
    store = new ProcessStore(store.inner);
  }
  return createTestTown({ ...options, store, driver: t.driver, clock: t.clock });
}

/**
 * Moves simulated time in steps until `check` holds; fails after `withinMs` naming `what`.
 * Unlike `t.next`, it also sees what happened before the call (e.g. during a town's start).
 */
export async function until(
  t: { clock: SimulatedClock },
  check: () => boolean | Promise<boolean>,
  { stepMs = 1_000, withinMs = 600_000, what = 'the condition' } = {},
): Promise<void> {
  await t.clock.advance(0);
  for (let waited = 0; !(await check()); waited += stepMs) {
    if (waited >= withinMs) throw new Error(`${what} did not happen within ${withinMs} ms`);
    await t.clock.advance(stepMs);
  }
}

/** The events of one type since index `from` (optionally matching `where`). */
export function eventsOf<T extends TownEvent['type']>(
  t: { events: TownEvent[] },
  type: T,
  from = 0,
): Array<Extract<TownEvent, { type: T }>> {
  return t.events.slice(from).filter((e) => e.type === type) as Array<
    Extract<TownEvent, { type: T }>
  >;
}

/** The new reports a Mayor sink received (one per incident), optionally for one incident prefix. */
export function reportsTo(messages: readonly MayorMessage[], keyPrefix = ''): Report[] {
  return messages.flatMap((m) =>
    m.kind === 'report' && m.report.incidentKey.startsWith(keyPrefix) ? [m.report] : [],
  );
}

/** The running sessions, by name. */
export async function runningSessions(driver: MemoryDriver): Promise<SessionStatus[]> {
  return (await driver.list()).filter((s) => s.state === 'running');
}
