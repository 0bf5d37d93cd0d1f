import { AsyncLocalStorage } from 'node:async_hooks';
import { StoreError } from '../errors';
import { toFrozenJson } from './json';
import type { IndexFunction, IndexKey, StoredRecord, StoreSchema } from './Store';

// What every Store implementation needs the same way: record checks, schema lookups with the
// same errors, and transactions that run one at a time and refuse to nest.

/** Ids are printable ASCII without spaces, so they stay readable and sort the same everywhere. */
const ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Checks a record for storing: an id of 1 to 200 printable ASCII characters without spaces, and
 * plain JSON throughout. For store implementations.
 *
 * @returns the record as frozen JSON.
 * @throws StoreError `INVALID_RECORD` saying what is wrong.
 */
export function checkRecord<T extends StoredRecord>(collection: string, record: T): T {
  const id = (record as { id?: unknown })?.id;
  if (typeof id !== 'string' || !ID.test(id)) {
    throw new StoreError({
      code: 'INVALID_RECORD',
      message: `${collection}: a record id must be 1 to 200 printable ASCII characters without spaces; got ${JSON.stringify(id)}`,
    });
  }
  return toFrozenJson(record, `${collection}/${id}`);
}

/**
 * The declared indexes of a collection, or `UNKNOWN_COLLECTION` naming the ones there are. For
 * store implementations.
 */
export function collectionIndexes(
  schema: StoreSchema,
  collection: string,
): Readonly<Record<string, IndexFunction>> {
  const c = schema.collections[collection];
  if (!c || !Object.hasOwn(schema.collections, collection)) {
    throw new StoreError({
      code: 'UNKNOWN_COLLECTION',
      message: `no collection ${JSON.stringify(collection)} in schema ${schema.name}; it has: ${Object.keys(schema.collections).join(', ')}`,
    });
  }
  return c.indexes;
}

/** Checks that `index` is declared on `collection`; `UNKNOWN_COLLECTION` otherwise. */
export function checkIndex(schema: StoreSchema, collection: string, index: string): void {
  const indexes = collectionIndexes(schema, collection);
  if (!Object.hasOwn(indexes, index)) {
    throw new StoreError({
      code: 'UNKNOWN_COLLECTION',
      message: `no index ${JSON.stringify(index)} on ${collection}; it has: ${Object.keys(indexes).join(', ') || 'none'}`,
    });
  }
}

/** The keys a record has in an index (what its index function returns). */
export function indexKeys(fn: IndexFunction, record: StoredRecord): readonly IndexKey[] {
  return (fn as (r: StoredRecord) => readonly IndexKey[])(record);
}

/**
 * Which queue's transaction the current async context is inside, to refuse a nested one. The mark
 * goes dead when its transaction ends: a timer or promise the callback left behind keeps the
 * context, and a transaction it starts later is not nested.
 */
const inTransaction = new AsyncLocalStorage<{ queue: TransactionQueue; active: boolean }>();

/**
 * Runs transactions one at a time, in the order they were asked for; a failed one does not block
 * the next. A transaction started inside another of the same queue is refused (it would wait for
 * itself forever). For store implementations.
 */
export class TransactionQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `job` after every earlier one. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const mark = inTransaction.getStore();
    if (mark?.queue === this && mark.active) {
      return Promise.reject(
        new StoreError({
          code: 'CONFLICT',
          message:
            'a transaction was started inside another on the same store; pass the outer tx down instead',
        }),
      );
    }
    const run = this.tail.then(async () => {
      const own = { queue: this, active: true };
      try {
        return await inTransaction.run(own, job);
      } finally {
        own.active = false;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** A guard for a transaction's tx object: refuses use after the transaction finished. */
export function txGuard(): { check(): void; finish(): void } {
  let active = true;
  return {
    check() {
      if (!active) {
        throw new StoreError({
          code: 'CLOSED',
          message: 'this transaction has already finished; use the tx only inside its callback',
        });
      }
    },
    finish() {
      active = false;
    },
  };
}

/**
 * The `limit` of an index query as a number SQL takes (-1: none). Undefined and Infinity mean no
 * limit; anything else must be a whole number >= 0.
 *
 * @throws StoreError `INVALID_RECORD` for a negative, fractional or NaN limit.
 */
export function queryLimit(limit: number | undefined): number {
  if (limit === undefined || limit === Number.POSITIVE_INFINITY) return -1;
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new StoreError({
      code: 'INVALID_RECORD',
      message: `query.limit: must be a whole number >= 0 or Infinity; got ${String(limit)}`,
    });
  return limit;
}
