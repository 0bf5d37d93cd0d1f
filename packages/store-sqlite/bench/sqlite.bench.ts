/**
 * The SQLite store on a real file:
 * - mutations: beads created through the town model, one per transaction and 100 per
 *   transaction, with durability full (fsync per commit) and normal. Baseline: bare
 *   better-sqlite3 writing the same JSON rows with the same synchronous setting (no indexes, no
 *   checks): the floor any SQLite-backed store pays.
 * - start-up recovery: opening a store of 10,000 and 100,000 beads and answering the first
 *   queries a restarted daemon asks (open lifecycle requests, due gates, open beads). Baseline:
 *   bare better-sqlite3 opening the file and counting the rows.
 * - file size per bead, against the same records as one JSON document.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTownModel, type TownModel } from '@belfry/core';
import { type Durability, SqliteStore } from '@belfry/store-sqlite';
import { SimulatedClock } from '@belfry/testing';
import Database from 'better-sqlite3';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
const SINGLE = QUICK ? [100, 400] : [500, 2_000];
const BATCHED = QUICK ? [1_000, 4_000] : [10_000, 40_000];
const STORED = QUICK ? [2_000, 10_000] : [10_000, 100_000];

const ms = (t0: number) => performance.now() - t0;

function model(path: string, durability: Durability): { store: SqliteStore; model: TownModel } {
  const store = SqliteStore.open({ path, durability });
  return { store, model: createTownModel({ store, clock: new SimulatedClock(1_700_000_000_000) }) };
}

/** The baseline: bare better-sqlite3, one JSON row per bead, the same synchronous setting. */
function bare(path: string, durability: Durability) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.exec(
    'CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID',
  );
  const insert = db.prepare('INSERT INTO docs (id, body) VALUES (?, ?)');
  return { db, insert };
}

const bead = (i: number) => ({ title: `bead ${i}: fix the thing`, rig: 'api', labels: ['bench'] });

const suite: BenchSuite = {
  name: 'SQLite store on a real file',
  baseline: 'bare better-sqlite3 (same file settings, no indexes, no checks)',
  async run(progress) {
    const rows: BenchRow[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'belfry-bench-sqlite-'));
    let file = 0;
    const fresh = () => join(dir, `b${++file}.db`);
    try {
      for (const durability of ['full', 'normal'] as const) {
        for (const n of SINGLE) {
          progress(`${n} single mutations, durability ${durability}`);
          const ours = model(fresh(), durability);
          await ours.model.rigs.create({ name: 'api' });
          let t0 = performance.now();
          for (let i = 0; i < n; i++) await ours.model.beads.create(bead(i));
          const belfry = ms(t0);
          await ours.store.close();
          const b = bare(fresh(), durability);
          t0 = performance.now();
          for (let i = 0; i < n; i++)
            b.db.transaction(() =>
              b.insert.run(`bd-${i}`, JSON.stringify({ id: `bd-${i}`, ...bead(i) })),
            )();
          const baseline = ms(t0);
          b.db.close();
          rows.push({
            name: `one mutation per transaction (${durability}), time for N`,
            size: n,
            belfry,
            baseline,
            ratio: baseline / belfry,
            unit: 'ms',
            note: `${Math.round((n / belfry) * 1_000)} mutations/s (bare: ${Math.round((n / baseline) * 1_000)}/s)`,
          });
        }
      }
      for (const n of BATCHED) {
        progress(`${n} mutations, 100 per transaction`);
        const ours = model(fresh(), 'full');
        await ours.model.rigs.create({ name: 'api' });
        let t0 = performance.now();
        for (let i = 0; i < n; i += 100)
          await ours.model.transaction(async (m) => {
            for (let j = i; j < i + 100; j++) await m.beads.create(bead(j));
          });
        const belfry = ms(t0);
        await ours.store.close();
        const b = bare(fresh(), 'full');
        t0 = performance.now();
        for (let i = 0; i < n; i += 100)
          b.db.transaction(() => {
            for (let j = i; j < i + 100; j++)
              b.insert.run(`bd-${j}`, JSON.stringify({ id: `bd-${j}`, ...bead(j) }));
          })();
        const baseline = ms(t0);
        b.db.close();
        rows.push({
          name: '100 mutations per transaction (full), time for N',
          size: n,
          belfry,
          baseline,
          ratio: baseline / belfry,
          unit: 'ms',
          note: `${Math.round((n / belfry) * 1_000)} mutations/s (bare: ${Math.round((n / baseline) * 1_000)}/s)`,
        });
      }
      for (const n of STORED) {
        progress(`start-up with ${n} beads`);
        const path = fresh();
        const ours = model(path, 'normal');
        await ours.model.rigs.create({ name: 'api' });
        for (let i = 0; i < n; i += 1_000)
          await ours.model.transaction(async (m) => {
            for (let j = i; j < i + 1_000; j++) await m.beads.create(bead(j));
          });
        await ours.store.close();
        const json = JSON.stringify(
          Array.from({ length: n }, (_, i) => ({
            id: `bd-${String(i).padStart(10, '0')}`,
            status: 'open',
            ...bead(i),
            createdAt: 1_700_000_000_000,
            metadata: {},
          })),
        );
        const startup = async (verify: boolean) => {
          const t0 = performance.now();
          const store = SqliteStore.open({ path, verify });
          const m = createTownModel({ store, clock: new SimulatedClock(1_700_000_000_000) });
          await m.lifecycle.pending();
          await m.gates.due();
          await m.beads.list({ status: 'open', limit: 100 });
          const t = ms(t0);
          await store.close();
          return t;
        };
        const checked = await startup(true);
        const unchecked = await startup(false);
        const t0 = performance.now();
        const raw = new Database(path, { readonly: true });
        raw.prepare('SELECT count(*) AS n FROM belfry_records').get();
        raw.close();
        const baseline = ms(t0);
        rows.push({
          name: 'start-up: open + first queries (quick_check on)',
          size: n,
          belfry: checked,
          baseline,
          ratio: baseline / checked,
          unit: 'ms',
        });
        rows.push({
          name: 'start-up: open + first queries (verify: false)',
          size: n,
          belfry: unchecked,
          baseline,
          ratio: baseline / unchecked,
          unit: 'ms',
        });
        const bytes = statSync(path).size;
        rows.push({
          name: 'file size',
          size: n,
          belfry: bytes / 2 ** 20,
          baseline: Buffer.byteLength(json) / 2 ** 20,
          ratio: Buffer.byteLength(json) / bytes,
          unit: 'MB',
          note: `${Math.round(bytes / n)} bytes per bead with its index entries (JSON alone: ${Math.round(Buffer.byteLength(json) / n)})`,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
  summary(rows) {
    return rows
      .filter((r) => r.note)
      .map((r) => `${r.name} at ${r.size.toLocaleString('en-US')}: ${r.note}`);
  },
};

export default suite;
