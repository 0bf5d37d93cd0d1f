/**
 * The patrol's queries on the town model, against a full scan of the same store: the due gates,
 * the finished convoys, the stalled convoys. The stored volume grows tenfold between the two
 * sizes while what is due stays the same, so the indexed queries should cost the same at both
 * sizes and the scan ten times more.
 */
import { type Convoy, createTownModel, type Gate, MemoryStore, type TownModel } from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import type { BenchRow, BenchSuite } from '../../../scripts/bench';

const QUICK = process.env.BELFRY_BENCH_QUICK === '1';
/** Open gates stored, at the two sizes; convoys are a tenth of that. */
const SIZES = QUICK ? [1_000, 10_000] : [10_000, 100_000];
/** Gates due at query time, at every size. */
const DUE = QUICK ? 100 : 1_000;
/** Convoys finished, and convoys without progress for an hour, at every size. */
const FINISHED = QUICK ? 10 : 100;
const STALLED = QUICK ? 10 : 100;
const REPEAT = 15;
const HOUR = 3_600_000;

interface Town {
  model: TownModel;
  now: number;
}

async function town(gates: number): Promise<Town> {
  const clock = new SimulatedClock(1_700_000_000_000);
  const model = createTownModel({ store: new MemoryStore(), clock });
  const convoys = gates / 10;
  // The stalled convoys are made first, then an hour and a half passes.
  for (let i = 0; i < convoys; i++) {
    if (i === STALLED) clock.advanceSync(HOUR + HOUR / 2);
    const bead = await model.beads.create({ title: `work ${i}` });
    await model.convoys.create({ title: `convoy ${i}`, beadIds: [bead.id] });
    if (i >= STALLED && i < STALLED + FINISHED) await model.beads.setStatus(bead.id, 'done');
  }
  // Timer gates: DUE of them expire before `now`, the rest over the next days.
  for (let i = 0; i < gates; i++) {
    const durationMs = i < DUE ? 1 + i : 2 * HOUR + i * 1_000;
    await model.gates.create({ type: 'timer', spec: { durationMs } });
  }
  clock.advanceSync(DUE + 1);
  return { model, now: clock.now() };
}

type Query = (t: Town) => Promise<number>;

const indexed: Record<string, Query> = {
  gates: async ({ model, now }) => (await model.gates.due({ now })).length,
  finished: async ({ model }) => (await model.convoys.finished()).length,
  stalled: async ({ model, now }) => (await model.convoys.stalled(now - HOUR)).length,
};

// The same answers, the way a store without these indexes gets them: read every open record.
const scanned: Record<string, Query> = {
  gates: ({ model, now }) =>
    model.store.transaction(async (tx) => {
      const open = await tx.find<Gate>('gates', 'byStatus', { prefix: ['open'] });
      return open
        .filter((g) => g.dueAt !== undefined && g.dueAt <= now)
        .sort((a, b) => (a.dueAt as number) - (b.dueAt as number)).length;
    }),
  finished: ({ model }) =>
    model.store.transaction(async (tx) => {
      const open = await tx.find<Convoy>('convoys', 'open');
      return open.filter((c) => c.openCount === 0 && c.beadIds.length > 0).length;
    }),
  stalled: ({ model, now }) =>
    model.store.transaction(async (tx) => {
      const open = await tx.find<Convoy>('convoys', 'open');
      return open
        .filter((c) => c.lastProgressAt <= now - HOUR)
        .sort((a, b) => a.lastProgressAt - b.lastProgressAt).length;
    }),
};

const expected: Record<string, number> = { gates: DUE, finished: FINISHED, stalled: STALLED };

async function time(query: Query, t: Town, name: string): Promise<number> {
  const samples: number[] = [];
  for (let r = 0; r < 50; r++) await query(t); // warm-up: the JIT, not the query, is slow at first
  for (let r = 0; r < REPEAT; r++) {
    const t0 = performance.now();
    const n = await query(t);
    samples.push(performance.now() - t0);
    if (n !== expected[name])
      throw new Error(`store bench: ${name} returned ${n}, expected ${expected[name]}`);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] as number;
}

const labels: Record<string, string> = {
  gates: `due gates (${DUE.toLocaleString('en-US')} due of N open)`,
  finished: `finished convoys (${FINISHED} of N/10)`,
  stalled: `convoys stalled > 1 h (${STALLED} of N/10)`,
};

const suite: BenchSuite = {
  name: 'store: patrol queries',
  baseline: 'the same MemoryStore, reading every open record and filtering (no index)',
  async run(progress) {
    const rows: BenchRow[] = [];
    for (const n of SIZES) {
      progress(
        `building a town with ${n.toLocaleString('en-US')} open gates and ${(n / 10).toLocaleString('en-US')} convoys`,
      );
      const t = await town(n);
      for (const name of Object.keys(indexed)) {
        const belfry = await time(indexed[name] as Query, t, name);
        const baseline = await time(scanned[name] as Query, t, name);
        rows.push({
          name: labels[name] as string,
          size: n,
          belfry,
          baseline,
          ratio: baseline / belfry,
          unit: 'ms',
        });
      }
    }
    return rows;
  },
  summary(rows) {
    const [small, big] = SIZES as [number, number];
    return Object.values(labels).flatMap((label) => {
      const a = rows.find((r) => r.name === label && r.size === small);
      const b = rows.find((r) => r.name === label && r.size === big);
      if (!a || !b) return [];
      return [
        `${label}: ${big / small}× the records stored costs the index ${(b.belfry / a.belfry).toFixed(1)}×, the scan ${(b.baseline / a.baseline).toFixed(1)}×`,
      ];
    });
  },
};

export default suite;
