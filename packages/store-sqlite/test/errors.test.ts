import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  createTownModel,
  StoreError,
  type StoreSchema,
  townSchema,
} from '@belfry/core';
import { SqliteStore } from '@belfry/store-sqlite';
import { SimulatedClock } from '@belfry/testing';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { storeError } from './helpers';

const dir = () => mkdtempSync(join(tmpdir(), 'belfry-sqlite-'));
const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function withBeads(path: string, n: number) {
  const store = SqliteStore.open({ path });
  const model = createTownModel({ store, clock: new SimulatedClock(1_000) });
  for (let i = 0; i < n; i++) await model.beads.create({ title: `bead ${i}` });
  await store.close();
}

describe('SqliteStore: the file', () => {
  it('creates the file with mode 0600, in WAL mode, and keeps records across a reopen', async () => {
    const path = join(dir(), 'town.db');
    await withBeads(path, 3);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.pragma('user_version', { simple: true })).toBe(1);
    raw.close();
    const store = SqliteStore.open({ path });
    const model = createTownModel({ store, clock: new SimulatedClock(2_000) });
    expect(await model.beads.list({ status: 'open' })).toHaveLength(3);
    expect(await store.schemaVersion()).toBe(townSchema.version);
    await store.close();
  });

  it('a file that is not SQLite is refused and left byte for byte as it was', () => {
    const path = join(dir(), 'notes.db');
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(100));
    const before = digest(path);
    const error = storeError(() => SqliteStore.open({ path }));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain(path);
    expect(error.message).toContain('not an SQLite database');
    expect(digest(path)).toBe(before);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it('another application’s SQLite database is refused and left untouched', () => {
    const path = join(dir(), 'app.db');
    const other = new Database(path);
    other.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada')");
    other.close();
    const before = digest(path);
    const error = storeError(() => SqliteStore.open({ path }));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/not a belfry store \(it holds table users\)/);
    expect(digest(path)).toBe(before);
  });

  it('a damaged belfry file is refused at open, naming the file', async () => {
    const path = join(dir(), 'town.db');
    await withBeads(path, 2_000);
    const bytes = readFileSync(path);
    // Scribble over two pages in the middle (past the header and the schema's first page).
    bytes.fill(0x5a, 8_192, 16_384);
    writeFileSync(path, bytes);
    const error = storeError(() => SqliteStore.open({ path }));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain(path);
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('a record whose JSON was damaged is CORRUPT when read, naming it', async () => {
    const path = join(dir(), 'town.db');
    await withBeads(path, 1);
    const raw = new Database(path);
    const { id } = raw
      .prepare("SELECT id FROM belfry_records WHERE collection = 'beads'")
      .get() as { id: string };
    raw.prepare('UPDATE belfry_records SET body = \'{"id":\' WHERE id = ?').run(id);
    raw.close();
    const store = SqliteStore.open({ path });
    const error = await store.transaction((tx) => tx.get('beads', id)).catch((e: StoreError) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('CORRUPT');
    expect((error as StoreError).message).toContain(`beads/${id}`);
    await store.close();
  });

  it('a file written by a newer schema version, or a newer layout, is refused and untouched', async () => {
    const path = join(dir(), 'town.db');
    const newer: StoreSchema = { ...townSchema, version: townSchema.version + 1 };
    const store = SqliteStore.open({ path, schema: newer });
    await store.close();
    const before = digest(path);
    const error = storeError(() => SqliteStore.open({ path }));
    expect(error.code).toBe('SCHEMA_TOO_NEW');
    expect(error.message).toContain(`version ${townSchema.version + 1}`);
    expect(error.message).toContain(path);
    expect(digest(path)).toBe(before);

    const other = join(dir(), 'town.db');
    (await SqliteStore.open({ path: other })).close();
    const raw = new Database(other);
    raw.pragma('user_version = 7');
    raw.close();
    expect(storeError(() => SqliteStore.open({ path: other })).message).toMatch(
      /layout 7.*newer @belfry\/store-sqlite/,
    );
  });

  it('a store of another schema is refused', async () => {
    const path = join(dir(), 'other.db');
    await SqliteStore.open({
      path,
      schema: { name: 'acme.things', version: 1, collections: {} },
    }).close();
    const error = storeError(() => SqliteStore.open({ path }));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain('"acme.things"');
  });

  it('an older schema version is migrated: its index entries are rebuilt for the new indexes', async () => {
    const path = join(dir(), 'things.db');
    type Thing = { id: string; color: string };
    const v1: StoreSchema = {
      name: 'acme.things',
      version: 1,
      collections: { things: { indexes: { all: () => [[0]] } } },
    };
    const s1 = SqliteStore.open({ path, schema: v1 });
    await s1.transaction(async (tx) => {
      await tx.insert<Thing>('things', { id: 'a', color: 'red' });
      await tx.insert<Thing>('things', { id: 'b', color: 'blue' });
    });
    await s1.close();
    const v2: StoreSchema = {
      ...v1,
      version: 2,
      collections: {
        things: { indexes: { byColor: (t: Thing) => [[t.color]] } },
      },
    };
    const s2 = SqliteStore.open({ path, schema: v2 });
    expect(await s2.schemaVersion()).toBe(2);
    const red = await s2.transaction((tx) =>
      tx.find<Thing>('things', 'byColor', { prefix: ['red'] }),
    );
    expect(red.map((t) => t.id)).toEqual(['a']);
    await s2.close();
  });

  it('a database another process holds the write lock of is LOCKED, after the busy timeout', async () => {
    const path = join(dir(), 'town.db');
    await withBeads(path, 1);
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    try {
      const store = SqliteStore.open({ path, busyTimeoutMs: 100 });
      const error = await store.transaction(async () => 1).catch((e: StoreError) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('LOCKED');
      expect((error as StoreError).message).toContain(path);
      holder.exec('ROLLBACK');
      expect(await store.transaction(async () => 2)).toBe(2);
      await store.close();
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('a missing folder or a folder given as the file is an IO error naming the path', () => {
    const missing = join(dir(), 'no', 'such', 'town.db');
    const error = storeError(() => SqliteStore.open({ path: missing }));
    expect(error.code).toBe('IO');
    expect(error.message).toContain(missing);
    const folder = join(dir(), 'a-folder');
    mkdirSync(folder);
    expect(storeError(() => SqliteStore.open({ path: folder })).code).toBe('IO');
  });

  it('refuses bad options', () => {
    expect(() => SqliteStore.open({ path: '' })).toThrow(ConfigError);
    expect(() => SqliteStore.open({ path: ':memory:' })).toThrow(/options\.path/);
    expect(() =>
      SqliteStore.open({ path: join(dir(), 'x.db'), durability: 'fast' as never }),
    ).toThrow(/options\.durability/);
    expect(() => SqliteStore.open({ path: join(dir(), 'x.db'), busyTimeoutMs: -1 })).toThrow(
      /options\.busyTimeoutMs/,
    );
    expect(() => SqliteStore.open({ path: join(dir(), 'x.db'), cache: 1 } as never)).toThrow(
      /options\.cache/,
    );
  });

  it('after close every call fails with CLOSED, and close waits for the transaction under way', async () => {
    const path = join(dir(), 'town.db');
    const store = SqliteStore.open({ path });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const writing = store.transaction(async (tx) => {
      await gate;
      await tx.insert('respawns', { id: 'x', count: 1 });
    });
    const closing = store.close();
    release();
    await writing;
    await closing;
    const error = await store.transaction(async () => 1).catch((e: StoreError) => e);
    expect((error as StoreError).code).toBe('CLOSED');
    const again = SqliteStore.open({ path });
    expect(await again.transaction((tx) => tx.get('respawns', 'x'))).toMatchObject({ id: 'x' });
    await again.close();
  });
});
