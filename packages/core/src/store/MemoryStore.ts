import { StoreError } from '../errors';
import { SortedList } from '../internal/SortedList';
import { townSchema } from '../model/schema';
import { encodeEntry, entryId, queryBounds } from './keys';
import type { IndexFunction, IndexQuery, Store, StoredRecord, StoreSchema, StoreTx } from './Store';
import {
  checkIndex,
  checkRecord,
  collectionIndexes,
  indexKeys,
  queryLimit,
  TransactionQueue,
  txGuard,
} from './support';

interface Collection {
  records: Map<string, StoredRecord>;
  indexes: Map<string, { fn: IndexFunction; entries: SortedList }>;
}

type Undo =
  | { kind: 'record'; collection: string; id: string; before: StoredRecord | undefined }
  | { kind: 'sequence'; name: string; before: number | undefined };

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The schema to hold.
   * @defaultValue the town schema (`townSchema`)
   */
  schema?: StoreSchema;
}

/**
 * A store in memory: the town's records for tests, embedded trees and programs that need no
 * durability. Transactions run one at a time and roll back through an undo log; indexes are
 * sorted lists, so range queries cost what they return.
 *
 * @example
 * ```ts
 * const model = createTownModel({ store: new MemoryStore() });
 * await model.rigs.create({ name: 'api' });
 * ```
 */
export class MemoryStore implements Store {
  readonly schema: StoreSchema;
  private readonly collections = new Map<string, Collection>();
  private readonly sequences = new Map<string, number>();
  private readonly queue = new TransactionQueue();
  private closed = false;

  /** @param options - see {@link MemoryStoreOptions}. */
  constructor(options: MemoryStoreOptions = {}) {
    this.schema = options.schema ?? townSchema;
    for (const [name, def] of Object.entries(this.schema.collections)) {
      const indexes = new Map<string, { fn: IndexFunction; entries: SortedList }>();
      for (const [index, fn] of Object.entries(def.indexes))
        indexes.set(index, { fn, entries: new SortedList() });
      this.collections.set(name, { records: new Map(), indexes });
    }
  }

  async schemaVersion(): Promise<number> {
    this.assertOpen();
    return this.schema.version;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.queue.run(() => this.run(fn));
  }

  private async run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.assertOpen();
    const undo: Undo[] = [];
    const { check: guard, finish } = txGuard();
    const tx: StoreTx = {
      get: async <R extends StoredRecord>(collection: string, id: string) => {
        guard();
        return this.collection(collection).records.get(id) as R | undefined;
      },
      insert: async (collection, record) => {
        guard();
        const c = this.collection(collection);
        const frozen = this.freeze(collection, record);
        if (c.records.has(frozen.id)) {
          throw new StoreError({
            code: 'DUPLICATE_ID',
            message: `${collection}/${frozen.id} already exists`,
          });
        }
        undo.push({ kind: 'record', collection, id: frozen.id, before: undefined });
        this.write(c, frozen.id, frozen);
      },
      update: async (collection, record) => {
        guard();
        const c = this.collection(collection);
        const frozen = this.freeze(collection, record);
        const before = c.records.get(frozen.id);
        if (!before) {
          throw new StoreError({
            code: 'NOT_FOUND',
            message: `${collection}/${frozen.id} does not exist`,
          });
        }
        undo.push({ kind: 'record', collection, id: frozen.id, before });
        this.write(c, frozen.id, frozen);
      },
      delete: async (collection, id) => {
        guard();
        const c = this.collection(collection);
        const before = c.records.get(id);
        if (!before) return false;
        undo.push({ kind: 'record', collection, id, before });
        this.write(c, id, undefined);
        return true;
      },
      find: async <R extends StoredRecord>(
        collection: string,
        index: string,
        query?: IndexQuery,
      ) => {
        guard();
        const c = this.collection(collection);
        const entries = this.index(c, collection, index).entries;
        const { from, to } = queryBounds(query);
        const out: R[] = [];
        for (const entry of entries.range(from, to, query?.reverse === true, limitOf(query))) {
          out.push(c.records.get(entryId(entry)) as R);
        }
        return out;
      },
      count: async (collection, index, query) => {
        guard();
        const c = this.collection(collection);
        const entries = this.index(c, collection, index).entries;
        if (
          !query ||
          (query.prefix === undefined && query.gte === undefined && query.lte === undefined)
        ) {
          return Math.min(entries.size, limitOf(query) ?? Number.POSITIVE_INFINITY);
        }
        const { from, to } = queryBounds(query);
        let n = 0;
        for (const _ of entries.range(from, to, false, limitOf(query))) n++;
        return n;
      },
      nextSequence: async (name) => {
        guard();
        const before = this.sequences.get(name);
        undo.push({ kind: 'sequence', name, before });
        const next = (before ?? 0) + 1;
        this.sequences.set(name, next);
        return next;
      },
    };
    try {
      const result = await fn(tx);
      finish();
      return result;
    } catch (error) {
      finish();
      this.rollback(undo);
      throw error;
    }
  }

  private rollback(undo: Undo[]): void {
    for (let i = undo.length - 1; i >= 0; i--) {
      const u = undo[i] as Undo;
      if (u.kind === 'sequence') {
        if (u.before === undefined) this.sequences.delete(u.name);
        else this.sequences.set(u.name, u.before);
      } else {
        this.write(this.collection(u.collection), u.id, u.before);
      }
    }
  }

  /**
   * Replaces (or removes, with `next` undefined) a record and keeps every index in step. Every
   * key is computed before anything changes, so an index function that throws leaves no trace.
   */
  private write(c: Collection, id: string, next: StoredRecord | undefined): void {
    const before = c.records.get(id);
    const changes: Array<{ entries: SortedList; remove: string[]; add: string[] }> = [];
    for (const { fn, entries } of c.indexes.values()) {
      changes.push({
        entries,
        remove: before ? indexKeys(fn, before).map((key) => encodeEntry(key, id)) : [],
        add: next ? indexKeys(fn, next).map((key) => encodeEntry(key, id)) : [],
      });
    }
    for (const { entries, remove, add } of changes) {
      for (const entry of remove) entries.delete(entry);
      for (const entry of add) entries.add(entry);
    }
    if (next) c.records.set(id, next);
    else c.records.delete(id);
  }

  private freeze<T extends StoredRecord>(collection: string, record: T): T {
    return checkRecord(collection, record);
  }

  private collection(name: string): Collection {
    collectionIndexes(this.schema, name);
    return this.collections.get(name) as Collection;
  }

  private index(c: Collection, collection: string, name: string) {
    checkIndex(this.schema, collection, name);
    return c.indexes.get(name) as { fn: IndexFunction; entries: SortedList };
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError({ code: 'CLOSED', message: 'the store is closed' });
  }
}

/** A query's limit, checked (undefined: none). */
function limitOf(query: IndexQuery | undefined): number | undefined {
  const n = queryLimit(query?.limit);
  return n < 0 ? undefined : n;
}
