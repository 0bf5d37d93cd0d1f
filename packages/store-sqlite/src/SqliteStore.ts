import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { check, checkTownId } from '@belfry/core';
import { processAlive } from '@belfry/core/driver';
import {
  checkIndex,
  checkRecord,
  collectionIndexes,
  encodeEntry,
  type IndexQuery,
  indexKeys,
  queryBounds,
  queryLimit,
  type Store,
  type StoredRecord,
  StoreError,
  type StoreSchema,
  type StoreTx,
  TransactionQueue,
  townSchema,
  txGuard,
} from '@belfry/core/store';
import Database from 'better-sqlite3';

/**
 * How hard each commit is pushed to the disk.
 * - `full`: SQLite's `synchronous=FULL` in WAL mode: a committed transaction survives a process
 *   kill and a power loss (the WAL is fsynced at every commit).
 * - `normal`: `synchronous=NORMAL`: a committed transaction survives a process kill; after a
 *   power loss or an OS crash the last transactions before it may be lost (never half of one).
 */
export type Durability = 'full' | 'normal';

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /**
   * The database file. Created whole with mode 0600 when missing (and `create` allows it): it is
   * made under another name and linked into place, so the path never holds a half-made store;
   * its folder must exist.
   */
  path: string;
  /**
   * Whether a missing file is created. With `false` a missing file is a `MISSING` StoreError: the
   * caller knows a store exists and must not be handed a new, empty one. @defaultValue true
   */
  create?: boolean;
  /** @defaultValue the town schema */
  schema?: StoreSchema;
  /** @defaultValue `'full'` */
  durability?: Durability;
  /**
   * How long a transaction waits for another process's write lock before failing with
   * `LOCKED`. @defaultValue 5_000
   */
  busyTimeoutMs?: number;
  /**
   * Whether opening runs SQLite's `quick_check` (it reads the whole file once; a damaged file
   * fails at open, not in the middle of a patrol). @defaultValue true
   */
  verify?: boolean;
}

/** The storage layout (tables) this code writes; `user_version` records it in the file. */
const LAYOUT = 1;
/** Each step takes the file from layout `index` to `index + 1`; they run in one transaction. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE belfry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
   CREATE TABLE belfry_records (
     collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
     PRIMARY KEY (collection, id)) STRICT, WITHOUT ROWID;
   CREATE TABLE belfry_entries (
     collection TEXT NOT NULL, idx TEXT NOT NULL, entry TEXT NOT NULL, id TEXT NOT NULL,
     PRIMARY KEY (collection, idx, entry),
     FOREIGN KEY (collection, id) REFERENCES belfry_records (collection, id) ON DELETE CASCADE
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX belfry_entries_by_record ON belfry_entries (collection, id);
   CREATE TABLE belfry_sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;`,
];
const SQLITE_HEADER = 'SQLite format 3\0';
/** An index range in entry order, each entry's record joined. */
const RANGE = (order: 'ASC' | 'DESC') =>
  `SELECT r.id AS id, r.body AS body FROM belfry_entries e
   JOIN belfry_records r ON r.collection = e.collection AND r.id = e.id
   WHERE e.collection = ? AND e.idx = ? AND e.entry >= ? AND e.entry <= ?
   ORDER BY e.entry ${order} LIMIT ?`;

/** A SQLite error's code (`SQLITE_BUSY`, …), if it is one. */
function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/**
 * A durable {@link Store} in one SQLite file (better-sqlite3), in WAL mode with foreign keys on.
 * Each Store transaction is one SQLite transaction (`BEGIN IMMEDIATE`, so two processes never
 * interleave writes); records are JSON, index entries rows of their own, so a range query reads
 * what it returns. The file records its storage layout (`user_version`, migrated forward on
 * open) and the schema it holds (name and version); a file written by a newer schema, a damaged
 * file, a file that is not a belfry store, or one locked by another process is a `StoreError`
 * naming the file, and it is never recreated or overwritten.
 *
 * What survives what: with `durability: 'full'` (the default) every committed transaction survives
 * a process kill and a power loss; with `'normal'`, a process kill. A transaction cut off by a
 * kill leaves nothing behind.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@belfry/store-sqlite';
 *
 * const store = SqliteStore.open({ path: '.belfry/town.db' });
 * const town = createTown({ driver, store, rigs: ['api'] });
 * ```
 */
export class SqliteStore implements Store {
  readonly schema: StoreSchema;
  /** The database file. */
  readonly path: string;
  /**
   * The store's identity: a random id recorded in the file when it was made (or, for a file made
   * before ids were recorded, when it was first opened). A copy of the file has the same id; a
   * new store never does.
   */
  readonly id: string;
  /** The file this store has open (device and inode), to tell when the path names another. */
  private readonly file: { dev: number; ino: number };
  private readonly db: Database.Database;
  private readonly queue = new TransactionQueue();
  private closed = false;
  private readonly sql: {
    get: Database.Statement<[string, string], { body: string }>;
    exists: Database.Statement<[string, string], { one: number }>;
    insert: Database.Statement<[string, string, string]>;
    update: Database.Statement<[string, string, string]>;
    delete: Database.Statement<[string, string]>;
    addEntry: Database.Statement<[string, string, string, string]>;
    dropEntries: Database.Statement<[string, string]>;
    next: Database.Statement<[string], { value: number }>;
    count: Database.Statement<[string, string, string, string, number], { n: number }>;
    range: Database.Statement<
      [string, string, string, string, number],
      { id: string; body: string }
    >;
    rangeDesc: Database.Statement<
      [string, string, string, string, number],
      { id: string; body: string }
    >;
  };

  private constructor(db: Database.Database, path: string, schema: StoreSchema) {
    this.db = db;
    this.path = path;
    this.schema = schema;
    this.id = adopt(db, path, schema);
    const st = statSync(path);
    this.file = { dev: st.dev, ino: st.ino };
    this.sql = {
      get: db.prepare('SELECT body FROM belfry_records WHERE collection = ? AND id = ?'),
      exists: db.prepare('SELECT 1 AS one FROM belfry_records WHERE collection = ? AND id = ?'),
      insert: db.prepare('INSERT INTO belfry_records (collection, id, body) VALUES (?, ?, ?)'),
      update: db.prepare('UPDATE belfry_records SET body = ? WHERE collection = ? AND id = ?'),
      delete: db.prepare('DELETE FROM belfry_records WHERE collection = ? AND id = ?'),
      addEntry: db.prepare(
        'INSERT OR IGNORE INTO belfry_entries (collection, idx, entry, id) VALUES (?, ?, ?, ?)',
      ),
      dropEntries: db.prepare('DELETE FROM belfry_entries WHERE collection = ? AND id = ?'),
      next: db.prepare(
        `INSERT INTO belfry_sequences (name, value) VALUES (?, 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`,
      ),
      count: db.prepare(
        `SELECT count(*) AS n FROM (SELECT 1 FROM belfry_entries
         WHERE collection = ? AND idx = ? AND entry >= ? AND entry <= ? LIMIT ?)`,
      ),
      range: db.prepare(RANGE('ASC')),
      rangeDesc: db.prepare(RANGE('DESC')),
    };
  }

  /**
   * Opens (or creates) the store in `options.path`.
   *
   * @throws StoreError `CORRUPT` (damaged, empty, or not a belfry store), `SCHEMA_TOO_NEW`,
   * `LOCKED`, `MISSING` (no file, and `create: false`), `IO` (cannot be opened or written);
   * ConfigError for bad options.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    const o = check.object(options, 'options');
    check.keys(o, ['path', 'schema', 'durability', 'busyTimeoutMs', 'verify', 'create'], 'options');
    if (typeof o.path !== 'string' || o.path === '' || o.path === ':memory:')
      check.fail(
        'INVALID_OPTION',
        'options.path',
        `must be a file path; got ${check.describe(o.path)}`,
      );
    const path = o.path;
    const schema = (o.schema as StoreSchema | undefined) ?? townSchema;
    const durability = check.oneOf(
      o.durability,
      ['full', 'normal'] as const,
      'options.durability',
      'full',
    );
    const busyTimeoutMs = check.number(o.busyTimeoutMs, 'options.busyTimeoutMs', 5_000, {
      integer: true,
      min: 0,
    });
    for (const key of ['verify', 'create'] as const)
      if (o[key] !== undefined && typeof o[key] !== 'boolean')
        check.fail(
          'INVALID_OPTION',
          `options.${key}`,
          `must be a boolean; got ${check.describe(o[key])}`,
        );

    if (!existsSync(path)) {
      if (o.create === false)
        throw new StoreError({
          code: 'MISSING',
          message: `${path} does not exist, and this store was not to be created`,
        });
      createWhole(path, schema);
    }
    checkHeader(path);
    checkWritable(path);
    // Opening may meet another process opening (or migrating) the same file: some of SQLite's
    // lock waits are not retried by its busy handler (switching to WAL, a lock upgrade), so a
    // LOCKED open is tried again until the busy timeout is spent.
    for (const deadline = Date.now() + busyTimeoutMs; ; ) {
      try {
        return SqliteStore.openFile(path, schema, durability, busyTimeoutMs, o.verify !== false);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'LOCKED') || Date.now() >= deadline)
          throw error;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10 + Math.random() * 40);
      }
    }
  }

  private static openFile(
    path: string,
    schema: StoreSchema,
    durability: Durability,
    busyTimeoutMs: number,
    verify: boolean,
  ): SqliteStore {
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: true, timeout: busyTimeoutMs });
    } catch (error) {
      throw storeError(error, path, 'open');
    }
    try {
      // Read before anything is written: a foreign database must be left exactly as it is.
      const objects = db
        .prepare("SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
        .all() as Array<{ type: string; name: string }>;
      const tables = objects.filter((o) => o.type === 'table').map((o) => o.name);
      const foreign = objects.filter((o) => !o.name.startsWith('belfry_'));
      const layout = db.pragma('user_version', { simple: true }) as number;
      const ours = tables.includes('belfry_meta');
      if (foreign.length > 0 || (tables.length > 0 && !ours))
        throw new StoreError({
          code: 'CORRUPT',
          message: `${path} is an SQLite database but not a belfry store (it holds ${(foreign.length >
          0
            ? foreign
            : objects
          )
            .slice(0, 8)
            .map((o) => `${o.type} ${o.name}`)
            .join(', ')}); it was left untouched`,
        });
      if (layout > MIGRATIONS.length)
        throw new StoreError({
          code: 'SCHEMA_TOO_NEW',
          message: `${path} has storage layout ${layout}, written by a newer @belfry/store-sqlite (this one knows up to ${LAYOUT}); upgrade it`,
        });
      if (verify && tables.length > 0) {
        const result = db.pragma('quick_check', { simple: true });
        if (result !== 'ok')
          throw new StoreError({
            code: 'CORRUPT',
            message: `${path} is damaged: SQLite's quick_check says ${String(result).slice(0, 200)}`,
          });
      }
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal')
        throw new StoreError({
          code: 'IO',
          message: `${path}: SQLite could not switch to WAL mode (it says ${String(mode)}); is the folder on a file system that supports it?`,
        });
      db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      migrate(db, layout);
      return new SqliteStore(db, path, schema);
    } catch (error) {
      db.close();
      throw storeError(error, path, 'open');
    }
  }

  /**
   * Checks that the path still names the file this store has open.
   *
   * @throws StoreError `REPLACED` when the file was removed, moved away or replaced by another
   *   (writing on would go to a file nobody will read again).
   */
  verifyFile(): void {
    this.assertOpen();
    let st: { dev: number; ino: number };
    try {
      st = statSync(this.path);
    } catch (error) {
      throw new StoreError({
        code: 'REPLACED',
        message: `${this.path} was removed while it was open (${(error as NodeJS.ErrnoException).code ?? String(error)}); what is written from now on would be lost`,
        cause: error,
      });
    }
    if (st.dev !== this.file.dev || st.ino !== this.file.ino)
      throw new StoreError({
        code: 'REPLACED',
        message: `${this.path} was replaced by another file while it was open (inode ${this.file.ino} became ${st.ino}); what is written from now on would go to a file nobody reads`,
      });
  }

  /**
   * The id of the town whose records the store holds, as {@link SqliteStore.claimTownId}
   * recorded it, or undefined while none is. The store keeps it beside its own id: a copy of the
   * file has the same.
   *
   * @returns the town's id, or undefined.
   * @throws StoreError `CLOSED` after close.
   * @example
   * ```ts
   * const id = await store.townId(); // 'tw-6c0f…' or undefined
   * ```
   */
  townId(): Promise<string | undefined> {
    return this.queue.run(async () => {
      this.assertOpen();
      return readMeta(this.db, 'town.id');
    });
  }

  /**
   * Gives the town whose records the store holds its id, once: the first call records `id`
   * (default a new random `tw-` and 24 hex digits); every later call, from this process or
   * another, returns the recorded one. So `belfry init` and a daemon starting at the same moment
   * agree on one id.
   *
   * @param id - the id to record when none is (1 to 64 letters, digits, `_` or `-`, starting
   *   with a letter or digit). @defaultValue a new random `tw-…`
   * @returns the town's id, as recorded.
   * @throws ConfigError `INVALID_OPTION` for a bad `id`; StoreError `CLOSED`, or as a write
   *   fails (`LOCKED`, `IO`).
   * @example
   * ```ts
   * const townId = await store.claimTownId();
   * const town = createTown({ id: townId, store, driver });
   * ```
   */
  async claimTownId(id: string = `tw-${randomBytes(12).toString('hex')}`): Promise<string> {
    const wanted = checkTownId(id, 'id');
    return this.queue.run(async () => {
      this.assertOpen();
      const known = readMeta(this.db, 'town.id');
      if (known !== undefined) return known;
      try {
        return this.db
          .transaction(() => {
            this.db
              .prepare("INSERT OR IGNORE INTO belfry_meta (key, value) VALUES ('town.id', ?)")
              .run(wanted);
            return readMeta(this.db, 'town.id') as string;
          })
          .immediate();
      } catch (error) {
        throw storeError(error, this.path, "record the town's id");
      }
    });
  }

  async schemaVersion(): Promise<number> {
    this.assertOpen();
    const row = this.db
      .prepare("SELECT value FROM belfry_meta WHERE key = 'schema.version'")
      .get() as { value: string } | undefined;
    return Number(row?.value);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Wait for the transaction under way, then close (which checkpoints the WAL).
    await this.queue.run(async () => {
      this.closed = true;
      this.db.close();
    });
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.queue.run(() => this.run(fn));
  }

  private async run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      throw storeError(error, this.path, 'begin a transaction');
    }
    const { check: guard, finish } = txGuard();
    const tx: StoreTx = {
      get: async <R extends StoredRecord>(collection: string, id: string) => {
        guard();
        collectionIndexes(this.schema, collection);
        const row = this.sql.get.get(collection, id);
        return row ? (this.parse(collection, id, row.body) as R) : undefined;
      },
      insert: async (collection, record) => {
        guard();
        collectionIndexes(this.schema, collection);
        const frozen = checkRecord(collection, record);
        if (this.sql.exists.get(collection, frozen.id))
          throw new StoreError({
            code: 'DUPLICATE_ID',
            message: `${collection}/${frozen.id} already exists`,
          });
        const keys = this.entriesOf(collection, frozen);
        this.sql.insert.run(collection, frozen.id, JSON.stringify(frozen));
        for (const [idx, entry] of keys) this.sql.addEntry.run(collection, idx, entry, frozen.id);
      },
      update: async (collection, record) => {
        guard();
        collectionIndexes(this.schema, collection);
        const frozen = checkRecord(collection, record);
        if (!this.sql.exists.get(collection, frozen.id))
          throw new StoreError({
            code: 'NOT_FOUND',
            message: `${collection}/${frozen.id} does not exist`,
          });
        const keys = this.entriesOf(collection, frozen);
        this.sql.update.run(JSON.stringify(frozen), collection, frozen.id);
        this.sql.dropEntries.run(collection, frozen.id);
        for (const [idx, entry] of keys) this.sql.addEntry.run(collection, idx, entry, frozen.id);
      },
      delete: async (collection, id) => {
        guard();
        collectionIndexes(this.schema, collection);
        return this.sql.delete.run(collection, id).changes > 0;
      },
      find: async <R extends StoredRecord>(
        collection: string,
        index: string,
        query?: IndexQuery,
      ) => {
        guard();
        checkIndex(this.schema, collection, index);
        return this.range(collection, index, query).map(
          (row) => this.parse(collection, row.id, row.body) as R,
        );
      },
      count: async (collection, index, query) => {
        guard();
        checkIndex(this.schema, collection, index);
        const { from, to } = queryBounds(query);
        return (
          this.sql.count.get(collection, index, from, to, queryLimit(query?.limit)) as { n: number }
        ).n;
      },
      nextSequence: async (name) => {
        guard();
        return (this.sql.next.get(name) as { value: number }).value;
      },
    };
    // After any SQLite error inside the transaction (a full disk, say) it cannot be trusted:
    // SQLite may have rolled all of it back already, so nothing more is done in it, and it fails
    // as a whole even if the callback caught the error.
    let broken: StoreError | undefined;
    const safe = Object.fromEntries(
      Object.entries(tx).map(([name, op]) => [
        name,
        async (...args: unknown[]) => {
          if (broken) throw broken;
          try {
            return await (op as (...a: unknown[]) => Promise<unknown>)(...args);
          } catch (error) {
            if (!sqliteCode(error)) throw error;
            broken = storeError(error, this.path, `${name} in a transaction`);
            throw broken;
          }
        },
      ]),
    ) as unknown as StoreTx;
    try {
      const result = await fn(safe);
      finish();
      if (broken) throw broken;
      if (!this.db.inTransaction)
        throw new StoreError({
          code: 'IO',
          message: `${this.path}: SQLite rolled the transaction back; nothing of it was written`,
        });
      try {
        this.db.exec('COMMIT');
      } catch (error) {
        throw storeError(error, this.path, 'commit');
      }
      return result;
    } catch (error) {
      finish();
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      // The caller's own errors (a domain rule) pass through; SQLite's say which file.
      throw sqliteCode(error) ? storeError(error, this.path, 'write') : error;
    }
  }

  private range(collection: string, index: string, query?: IndexQuery) {
    const { from, to } = queryBounds(query);
    const statement = query?.reverse ? this.sql.rangeDesc : this.sql.range;
    return statement.all(collection, index, from, to, queryLimit(query?.limit));
  }

  /** Every (index, entry) of a record, computed before anything is written. */
  private entriesOf(collection: string, record: StoredRecord): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [idx, fn] of Object.entries(collectionIndexes(this.schema, collection)))
      for (const key of indexKeys(fn, record)) out.push([idx, encodeEntry(key, record.id)]);
    return out;
  }

  private parse(collection: string, id: string, body: string): StoredRecord {
    try {
      return deepFreeze(JSON.parse(body)) as StoredRecord;
    } catch (error) {
      throw new StoreError({
        code: 'CORRUPT',
        message: `${this.path}: record ${collection}/${id} is not valid JSON; the file is damaged`,
        cause: error,
      });
    }
  }

  private assertOpen(): void {
    if (this.closed)
      throw new StoreError({ code: 'CLOSED', message: `the store ${this.path} is closed` });
  }
}

/** One value of the store's own records (schema, identity). */
function readMeta(db: Database.Database, key: string): string | undefined {
  return (
    db.prepare('SELECT value FROM belfry_meta WHERE key = ?').get(key) as
      | { value: string }
      | undefined
  )?.value;
}

function setMeta(db: Database.Database, key: string, value: string): void {
  db.prepare(
    'INSERT INTO belfry_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  ).run(key, value);
}

/**
 * Records the schema and an identity in a new file, or checks the ones recorded: another schema
 * is refused, a newer version too, and an older version has its index entries rebuilt (indexes
 * are functions of the records, so that is the whole migration). Returns the store's id.
 */
function adopt(db: Database.Database, path: string, schema: StoreSchema): string {
  // Most opens only read: the write lock is taken only when something must be written.
  const id = readMeta(db, 'store.id');
  if (
    id !== undefined &&
    readMeta(db, 'schema.name') === schema.name &&
    readMeta(db, 'schema.version') === String(schema.version)
  )
    return id;
  return db
    .transaction(() => {
      const name = readMeta(db, 'schema.name');
      const version = Number(readMeta(db, 'schema.version') ?? Number.NaN);
      const known = readMeta(db, 'store.id');
      const storeId = known ?? `st-${randomBytes(12).toString('hex')}`;
      if (known === undefined) setMeta(db, 'store.id', storeId);
      if (name === undefined) {
        setMeta(db, 'schema.name', schema.name);
        setMeta(db, 'schema.version', String(schema.version));
        setMeta(db, 'format', 'belfry-store');
        return storeId;
      }
      if (name !== schema.name)
        throw new StoreError({
          code: 'CORRUPT',
          message: `${path} holds a store of schema ${JSON.stringify(name)}, not ${JSON.stringify(schema.name)}`,
        });
      if (!Number.isSafeInteger(version))
        throw new StoreError({
          code: 'CORRUPT',
          message: `${path}: its recorded schema version is not a number`,
        });
      if (version > schema.version)
        throw new StoreError({
          code: 'SCHEMA_TOO_NEW',
          message: `${path} was written with ${name} version ${version}; this code knows up to version ${schema.version}; upgrade belfry`,
        });
      if (version < schema.version) {
        reindex(db, schema);
        setMeta(db, 'schema.version', String(schema.version));
      }
      return storeId;
    })
    .immediate();
}

/** Rebuilds every index entry from the records (after the schema's indexes changed). */
function reindex(db: Database.Database, schema: StoreSchema): void {
  db.exec('DELETE FROM belfry_entries');
  const rows = [
    ...(db
      .prepare('SELECT collection, id, body FROM belfry_records')
      .iterate() as IterableIterator<{
      collection: string;
      id: string;
      body: string;
    }>),
  ];
  const add = db.prepare(
    'INSERT OR IGNORE INTO belfry_entries (collection, idx, entry, id) VALUES (?, ?, ?, ?)',
  );
  for (const row of rows) {
    if (!Object.hasOwn(schema.collections, row.collection)) continue;
    const record = JSON.parse(row.body) as StoredRecord;
    for (const [idx, fn] of Object.entries(collectionIndexes(schema, row.collection)))
      for (const key of indexKeys(fn, record))
        add.run(row.collection, idx, encodeEntry(key, record.id), record.id);
  }
}

/** Brings the tables from layout `from` to {@link LAYOUT}, in one transaction. */
function migrate(db: Database.Database, seen: number): void {
  if (seen === LAYOUT) return;
  db.transaction(() => {
    // Read again under the write lock: another process may have migrated it meanwhile.
    const from = db.pragma('user_version', { simple: true }) as number;
    for (let step = from; step < LAYOUT; step++) db.exec(MIGRATIONS[step] as string);
    if (from < LAYOUT) db.pragma(`user_version = ${LAYOUT}`);
  }).immediate();
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Makes a new store whole: its tables, schema and identity are written to a file of another name
 * (mode 0600), which is then linked to `path` only if nothing is there yet. A crash part-way
 * leaves at most that other file (removed by the next creator once its process is gone), never
 * an empty or half-made store at `path`; two processes creating at once end up with one store.
 */
function createWhole(path: string, schema: StoreSchema): void {
  const folder = dirname(path);
  removeAbandoned(path);
  const temp = join(
    folder,
    `${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.new`,
  );
  try {
    closeSync(openSync(temp, 'wx', 0o600));
    const db = new Database(temp, { fileMustExist: true });
    try {
      db.pragma('journal_mode = WAL');
      migrate(db, 0);
      adopt(db, temp, schema);
    } finally {
      db.close();
    }
    const fd = openSync(temp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path);
    } catch (error) {
      // Another process made the store first: that one is the store.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    syncFolder(folder);
  } catch (error) {
    throw storeError(error, path, 'create');
  } finally {
    for (const suffix of ['', '-wal', '-shm', '-journal'])
      rmSync(`${temp}${suffix}`, { force: true });
  }
}

/** Removes what creators killed part-way left beside `path` (their process is gone). */
function removeAbandoned(path: string): void {
  const pattern = new RegExp(
    `^${basename(path).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.[0-9a-f]{8}\\.new(-wal|-shm|-journal)?$`,
  );
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || processAlive(pid)) continue;
    rmSync(join(dirname(path), name), { force: true });
  }
}

/** Makes a new name in `folder` durable (best effort: not every file system allows it). */
function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // a file system that cannot sync a folder: the link is still made
  }
}

/**
 * The file and its folder must be writable: SQLite would otherwise open the file read-only
 * without a word, and its -wal and -shm files would be made read-only too.
 */
function checkWritable(path: string): void {
  for (const [what, target] of [
    ['the file', path],
    ['its folder (for the -wal and -shm files)', dirname(path)],
  ] as const) {
    try {
      accessSync(target, constants.W_OK);
    } catch (error) {
      throw new StoreError({
        code: 'IO',
        message: `${path}: ${what} is not writable (${(error as NodeJS.ErrnoException).code}); a store must be written`,
        cause: error,
      });
    }
  }
}

/** A non-empty file that does not start with SQLite's header is refused before SQLite sees it. */
function checkHeader(path: string): void {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new StoreError({ code: 'IO', message: `${path} is not a file` });
    size = st.size;
  } catch (error) {
    throw storeError(error, path, 'read');
  }
  if (size === 0)
    throw new StoreError({
      code: 'CORRUPT',
      message: `${path} is an empty file. belfry never leaves one (a store is created whole), so it was truncated or made by something else, and it is not taken as a new, empty town: restore the store from a backup, or remove the file to start an empty one`,
    });
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== SQLITE_HEADER)
    throw new StoreError({
      code: 'CORRUPT',
      message: `${path} is not an SQLite database (it does not start with SQLite's header); it was left untouched`,
    });
}

/** Any error from the file or SQLite as a StoreError that names the file and what was done. */
function storeError(error: unknown, path: string, doing: string): StoreError {
  if (error instanceof StoreError) return error;
  const code = sqliteCode(error) ?? (error as NodeJS.ErrnoException)?.code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (/^SQLITE_(BUSY|LOCKED)/.test(code))
    return new StoreError({
      code: 'LOCKED',
      message: `${path} is locked by another process (could not ${doing}: ${message}); is another daemon running on it?`,
      cause: error,
    });
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code))
    return new StoreError({
      code: 'CORRUPT',
      message: `${path} is damaged (could not ${doing}: ${message})`,
      cause: error,
    });
  return new StoreError({
    code: 'IO',
    message: `${path}: could not ${doing}: ${message}${code ? ` (${code})` : ''}`,
    cause: error,
  });
}
