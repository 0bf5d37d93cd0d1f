/**
 * The town at scale, on the memory store and driver:
 * - one full patrol with 100 rigs × 100 polecats, 100,000 open gates (1,000 due) and 10,000
 *   convoys, and at a tenth of that; time per patrol and heap. Baseline: the same town and
 *   patrol code on a store without secondary indexes (every query reads the whole collection,
 *   as a JSON-file store would).
 * - the Daemon's heap after 1,000,000 simulated heartbeats against after 1,000.
 */
import {
  createTown,
  type IndexQuery,
  MemoryStore,
  type Store,
  type StoredRecord,
  type StoreSchema,
  type StoreTx,
  townSchema,
} from '@belfry/core';
import { encodeEntry, queryBounds } from '@belfry/core/store';
import { createMemoryDriver } from '@belfry/driver-memory';
import { timerGate } from '@belfry/gate-timer';
import { SimulatedClock } from '@belfry/testing';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
const HOUR = 3_600_000;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** A store with no secondary indexes: `find` reads every record of the collection. */
class ScanStore implements Store {
  readonly schema: StoreSchema = townSchema;
  private readonly data = new Map<string, Map<string, StoredRecord>>();
  private readonly seq = new Map<string, number>();
  private queue: Promise<unknown> = Promise.resolve();

  async schemaVersion(): Promise<number> {
    return this.schema.version;
  }
  async close(): Promise<void> {}

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const undo: Array<() => void> = [];
      const col = (name: string) => {
        let c = this.data.get(name);
        if (!c) {
          c = new Map();
          this.data.set(name, c);
        }
        return c;
      };
      const put = (name: string, id: string, record: StoredRecord | undefined) => {
        const c = col(name);
        const before = c.get(id);
        undo.push(() => (before ? c.set(id, before) : c.delete(id)));
        if (record) c.set(id, Object.freeze(structuredClone(record)));
        else c.delete(id);
      };
      const tx: StoreTx = {
        get: async <R extends StoredRecord>(c: string, id: string) =>
          col(c).get(id) as R | undefined,
        insert: async (c, r) => {
          if (col(c).has(r.id)) throw new Error(`duplicate ${c}/${r.id}`);
          put(c, r.id, r);
        },
        update: async (c, r) => {
          if (!col(c).has(r.id)) throw new Error(`missing ${c}/${r.id}`);
          put(c, r.id, r);
        },
        delete: async (c, id) => {
          const had = col(c).has(id);
          if (had) put(c, id, undefined);
          return had;
        },
        find: async <R extends StoredRecord>(c: string, index: string, query?: IndexQuery) => {
          const fn = this.schema.collections[c]?.indexes[index] as (
            r: StoredRecord,
          ) => readonly (readonly (string | number | boolean)[])[];
          const { from, to } = queryBounds(query);
          const hits: Array<[string, StoredRecord]> = [];
          for (const record of col(c).values()) {
            for (const key of fn(record)) {
              const entry = encodeEntry(key, record.id);
              if (entry >= from && entry <= to) hits.push([entry, record]);
            }
          }
          hits.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
          if (query?.reverse) hits.reverse();
          return hits.slice(0, query?.limit ?? hits.length).map(([, r]) => r as R);
        },
        count: async (c, index, query) => (await tx.find(c, index, query)).length,
        nextSequence: async (name) => {
          const before = this.seq.get(name);
          undo.push(() =>
            before === undefined ? this.seq.delete(name) : this.seq.set(name, before),
          );
          const next = (before ?? 0) + 1;
          this.seq.set(name, next);
          return next;
        },
      };
      try {
        return await fn(tx);
      } catch (error) {
        for (const u of undo.reverse()) u();
        throw error;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

const timer = timerGate();

interface Shape {
  rigs: number;
  polecats: number;
  gates: number;
  due: number;
  convoys: number;
}

const FULL: Shape = QUICK
  ? { rigs: 10, polecats: 10, gates: 10_000, due: 100, convoys: 1_000 }
  : { rigs: 100, polecats: 100, gates: 100_000, due: 1_000, convoys: 10_000 };
const TENTH: Shape = {
  rigs: FULL.rigs / 10,
  polecats: FULL.polecats,
  gates: FULL.gates / 10,
  due: FULL.due,
  convoys: FULL.convoys / 10,
};

/** Builds a steady town of this shape, then times one heartbeat-triggered patrol. */
async function patrol(shape: Shape, store: Store): Promise<{ ms: number; heap: number }> {
  const clock = new SimulatedClock(1_700_000_000_000);
  const driver = createMemoryDriver({ clock, defaultGraceMs: 0 });
  const rigs = Array.from({ length: shape.rigs }, (_, i) => `rig${i}`);
  const town = createTown({
    store,
    driver,
    clock,
    rigs,
    gates: [timer],
    timings: {
      heartbeatMs: 10 * HOUR,
      patrolIntervalMs: 20 * HOUR,
      surveyMs: 10 * HOUR,
      spawnGraceMs: HOUR,
      staleAfterMs: 100 * HOUR,
      convoyStallMs: 4 * HOUR,
    },
  });
  const m = town.model;
  // Ten convoys that will have made no progress for longer than convoyStallMs at the measured
  // patrol; every other convoy is younger than that.
  for (let c = 0; c < 10; c++) {
    const bead = await m.beads.create({ title: `stalled ${c}` });
    await m.convoys.create({ title: `stalled convoy ${c}`, beadIds: [bead.id] });
  }
  clock.advanceSync(3 * HOUR);
  for (const rig of rigs) await m.rigs.create({ name: rig });
  for (const rig of rigs) {
    for (let p = 0; p < shape.polecats; p++) {
      const bead = await m.beads.create({ title: `work ${p}`, rig });
      await m.polecats.sling(bead.id, rig, { names: [] });
    }
  }
  // Convoys: one bead each; ten stalled (above), ten whose bead finishes just before the
  // measured patrol (which closes them).
  const finishing: string[] = [];
  for (let c = 10; c < shape.convoys; c++) {
    const bead = await m.beads.create({ title: `tracked ${c}` });
    await m.convoys.create({ title: `convoy ${c}`, beadIds: [bead.id] });
    if (c < 20) finishing.push(bead.id);
  }
  for (let g = 0; g < shape.gates; g++) {
    await m.gates.create({
      type: 'timer',
      spec: { durationMs: g < shape.due ? 1_000 : 1_000 * HOUR + g },
    });
  }
  let finished = 0;
  town.events.on('patrol.finished', () => {
    finished++;
  });
  await town.start();
  // Let the first patrol start the witnesses and the witnesses spawn every session.
  for (let i = 0; i < 200 && finished < 1; i++) await clock.advance(1_000);
  for (let i = 0; i < 50; i++) await clock.advance(1_000);
  clock.advanceSync(3 * HOUR);
  await clock.advance(0);
  for (const id of finishing) await m.beads.setStatus(id, 'done');
  const before = finished;
  const t0 = performance.now();
  town.wake();
  while (finished === before) await new Promise((r) => setImmediate(r));
  const ms = performance.now() - t0;
  const heap = heapMb();
  town.kill();
  return { ms, heap };
}

/**
 * The Daemon's heap after `beats` heartbeats: its tick, its lifecycle worker and the patrols the
 * heartbeats trigger (their digests are pruned to `keepPatrolDigests`).
 */
async function daemonHeap(
  beats: number,
): Promise<{ heap: number; patrols: number; digests: number }> {
  const clock = new SimulatedClock(0);
  const town = createTown({
    driver: createMemoryDriver({ clock }),
    clock,
    timings: { heartbeatMs: 1_000, patrolIntervalMs: 1_000_000_000_000 },
  });
  let patrols = 0;
  town.events.on('patrol.finished', () => {
    patrols++;
  });
  await town.start();
  await clock.advance(0);
  // Heartbeats fire in batches of 100 between turns of the event loop; those that arrive while
  // a patrol runs fold into the next one, as they do in a real daemon that falls behind. So
  // N heartbeats run about N / 100 patrols, each pruning the digests.
  const chunk = 100;
  for (let done = 0; done < beats; done += chunk) {
    clock.advanceSync(chunk * 1_000);
    await clock.advance(0);
  }
  const heap = heapMb();
  const digests = (await town.model.beads.list({ status: 'done' })).length;
  town.kill();
  return { heap, patrols, digests };
}

const suite: BenchSuite = {
  name: 'town: patrol and daemon',
  baseline: 'the same town on a store without secondary indexes; the daemon after 1,000 heartbeats',
  async run(progress) {
    const rows: BenchRow[] = [];
    for (const shape of [TENTH, FULL]) {
      const size = shape.rigs * shape.polecats;
      progress(
        `patrol: ${shape.rigs} rigs × ${shape.polecats} polecats, ${shape.gates.toLocaleString('en-US')} gates, ${shape.convoys.toLocaleString('en-US')} convoys (indexed, then scanning)`,
      );
      const indexed = await patrol(shape, new MemoryStore());
      const scanned = await patrol(shape, new ScanStore());
      rows.push({
        name: 'one full patrol (polecats)',
        size,
        belfry: indexed.ms,
        baseline: scanned.ms,
        ratio: scanned.ms / indexed.ms,
        unit: 'ms',
      });
      rows.push({
        name: 'heap with the town loaded (polecats)',
        size,
        belfry: indexed.heap,
        baseline: scanned.heap,
        ratio: scanned.heap / indexed.heap,
        unit: 'MB',
      });
    }
    const sizes = QUICK ? [10_000, 100_000] : [100_000, 1_000_000];
    progress(
      `daemon heap: 1,000 heartbeats, then ${sizes.map((n) => n.toLocaleString('en-US')).join(' and ')}`,
    );
    const small = await daemonHeap(1_000);
    for (const beats of sizes) {
      const big = await daemonHeap(beats);
      rows.push({
        name: 'daemon heap after N heartbeats (baseline: after 1,000)',
        size: beats,
        belfry: big.heap,
        baseline: small.heap,
        ratio: small.heap / big.heap,
        unit: 'MB',
        note: `${big.patrols.toLocaleString('en-US')} patrols ran, ${big.digests} digests kept`,
      });
    }
    return rows;
  },
  summary(rows) {
    const p = rows.filter((r) => r.name === 'one full patrol (polecats)');
    const lines: string[] = [];
    if (p.length === 2) {
      const [a, b] = p as [BenchRow, BenchRow];
      lines.push(
        `10× the town (rigs, gates, convoys) costs the patrol ${(b.belfry / a.belfry).toFixed(1)}×; without indexes ${(b.baseline / a.baseline).toFixed(1)}×`,
      );
    }
    for (const d of rows.filter((r) => r.name.startsWith('daemon heap')))
      lines.push(
        `daemon heap: ${d.baseline.toFixed(1)} MB after 1,000 heartbeats, ${d.belfry.toFixed(1)} MB after ${d.size.toLocaleString('en-US')} (growth ${(d.belfry - d.baseline).toFixed(1)} MB; ${d.note ?? ''})`,
      );
    lines.push('heap rows: "baseline ÷ belfry" near 1 means no growth');
    return lines;
  },
};

export default suite;
