import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StoreError } from '@belfry/core';
import type { TmuxSocket } from '@belfry/driver-tmux';
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
  /**
   * The tmux server the town's daemon last ran its sessions on, as it resolved it (see
   * {@link settleTmuxSocket}); absent until a daemon on the tmux driver has started.
   */
  tmuxSocket?: TmuxSocket;
}

/** The record's file in the state folder. */
export function townRecordPath(config: BelfryConfig): string {
  return join(config.stateDir, 'town.json');
}

/**
 * The town's record in its state folder, or undefined before the town's store was first opened.
 *
 * @throws StoreError `IO` when it cannot be read, `CORRUPT` when it is damaged (saying what to do).
 */
export function readTownRecord(config: BelfryConfig): TownRecord | undefined {
  return readRecord(townRecordPath(config));
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
  const socket = record?.tmuxSocket as Record<string, unknown> | undefined;
  if (
    typeof record?.storeId !== 'string' ||
    typeof record.store !== 'string' ||
    typeof record.createdAt !== 'string' ||
    (socket !== undefined &&
      (typeof socket !== 'object' ||
        socket === null ||
        Object.keys(socket).length !== 1 ||
        (typeof socket.name !== 'string' && typeof socket.path !== 'string')))
  )
    throw new StoreError({
      code: 'CORRUPT',
      message: `the town's record ${path} is damaged (it must be JSON with storeId, store and createdAt, and tmuxSocket as { name } or { path } if there is one); it names the store that belongs to this town: restore it, or remove it to let the store at the config's path be taken as this town's`,
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
      ...record,
      storeId: store.id,
      store: path,
      createdAt: record?.createdAt ?? new Date().toISOString(),
    } satisfies TownRecord);
  return store;
}

/**
 * Records, in the town's record, the tmux server its daemon runs sessions on. The record must
 * exist (the daemon opened the store first, see {@link openTownStore}).
 */
export function recordTmuxSocket(config: BelfryConfig, socket: TmuxSocket): void {
  const recordPath = townRecordPath(config);
  const record = readRecord(recordPath);
  if (!record)
    throw new StoreError({
      code: 'MISSING',
      message: `the town's record ${recordPath} is missing; open the town's store first`,
    });
  writeJsonAtomic(recordPath, { ...record, tmuxSocket: socket } satisfies TownRecord);
}

/**
 * The town's id: the one its store records, or a new one (`tw-` and 24 hex digits) recorded now.
 * Made once, when the town is first set up, and the same ever after (a copy of the store file
 * keeps it). The daemon gives it to the town, which labels every session with it (see
 * `TownOptions.id` in `@belfry/core`).
 *
 * @param store - the town's open store.
 * @returns the town's id.
 * @example
 * ```ts
 * const store = openTownStore(config);
 * const town = createTown({ id: await townIdOf(store), store, driver });
 * ```
 */
export function townIdOf(store: SqliteStore): Promise<string> {
  return store.claimTownId();
}

/** What {@link setUpTown} made or found. */
export interface TownSetUp {
  /** The town's id (see {@link townIdOf}). */
  townId: string;
  /** The store's id and file. */
  storeId: string;
  store: string;
}

/**
 * Sets up the town of a config, as `belfry init` does: opens (on the first call, creates) the
 * town's store and its record in the state folder, and gives the town its id. Calling it again
 * changes nothing and returns the same.
 *
 * @param config - the town's config (its state folder must exist, see `ensureStateDir`).
 * @returns the town's id and store.
 * @throws StoreError as {@link openTownStore} does.
 * @example
 * ```ts
 * const { townId } = await setUpTown(loadConfig('belfry.yaml'));
 * ```
 */
export async function setUpTown(config: BelfryConfig): Promise<TownSetUp> {
  const store = openTownStore(config);
  try {
    return { townId: await townIdOf(store), storeId: store.id, store: store.path };
  } finally {
    await store.close();
  }
}
