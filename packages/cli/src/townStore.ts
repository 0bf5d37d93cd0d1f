import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StoreError } from '@belfry/core';
import { SqliteStore } from '@belfry/store-sqlite';
import type { BelfryConfig } from './config';
import { writeJsonAtomic } from './runtime';

/**
 * What the state folder records about the town's store once it exists: which store (its id)
 * belongs to this town, where it was and when it was made. With it, a store that went missing
 * or was swapped for another is refused instead of being replaced by a new, empty one.
 */
export interface TownRecord {
  storeId: string;
  store: string;
  createdAt: string;
}

/** The record's file in the state folder. */
export function townRecordPath(config: BelfryConfig): string {
  return join(config.stateDir, 'town.json');
}

function readRecord(path: string): TownRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError({
      code: 'IO',
      message: `the town's record ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const record = value as Partial<TownRecord> | undefined;
  if (
    typeof record?.storeId !== 'string' ||
    typeof record.store !== 'string' ||
    typeof record.createdAt !== 'string'
  )
    throw new StoreError({
      code: 'CORRUPT',
      message: `the town's record ${path} is damaged (it must be JSON with storeId, store and createdAt); it names the store that belongs to this town: restore it, or remove it to let the store at the config's path be taken as this town's`,
    });
  return record as TownRecord;
}

/**
 * Opens the town's store the way the daemon and every command do: a store that this town's
 * record says exists is opened as it is (never created anew), and must be that store (the same
 * id); the first open of a town creates the store and writes the record.
 *
 * @throws StoreError `MISSING` when the store the record names is not at the config's path,
 *   `REPLACED` when another store is there; each says what to do. Other StoreErrors as
 *   {@link SqliteStore.open} throws them.
 */
export function openTownStore(config: BelfryConfig, options: { verify?: boolean } = {}) {
  const recordPath = townRecordPath(config);
  const record = readRecord(recordPath);
  const path = config.store.path;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let store: SqliteStore;
  try {
    store = SqliteStore.open({
      path,
      durability: config.store.durability,
      create: record === undefined,
      ...(options.verify === undefined ? {} : { verify: options.verify }),
    });
  } catch (error) {
    if (error instanceof StoreError && error.code === 'MISSING' && record)
      throw new StoreError({
        code: 'MISSING',
        message: `the store ${path} is missing, but this town's store (${record.storeId}, made at ${record.store} on ${record.createdAt}) exists: belfry never makes a new, empty store for a town that has one. Restore the file (with its -wal file) from a backup, point store.path at where it is, or remove ${recordPath} to start an empty town`,
        cause: error,
      });
    throw error;
  }
  if (record && record.storeId !== store.id) {
    const id = store.id;
    void store.close();
    throw new StoreError({
      code: 'REPLACED',
      message: `the store ${path} is another store (${id}), not this town's (${record.storeId}, made at ${record.store} on ${record.createdAt}); refusing to use it. Put this town's store back, or remove ${recordPath} to take the one there as this town's`,
    });
  }
  if (!record || record.store !== path)
    writeJsonAtomic(recordPath, {
      storeId: store.id,
      store: path,
      createdAt: record?.createdAt ?? new Date().toISOString(),
    } satisfies TownRecord);
  return store;
}
