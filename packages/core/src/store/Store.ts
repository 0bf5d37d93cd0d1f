/** A JSON value: what a store keeps. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Every stored record is a JSON object with a string `id`, unique in its collection. */
export interface StoredRecord {
  readonly id: string;
}

/** One part of an index key. Numbers must be safe integers (times, counters, sequence numbers). */
export type KeyPart = string | number | boolean;

/**
 * An index key, compared part by part (a key sorts after its own prefixes). Parts of different
 * kinds sort booleans first, then numbers, then strings; strings by their UTF-8 bytes.
 */
export type IndexKey = readonly KeyPart[];

/**
 * Computes the keys under which a record appears in an index. An empty array leaves the record
 * out (a partial index: "open gates only"); several keys make a multi-valued index ("every bead
 * a convoy tracks"). Must be a pure function of the record.
 */
export type IndexFunction = (record: never) => readonly IndexKey[];

/** A collection's declared indexes. */
export interface CollectionSchema {
  indexes: Readonly<Record<string, IndexFunction>>;
}

/**
 * What a store holds: named collections with their indexes, and a version. A store records the
 * version it was written with and refuses data from a newer one.
 */
export interface StoreSchema {
  /** Names the schema family, e.g. `belfry.town`. */
  name: string;
  /** Increases whenever collections or indexes change. */
  version: number;
  collections: Readonly<Record<string, CollectionSchema>>;
}

/**
 * A range over one index. Keys are compared part by part; `prefix` fixes the leading parts, and
 * `gte`/`lte` bound the parts after it (inclusive, and a shorter bound covers every longer key
 * that starts with it). Results come in key order, ties by record id.
 */
export interface IndexQuery {
  prefix?: IndexKey;
  gte?: IndexKey;
  lte?: IndexKey;
  /** At most this many records. */
  limit?: number;
  /** Largest keys first. */
  reverse?: boolean;
}

/** The operations available inside a transaction. Records come back frozen: copy to change. */
export interface StoreTx {
  /** The record, or undefined. */
  get<T extends StoredRecord>(collection: string, id: string): Promise<T | undefined>;
  /** Adds a record; `DUPLICATE_ID` if its id exists. */
  insert<T extends StoredRecord>(collection: string, record: T): Promise<void>;
  /** Replaces a record; `NOT_FOUND` if its id does not exist. */
  update<T extends StoredRecord>(collection: string, record: T): Promise<void>;
  /** Removes a record; returns whether it existed. */
  delete(collection: string, id: string): Promise<boolean>;
  /** Records in an index range, in key order. */
  find<T extends StoredRecord>(collection: string, index: string, query?: IndexQuery): Promise<T[]>;
  /** How many records an index range holds. */
  count(collection: string, index: string, query?: IndexQuery): Promise<number>;
  /** The next value (1, 2, 3, …) of a named counter; rolled back with the transaction. */
  nextSequence(name: string): Promise<number>;
}

/**
 * Where the town's records live. The SPI that store implementations (`MemoryStore`, the SQLite
 * store) provide: a transactional document store with declared indexes. The domain rules live
 * above it, in the town model, so every store enforces the same ones.
 *
 * Transactions are serializable: one runs at a time, and it applies all its writes or none.
 * Implementations must pass `runStoreConformance` from `@belfry/testing`.
 */
export interface Store {
  /** The schema the store was opened with. */
  readonly schema: StoreSchema;
  /**
   * Runs `fn` in a transaction: commits when it resolves, rolls back every write when it throws
   * or rejects (and rethrows). Transactions never overlap.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** The schema version recorded in the stored data. */
  schemaVersion(): Promise<number>;
  /** Releases the store; later calls fail with `CLOSED`. */
  close(): Promise<void>;
}
