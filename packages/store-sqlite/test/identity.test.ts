/**
 * The store file's identity (issue 13, item 7): a store is created whole, has an id that a copy
 * keeps and a new store never has, can be opened "must exist", and notices when its path was
 * removed or replaced under it.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@belfry/store-sqlite';
import { describe, expect, it } from 'vitest';
import { storeError } from './helpers';

const dir = () => mkdtempSync(join(tmpdir(), 'belfry-identity-'));

/** A process that is gone: its pid is free, as a creator's killed part-way would be. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('SqliteStore: the file’s identity', () => {
  it('a new store has an id that stays across reopens and goes with a copy; another new store has another', async () => {
    const folder = dir();
    const path = join(folder, 'town.db');
    const store = SqliteStore.open({ path });
    expect(store.id).toMatch(/^st-[0-9a-f]{24}$/);
    await store.transaction((tx) => tx.nextSequence('n'));
    await store.close();
    const again = SqliteStore.open({ path });
    expect(again.id).toBe(store.id);
    await again.close();
    copyFileSync(path, join(folder, 'copy.db'));
    const copy = SqliteStore.open({ path: join(folder, 'copy.db') });
    expect(copy.id).toBe(store.id);
    await copy.close();
    const other = SqliteStore.open({ path: join(folder, 'other.db') });
    expect(other.id).not.toBe(store.id);
    await other.close();
  });

  it('a store is created whole: nothing but the store is left beside it, and it is never empty at its path', async () => {
    const folder = dir();
    const store = SqliteStore.open({ path: join(folder, 'town.db') });
    expect(statSync(join(folder, 'town.db')).size).toBeGreaterThan(0);
    expect(statSync(join(folder, 'town.db')).mode & 0o777).toBe(0o600);
    expect(readdirSync(folder).filter((n) => n.includes('.new'))).toEqual([]);
    await store.close();
  });

  it('what a creator killed part-way left is removed by the next creator; a live creator’s is not touched', async () => {
    const folder = dir();
    const dead = await deadPid();
    const abandoned = join(folder, `town.db.${dead}.0a1b2c3d.new`);
    const live = join(folder, `town.db.${process.pid}.deadbeef.new`);
    writeFileSync(abandoned, 'half');
    writeFileSync(`${abandoned}-wal`, 'half');
    writeFileSync(live, 'busy');
    const store = SqliteStore.open({ path: join(folder, 'town.db') });
    await store.close();
    expect(readdirSync(folder).sort()).toEqual(['town.db', `town.db.${process.pid}.deadbeef.new`]);
  });

  it('create: false refuses a missing file with MISSING and makes nothing', () => {
    const folder = dir();
    const path = join(folder, 'town.db');
    const error = storeError(() => SqliteStore.open({ path, create: false }));
    expect(error.code).toBe('MISSING');
    expect(error.message).toContain(path);
    expect(readdirSync(folder)).toEqual([]);
    expect(() => SqliteStore.open({ path, create: 'no' as never })).toThrow(/options\.create/);
  });

  it('verifyFile passes while the path names the open file, and says REPLACED once it was removed or replaced', async () => {
    const folder = dir();
    const path = join(folder, 'town.db');
    const store = SqliteStore.open({ path });
    store.verifyFile();
    await store.transaction((tx) => tx.nextSequence('n'));
    store.verifyFile();

    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    const removed = storeError(() => store.verifyFile());
    expect(removed.code).toBe('REPLACED');
    expect(removed.message).toContain(`${path} was removed while it was open`);
    await store.close();

    const first = SqliteStore.open({ path: join(folder, 'a.db') });
    const second = SqliteStore.open({ path: join(folder, 'b.db') });
    await second.close();
    renameSync(join(folder, 'b.db'), join(folder, 'a.db'));
    const replaced = storeError(() => first.verifyFile());
    expect(replaced.code).toBe('REPLACED');
    expect(replaced.message).toContain('was replaced by another file');
    await first.close();
  });

  it('the town’s id: none until claimed, then one id for every handle and every later claim, kept across reopens and by a copy', async () => {
    const folder = dir();
    const path = join(folder, 'town.db');
    const a = SqliteStore.open({ path });
    const b = SqliteStore.open({ path });
    expect(await a.townId()).toBeUndefined();
    // Two processes setting the town up at once (init and a daemon) agree on one id.
    const [ida, idb] = await Promise.all([a.claimTownId(), b.claimTownId()]);
    expect(ida).toMatch(/^tw-[0-9a-f]{24}$/);
    expect(idb).toBe(ida);
    expect(await b.claimTownId('tw-other')).toBe(ida);
    expect(await a.townId()).toBe(ida);
    await a.close();
    await b.close();
    const again = SqliteStore.open({ path });
    expect(await again.townId()).toBe(ida);
    await again.close();
    copyFileSync(path, join(folder, 'copy.db'));
    const copy = SqliteStore.open({ path: join(folder, 'copy.db') });
    expect(await copy.townId()).toBe(ida);
    await copy.close();
    const other = SqliteStore.open({ path: join(folder, 'other.db') });
    expect(await other.claimTownId('tw-given')).toBe('tw-given');
    await expect(other.claimTownId('a town')).rejects.toThrow(/a town id must be 1 to 64 letters/);
    await other.close();
    await expect(other.townId()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
