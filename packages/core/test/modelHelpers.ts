import {
  ConfigError,
  type ConfigErrorCode,
  createTownModel,
  MemoryStore,
  type Store,
  type StoredRecord,
  StoreError,
  type StoreErrorCode,
  type StoreSchema,
  type StoreTx,
  type TownModel,
  type TownModelOptions,
} from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import { expect } from 'vitest';

/** Where every test clock starts, so stamped times are easy to read (`T0 + 10`). */
export const T0 = 1_000_000;

/** Everything a store holds, as far as the model ever wrote it: records and sequence values. */
export interface StoreSnapshot {
  records: Record<string, Record<string, unknown>>;
  sequences: Record<string, number>;
}

class Peek extends Error {
  constructor(readonly values: Record<string, number>) {
    super('peek');
  }
}

/**
 * A store that passes everything to another one and remembers every id and sequence name ever
 * written, so a test can read back the whole store through the public Store API (some
 * collections, such as executed warrants or respawn counts, have no index covering every record).
 */
export class TrackingStore implements Store {
  readonly schema: StoreSchema;
  private readonly ids = new Map<string, Set<string>>();
  private readonly sequenceNames = new Set<string>();

  constructor(readonly inner: Store = new MemoryStore()) {
    this.schema = inner.schema;
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.inner.transaction((tx) => fn(this.track(tx)));
  }

  schemaVersion(): Promise<number> {
    return this.inner.schemaVersion();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Every record and sequence value, read in one transaction (that writes nothing). */
  async snapshot(): Promise<StoreSnapshot> {
    const records: Record<string, Record<string, unknown>> = {};
    await this.inner.transaction(async (tx) => {
      for (const [collection, ids] of [...this.ids].sort(([a], [b]) => a.localeCompare(b))) {
        const out: Record<string, unknown> = {};
        for (const id of [...ids].sort()) {
          const record = await tx.get(collection, id);
          if (record !== undefined) out[id] = record;
        }
        // A collection only written by rolled-back transactions holds nothing.
        if (Object.keys(out).length > 0) records[collection] = out;
      }
    });
    // Reading a sequence advances it, so read them in a transaction that is then rolled back.
    let sequences: Record<string, number> = {};
    try {
      await this.inner.transaction(async (tx) => {
        const values: Record<string, number> = {};
        for (const name of [...this.sequenceNames].sort()) {
          const current = (await tx.nextSequence(name)) - 1;
          if (current > 0) values[name] = current;
        }
        throw new Peek(values);
      });
    } catch (error) {
      if (!(error instanceof Peek)) throw error;
      sequences = error.values;
    }
    return { records, sequences };
  }

  private remember(collection: string, record: StoredRecord): void {
    const id = (record as { id?: unknown })?.id;
    if (typeof id !== 'string') return;
    let ids = this.ids.get(collection);
    if (!ids) {
      ids = new Set();
      this.ids.set(collection, ids);
    }
    ids.add(id);
  }

  private track(tx: StoreTx): StoreTx {
    return {
      get: (collection, id) => tx.get(collection, id),
      insert: (collection, record) => {
        this.remember(collection, record);
        return tx.insert(collection, record);
      },
      update: (collection, record) => {
        this.remember(collection, record);
        return tx.update(collection, record);
      },
      delete: (collection, id) => tx.delete(collection, id),
      find: (collection, index, query) => tx.find(collection, index, query),
      count: (collection, index, query) => tx.count(collection, index, query),
      nextSequence: (name) => {
        this.sequenceNames.add(name);
        return tx.nextSequence(name);
      },
    };
  }
}

/** A model on a fresh tracking memory store, with a simulated clock at {@link T0}. */
export interface TestTown {
  model: TownModel;
  clock: SimulatedClock;
  store: TrackingStore;
  snapshot(): Promise<StoreSnapshot>;
}

/** Options of {@link makeTown}: the model's options, with store and clock optional. */
export type TestTownOptions = Omit<TownModelOptions, 'store' | 'clock'> & {
  store?: TrackingStore;
  clock?: SimulatedClock;
};

export function makeTown(options: TestTownOptions = {}): TestTown {
  const store = options.store ?? new TrackingStore();
  const clock = options.clock ?? new SimulatedClock(T0);
  const model = createTownModel({ ...options, store, clock });
  return { model, clock, store, snapshot: () => store.snapshot() };
}

/**
 * What an operation failed with. Takes a function, because argument checks may throw before a
 * promise exists; both kinds of failure are returned.
 */
export async function failure(operation: () => unknown): Promise<unknown> {
  try {
    await operation();
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail');
}

/** Asserts the operation fails with a StoreError of `code` (and a message matching `message`). */
export async function expectStoreError(
  operation: () => unknown,
  code: StoreErrorCode,
  message?: string | RegExp,
): Promise<StoreError> {
  const error = await failure(operation);
  expect(error).toBeInstanceOf(StoreError);
  const e = error as StoreError;
  expect(e.code).toBe(code);
  if (message !== undefined) expect(e.message).toMatch(message);
  return e;
}

/** Asserts the operation fails with a ConfigError at `path` (and a message matching `message`). */
export async function expectConfigError(
  operation: () => unknown,
  path: string,
  options: { code?: ConfigErrorCode; message?: string | RegExp } = {},
): Promise<ConfigError> {
  const error = await failure(operation);
  expect(error).toBeInstanceOf(ConfigError);
  const e = error as ConfigError;
  expect({ code: e.code, path: e.path }).toEqual({
    code: options.code ?? 'INVALID_OPTION',
    path,
  });
  if (options.message !== undefined) expect(e.message).toMatch(options.message);
  return e;
}

/** Asserts a refused operation fails with a StoreError of `code` and leaves the store as it was. */
export async function expectRefused(
  town: TestTown,
  operation: () => unknown,
  code: StoreErrorCode,
  message?: string | RegExp,
): Promise<StoreError> {
  const before = await town.snapshot();
  const error = await expectStoreError(operation, code, message);
  expect(await town.snapshot()).toEqual(before);
  return error;
}

/** Asserts an operation fails with a ConfigError at `path` and leaves the store as it was. */
export async function expectInvalid(
  town: TestTown,
  operation: () => unknown,
  path: string,
  options: { code?: ConfigErrorCode; message?: string | RegExp } = {},
): Promise<ConfigError> {
  const before = await town.snapshot();
  const error = await expectConfigError(operation, path, options);
  expect(await town.snapshot()).toEqual(before);
  return error;
}

/** Asserts an operation succeeds and changes nothing in the store. */
export async function expectNoWrite<T>(town: TestTown, operation: () => Promise<T>): Promise<T> {
  const before = await town.snapshot();
  const result = await operation();
  expect(await town.snapshot()).toEqual(before);
  return result;
}

/** The ids of records, in the order given. */
export function ids(records: readonly { id: string }[]): string[] {
  return records.map((r) => r.id);
}

/** A bead id as the model generates it: the prefix, a dash, ten characters of [0-9a-z]. */
export function generatedId(prefix: string): RegExp {
  return new RegExp(`^${prefix}-[0-9a-z]{10}$`);
}
