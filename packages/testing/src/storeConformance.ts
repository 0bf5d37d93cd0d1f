import {
  type Convoy,
  createTownModel,
  type IndexQuery,
  type LifecycleRequest,
  type Store,
  type StoredRecord,
  StoreError,
  type StoreTx,
  type TownModel,
} from '@belfry/core';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from './SimulatedClock';

/** Options of {@link runStoreConformance}. */
export interface StoreConformanceOptions {
  /**
   * A name for the describe block.
   * @defaultValue 'Store conformance'
   */
  name?: string;
  /**
   * Called after each test with the store it used (for example to delete a temporary file).
   * The suite closes the store itself first.
   */
  cleanup?: (store: Store) => void | Promise<void>;
  /**
   * Reopens a store on the same data, to check that records survive a restart. Stores with
   * nothing to reopen (memory) leave it out, and the restart tests reuse the same store.
   */
  reopen?: (store: Store) => Store | Promise<Store>;
}

interface Doc extends StoredRecord {
  id: string;
  n?: number;
  tag?: string;
  tags?: string[];
  nested?: { a: number[] };
}

function code(error: unknown): string | undefined {
  return error instanceof StoreError ? error.code : undefined;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail');
}

/**
 * Registers a vitest suite that every {@link Store} implementation runs against itself: the
 * record API, transactions (a failing one leaves nothing), index ordering, and the town model's
 * rules on top of the store (claim-then-act, convoy close and reopen, molecule resume, gates by
 * due time, report deduplication, ordering guarantees).
 *
 * The suite uses the collections of the town schema, so `makeStore` must open the store with it
 * (the default of `MemoryStore` and of the SQLite store).
 *
 * @param makeStore - makes a fresh, empty store; called once per test.
 * @param options - see {@link StoreConformanceOptions}.
 * @example
 * ```ts
 * // packages/store-foo/test/conformance.test.ts
 * import { runStoreConformance } from '@belfry/testing';
 * runStoreConformance(() => new FooStore({ path: tmpFile() }));
 * ```
 */
export function runStoreConformance(
  makeStore: () => Store | Promise<Store>,
  options: StoreConformanceOptions = {},
): void {
  const opened: Store[] = [];
  const fresh = async () => {
    const store = await makeStore();
    opened.push(store);
    return store;
  };
  const modelOn = (store: Store, clock = new SimulatedClock(1_000_000)) =>
    ({ model: createTownModel({ store, clock }), clock }) as {
      model: TownModel;
      clock: SimulatedClock;
    };
  const reopen = async (store: Store): Promise<Store> => {
    if (!options.reopen) return store;
    await store.close();
    const again = await options.reopen(store);
    opened.push(again);
    return again;
  };

  describe(options.name ?? 'Store conformance', () => {
    afterEach(async () => {
      for (const store of opened.splice(0)) {
        await store.close().catch(() => undefined);
        await options.cleanup?.(store);
      }
    });

    describe('records', () => {
      it('inserts, reads, updates and deletes records', async () => {
        const store = await fresh();
        await store.transaction(async (tx) => {
          await tx.insert<Doc>('respawns', { id: 'a', n: 1 });
          expect(await tx.get<Doc>('respawns', 'a')).toEqual({ id: 'a', n: 1 });
          await tx.update<Doc>('respawns', { id: 'a', n: 2 });
        });
        expect(await store.transaction((tx) => tx.get<Doc>('respawns', 'a'))).toEqual({
          id: 'a',
          n: 2,
        });
        expect(await store.transaction((tx) => tx.delete('respawns', 'a'))).toBe(true);
        expect(await store.transaction((tx) => tx.delete('respawns', 'a'))).toBe(false);
        expect(await store.transaction((tx) => tx.get('respawns', 'a'))).toBeUndefined();
      });

      it('refuses a duplicate insert and an update of a missing record', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.insert<Doc>('respawns', { id: 'a', n: 1 }));
        expect(
          code(
            await failure(store.transaction((tx) => tx.insert<Doc>('respawns', { id: 'a', n: 9 }))),
          ),
        ).toBe('DUPLICATE_ID');
        expect(
          code(
            await failure(store.transaction((tx) => tx.update<Doc>('respawns', { id: 'b', n: 1 }))),
          ),
        ).toBe('NOT_FOUND');
        expect(await store.transaction((tx) => tx.get<Doc>('respawns', 'a'))).toEqual({
          id: 'a',
          n: 1,
        });
      });

      it('keeps its own copy: changing what was written or read does not change the store', async () => {
        const store = await fresh();
        const doc: Doc = { id: 'a', tags: ['x'], nested: { a: [1] } };
        await store.transaction((tx) => tx.insert('respawns', doc));
        doc.tags?.push('y');
        (doc.nested as { a: number[] }).a.push(2);
        const read = (await store.transaction((tx) => tx.get<Doc>('respawns', 'a'))) as Doc;
        expect(read).toEqual({ id: 'a', tags: ['x'], nested: { a: [1] } });
        try {
          read.tags?.push('z');
        } catch {
          // frozen records throw; either way the store must not change
        }
        expect(await store.transaction((tx) => tx.get<Doc>('respawns', 'a'))).toEqual({
          id: 'a',
          tags: ['x'],
          nested: { a: [1] },
        });
      });

      it('drops undefined properties and refuses values JSON cannot carry, writing nothing', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.insert('respawns', { id: 'a', n: 1, gone: undefined }));
        expect(await store.transaction((tx) => tx.get('respawns', 'a'))).toEqual({ id: 'a', n: 1 });
        const cyclic: Record<string, unknown> = { id: 'c' };
        cyclic.self = cyclic;
        for (const bad of [
          { id: 'b', f: () => 1 },
          { id: 'b', n: Number.NaN },
          { id: 'b', when: new Date(0) },
          { id: 'b', list: [1, undefined] },
          cyclic,
        ]) {
          expect(
            code(await failure(store.transaction((tx) => tx.insert('respawns', bad as never)))),
          ).toBe('INVALID_RECORD');
        }
        for (const id of ['', 'has space', 'tab\t', 'é', 'x'.repeat(201)]) {
          expect(
            code(await failure(store.transaction((tx) => tx.insert('respawns', { id } as Doc)))),
          ).toBe('INVALID_RECORD');
        }
        expect(await store.transaction((tx) => tx.get('respawns', 'b'))).toBeUndefined();
        expect(await store.transaction((tx) => tx.get('respawns', 'c'))).toBeUndefined();
      });

      it('names unknown collections and indexes', async () => {
        const store = await fresh();
        expect(code(await failure(store.transaction((tx) => tx.get('nope', 'a'))))).toBe(
          'UNKNOWN_COLLECTION',
        );
        expect(code(await failure(store.transaction((tx) => tx.find('beads', 'nope'))))).toBe(
          'UNKNOWN_COLLECTION',
        );
      });

      it('records the schema version it was written with', async () => {
        const store = await fresh();
        expect(await store.schemaVersion()).toBe(store.schema.version);
      });

      it('keeps records across a reopen', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        await model.rigs.create({ name: 'api' });
        const bead = await model.beads.create({
          title: 'survive',
          rig: 'api',
          labels: ['x'],
          metadata: { k: [1, 'two'] },
        });
        const again = await reopen(store);
        const { model: after } = modelOn(again);
        expect(await after.beads.require(bead.id)).toEqual(bead);
        expect(await again.schemaVersion()).toBe(again.schema.version);
      });
    });

    describe('transactions', () => {
      it('applies nothing of a transaction that fails, and rethrows its error', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.insert<Doc>('respawns', { id: 'keep', n: 1 }));
        const boom = new Error('boom');
        const err = await failure(
          store.transaction(async (tx) => {
            await tx.insert<Doc>('respawns', { id: 'new', n: 1 });
            await tx.update<Doc>('respawns', { id: 'keep', n: 2 });
            await tx.delete('respawns', 'keep');
            await tx.nextSequence('s');
            throw boom;
          }),
        );
        expect(err).toBe(boom);
        await store.transaction(async (tx) => {
          expect(await tx.get('respawns', 'new')).toBeUndefined();
          expect(await tx.get<Doc>('respawns', 'keep')).toEqual({ id: 'keep', n: 1 });
          expect(await tx.nextSequence('s')).toBe(1);
        });
      });

      it('rolls back index entries with the records', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        const bead = await model.beads.create({ title: 'b' });
        await failure(
          model.transaction(async (m) => {
            await m.beads.setStatus(bead.id, 'done');
            throw new Error('undo');
          }),
        );
        expect((await model.beads.list({ status: 'done' })).length).toBe(0);
        expect((await model.beads.list({ status: 'open' })).map((b) => b.id)).toEqual([bead.id]);
      });

      it('sees its own writes inside the transaction', async () => {
        const store = await fresh();
        await store.transaction(async (tx) => {
          await tx.insert('rigs', {
            id: 'r1',
            state: 'operational',
            createdAt: 1,
            stateChangedAt: 1,
          });
          expect((await tx.find('rigs', 'byName')).map((r) => r.id)).toEqual(['r1']);
        });
      });

      it('runs concurrent transactions one at a time: no lost update', async () => {
        const store = await fresh();
        await store.transaction((tx) => tx.insert<Doc>('respawns', { id: 'counter', n: 0 }));
        await Promise.all(
          Array.from({ length: 20 }, () =>
            store.transaction(async (tx) => {
              const doc = (await tx.get<Doc>('respawns', 'counter')) as Doc;
              await new Promise((resolve) => setImmediate(resolve));
              await tx.update<Doc>('respawns', { id: 'counter', n: (doc.n ?? 0) + 1 });
            }),
          ),
        );
        expect(await store.transaction((tx) => tx.get<Doc>('respawns', 'counter'))).toEqual({
          id: 'counter',
          n: 20,
        });
      });

      it('refuses a transaction started inside another, and a tx used after its end', async () => {
        const store = await fresh();
        const err = await failure(store.transaction(() => store.transaction(async () => 1)));
        expect(code(err)).toBe('CONFLICT');
        let leaked: StoreTx | undefined;
        await store.transaction(async (tx) => {
          leaked = tx;
        });
        expect(code(await failure((leaked as StoreTx).get('respawns', 'a')))).toBe('CLOSED');
      });

      it('counts sequences from 1 without gaps, per name', async () => {
        const store = await fresh();
        const seen = await store.transaction(async (tx) => [
          await tx.nextSequence('a'),
          await tx.nextSequence('a'),
          await tx.nextSequence('b'),
        ]);
        expect(seen).toEqual([1, 2, 1]);
        expect(await store.transaction((tx) => tx.nextSequence('a'))).toBe(3);
      });

      it('fails every call after close with CLOSED', async () => {
        const store = await fresh();
        await store.close();
        expect(code(await failure(store.transaction((tx) => tx.get('respawns', 'a'))))).toBe(
          'CLOSED',
        );
      });
    });

    describe('index ordering', () => {
      async function seed(store: Store) {
        await store.transaction(async (tx) => {
          // Convoys' openByProgress index is keyed by lastProgressAt (a number); byBead is multi-valued.
          const convoy = (id: string, lastProgressAt: number, beadIds: string[]): Convoy => ({
            id,
            title: id,
            beadIds,
            status: 'open',
            openCount: 1,
            createdAt: 0,
            lastProgressAt,
          });
          await tx.insert('convoys', convoy('c3', 30, ['b1']));
          await tx.insert('convoys', convoy('c1', 10, ['b1', 'b2']));
          await tx.insert('convoys', convoy('c2', 20, ['b2']));
          await tx.insert('convoys', convoy('c0', 20, ['b3']));
        });
      }

      it('returns records in key order, ties by id, with bounds, limits and reverse', async () => {
        const store = await fresh();
        await seed(store);
        const ids = (tx: StoreTx, query?: IndexQuery) =>
          tx.find('convoys', 'openByProgress', query).then((records) => records.map((r) => r.id));
        await store.transaction(async (tx) => {
          expect(await ids(tx)).toEqual(['c1', 'c0', 'c2', 'c3']);
          expect(await ids(tx, { gte: [20] })).toEqual(['c0', 'c2', 'c3']);
          expect(await ids(tx, { lte: [20] })).toEqual(['c1', 'c0', 'c2']);
          expect(await ids(tx, { gte: [15], lte: [25] })).toEqual(['c0', 'c2']);
          expect(await ids(tx, { limit: 2 })).toEqual(['c1', 'c0']);
          expect(await ids(tx, { reverse: true })).toEqual(['c3', 'c2', 'c0', 'c1']);
          expect(await ids(tx, { reverse: true, lte: [20], limit: 2 })).toEqual(['c2', 'c0']);
          expect(await tx.count('convoys', 'openByProgress', { lte: [20] })).toBe(3);
          expect(await tx.count('convoys', 'openByProgress')).toBe(4);
        });
      });

      it('finds by every key of a multi-valued index, and moves records between keys on update', async () => {
        const store = await fresh();
        await seed(store);
        await store.transaction(async (tx) => {
          const byBead = async (bead: string) =>
            (await tx.find('convoys', 'byBead', { prefix: [bead] })).map((r) => r.id);
          expect(await byBead('b1')).toEqual(['c1', 'c3']);
          expect(await byBead('b2')).toEqual(['c1', 'c2']);
          const c1 = (await tx.get<Convoy>('convoys', 'c1')) as Convoy;
          await tx.update('convoys', { ...c1, beadIds: ['b3'], status: 'closed' });
          expect(await byBead('b1')).toEqual(['c3']);
          expect(await byBead('b3')).toEqual(['c0', 'c1']);
          // A closed convoy leaves the partial index of open ones.
          expect((await tx.find('convoys', 'openByProgress')).map((r) => r.id)).toEqual([
            'c0',
            'c2',
            'c3',
          ]);
        });
      });

      it('keeps a string prefix from matching longer strings', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        await model.rigs.create({ name: 'ab' });
        await model.rigs.create({ name: 'a' });
        await model.beads.create({ title: 'in ab', rig: 'ab' });
        const inA = await model.beads.create({ title: 'in a', rig: 'a' });
        expect((await model.beads.list({ rig: 'a' })).map((b) => b.id)).toEqual([inA.id]);
      });

      it('orders numbers as numbers, negatives and large values included', async () => {
        const store = await fresh();
        // Neighbours everywhere in the safe range, listed largest first: equal keys fall back to
        // id order (ascending here), so an encoding that rounds two neighbours together shows.
        const times = [
          Number.MAX_SAFE_INTEGER,
          Number.MAX_SAFE_INTEGER - 1,
          2 ** 52 + 1,
          2 ** 52,
          1_700_000_000_001,
          1_700_000_000_000,
          5,
          2,
          1,
          0,
          -1,
          -3,
          -(2 ** 52) + 1,
          -(2 ** 52),
          Number.MIN_SAFE_INTEGER + 1,
          Number.MIN_SAFE_INTEGER,
        ];
        await store.transaction(async (tx) => {
          for (const [i, t] of times.entries()) {
            await tx.insert('convoys', {
              id: `c${i}`,
              title: 't',
              beadIds: [],
              status: 'open',
              openCount: 0,
              createdAt: 0,
              lastProgressAt: t,
            });
          }
          const got = (await tx.find<Convoy>('convoys', 'openByProgress')).map(
            (c) => c.lastProgressAt,
          );
          expect(got).toEqual([...times].sort((a, b) => a - b));
        });
      });
    });

    describe('town rules on this store', () => {
      it('lets one of two concurrent claimers win a lifecycle request (claim-then-act)', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        const req = await model.lifecycle.request({
          action: 'restart',
          target: 'api/toast',
          requestedBy: 'mayor',
        });
        const [a, b] = await Promise.all([
          model.lifecycle.claimNext({ claimer: 'daemon-1', leaseMs: 60_000 }),
          model.lifecycle.claimNext({ claimer: 'daemon-2', leaseMs: 60_000 }),
        ]);
        const winners = [a, b].filter((r): r is LifecycleRequest => r !== undefined);
        expect(winners).toHaveLength(1);
        expect(winners[0]?.id).toBe(req.id);
        const token = winners[0]?.claim?.token as string;
        const done = await model.lifecycle.complete(req.id, { token, result: { ok: true } });
        expect(done.status).toBe('done');
        expect(code(await failure(model.lifecycle.complete(req.id, { token })))).toBe('CONFLICT');
      });

      it('hands an expired claim to the next claimer, and refuses the old token', async () => {
        const store = await fresh();
        const { model, clock } = modelOn(store);
        const req = await model.lifecycle.request({
          action: 'stop',
          target: 'api/nux',
          requestedBy: 'mayor',
        });
        const first = await model.lifecycle.claimNext({ claimer: 'w1', leaseMs: 1_000 });
        expect(await model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 1_000 })).toBeUndefined();
        clock.advanceSync(1_000);
        const second = await model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 1_000 });
        expect(second).toMatchObject({ id: req.id, attempts: 2, claim: { by: 'w2' } });
        expect(
          code(
            await failure(
              model.lifecycle.fail(req.id, { token: first?.claim?.token as string, error: 'late' }),
            ),
          ),
        ).toBe('CONFLICT');
        await model.lifecycle.fail(req.id, {
          token: second?.claim?.token as string,
          error: 'no such session',
        });
        expect(await model.lifecycle.pending()).toEqual([]);
      });

      it('serves lifecycle requests first in, first out, and filters by action', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        for (const name of ['api', 'web']) await model.rigs.create({ name });
        const ids: string[] = [];
        for (const [action, target] of [
          ['park', 'api'],
          ['start', 'api/a'],
          ['stop', 'api/b'],
          ['park', 'web'],
        ] as const) {
          ids.push((await model.lifecycle.request({ action, target, requestedBy: 'op' })).id);
        }
        expect((await model.lifecycle.pending()).map((r) => r.id)).toEqual(ids);
        const sessionWork = await model.lifecycle.claimNext({
          claimer: 'daemon',
          leaseMs: 1_000,
          actions: ['start', 'stop', 'restart'],
        });
        expect(sessionWork?.id).toBe(ids[1]);
        const rigWork = await model.lifecycle.claimNext({
          claimer: 'deacon',
          leaseMs: 1_000,
          actions: ['park'],
        });
        expect(rigWork?.id).toBe(ids[0]);
        expect((await model.lifecycle.pending()).map((r) => r.id)).toEqual(ids);
      });

      it('closes a convoy once all its beads are terminal and reopens it when one reopens', async () => {
        const store = await fresh();
        const { model, clock } = modelOn(store);
        const a = await model.beads.create({ title: 'a' });
        const b = await model.beads.create({ title: 'b' });
        const convoy = await model.convoys.create({ title: 'release', beadIds: [a.id, b.id] });
        await model.beads.setStatus(a.id, 'done');
        expect(await model.convoys.finished()).toEqual([]);
        clock.advanceSync(10);
        await model.beads.setStatus(b.id, 'wontfix');
        expect((await model.convoys.finished()).map((c) => c.id)).toEqual([convoy.id]);
        const closed = await model.convoys.closeFinished();
        expect(closed.map((c) => [c.id, c.status, c.closedAt])).toEqual([
          [convoy.id, 'closed', 1_000_010],
        ]);
        expect(await model.convoys.finished()).toEqual([]);
        clock.advanceSync(10);
        await model.beads.setStatus(a.id, 'open');
        expect(await model.convoys.require(convoy.id)).toMatchObject({
          status: 'open',
          openCount: 1,
          reopenedAt: 1_000_020,
          lastProgressAt: 1_000_020,
        });
        expect((await model.convoys.open()).map((c) => c.id)).toEqual([convoy.id]);
      });

      it('resumes a molecule at its next step after a restart, and refuses a duplicate step', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        const mol = await model.molecules.create({
          name: 'patrol',
          steps: [{ name: 'one' }, { name: 'two' }, { name: 'three' }],
        });
        const run = await model.molecules.dispatch(mol.id, { by: 'deacon' });
        await model.molecules.completeStep(mol.id, { step: 0, epoch: run.epoch, result: 'ok' });
        // The runner crashes here; a new process opens the same store.
        const { model: after } = modelOn(await reopen(store));
        const [unfinished] = await after.molecules.list({ status: 'running', name: 'patrol' });
        expect(unfinished).toMatchObject({
          id: mol.id,
          cursor: 1,
          completed: [{ step: 0, name: 'one', result: 'ok' }],
        });
        expect(
          code(await failure(after.molecules.completeStep(mol.id, { step: 0, epoch: run.epoch }))),
        ).toBe('CONFLICT');
        await after.molecules.completeStep(mol.id, { step: 1, epoch: run.epoch });
        const done = await after.molecules.completeStep(mol.id, { step: 2, epoch: run.epoch });
        expect(done).toMatchObject({ status: 'done', cursor: 3 });
        expect(done.completed.map((c) => c.name)).toEqual(['one', 'two', 'three']);
      });

      it('releases a molecule waiting on a gate when the gate closes, exactly once', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        const mol = await model.molecules.create({
          name: 'deploy',
          steps: [
            { name: 'approve', gate: { type: 'human', spec: { prompt: 'ship it?' } } },
            { name: 'ship' },
          ],
        });
        expect(mol.status).toBe('waiting');
        const gate = await model.gates.require(mol.waitingOn as string);
        expect(gate.waiters).toEqual([mol.id]);
        const { released } = await model.gates.close(gate.id, { by: 'ann' });
        expect(released.map((m) => [m.id, m.status])).toEqual([[mol.id, 'ready']]);
        expect(code(await failure(model.gates.close(gate.id)))).toBe('INVALID_TRANSITION');
        const [a, b] = await Promise.allSettled([
          model.molecules.dispatch(mol.id, { by: 'deacon-1' }),
          model.molecules.dispatch(mol.id, { by: 'deacon-2' }),
        ]);
        expect([a.status, b.status].sort()).toEqual(['fulfilled', 'rejected']);
      });

      it('lists open gates due by time, earliest first, by type, and overdue ones', async () => {
        const store = await fresh();
        const { model, clock } = modelOn(store);
        const t30 = await model.gates.create({ type: 'timer', spec: { durationMs: 30 } });
        const t10 = await model.gates.create({ type: 'timer', spec: { durationMs: 10 } });
        const gh = await model.gates.create({
          type: 'gh:run',
          spec: { owner: 'o', repo: 'r', runId: 1 },
          timeoutMs: 20,
        });
        const human = await model.gates.create({ type: 'human', spec: {} });
        expect((await model.gates.due()).map((g) => g.id)).toEqual([gh.id]);
        clock.advanceSync(20);
        expect((await model.gates.due()).map((g) => g.id)).toEqual([gh.id, t10.id]);
        expect((await model.gates.due({ type: 'timer' })).map((g) => g.id)).toEqual([t10.id]);
        expect((await model.gates.overdue()).map((g) => g.id)).toEqual([gh.id]);
        await model.gates.reschedule(gh.id, clock.now() + 100);
        await model.gates.close(t10.id, 'expired');
        clock.advanceSync(10);
        expect((await model.gates.due()).map((g) => g.id)).toEqual([t30.id]);
        expect((await model.gates.open({ type: 'human' })).map((g) => g.id)).toEqual([human.id]);
        expect(await model.gates.open()).toHaveLength(3);
      });

      it('deduplicates reports by incident key until the incident is resolved', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        const input = {
          incidentKey: 'gate-timeout:g1',
          severity: 'medium' as const,
          title: 'gate g1 overdue',
          source: 'deacon',
        };
        const first = await model.reports.file(input);
        const second = await model.reports.file({ ...input, severity: 'high' });
        const third = await model.reports.file({ ...input, severity: 'low' });
        expect([first.created, second.created, third.created]).toEqual([true, false, false]);
        expect(third.report).toMatchObject({ id: first.report.id, count: 3, severity: 'high' });
        expect(await model.reports.open()).toHaveLength(1);
        await model.reports.resolve(input.incidentKey);
        const fourth = await model.reports.file(input);
        expect(fourth.created).toBe(true);
        expect(fourth.report.id).not.toBe(first.report.id);
      });

      it('executes a warrant once and keeps one pending warrant per target', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        await model.rigs.create({ name: 'api' });
        const bead = await model.beads.create({ title: 'stuck work', rig: 'api' });
        await model.polecats.sling(bead.id, 'api', { names: ['toast'] });
        const a = await model.warrants.file({
          target: 'api/toast',
          reason: 'stuck 2h',
          filedBy: 'deacon',
        });
        const again = await model.warrants.file({
          target: 'api/toast',
          reason: 'still stuck',
          filedBy: 'witness',
        });
        expect(again).toEqual({ warrant: a.warrant, created: false });
        expect((await model.warrants.pending()).map((w) => w.id)).toEqual([a.warrant.id]);
        const executed = await model.warrants.execute(a.warrant.id, { by: 'boot' });
        // Released in the same transaction: the bead is back in the pool, the hook is empty.
        expect(executed.outcome?.released).toEqual({ beadId: bead.id, status: 'open' });
        expect(await model.hooks.get('api/toast')).toBeUndefined();
        expect((await model.beads.require(bead.id)).status).toBe('open');
        expect(code(await failure(model.warrants.execute(a.warrant.id, { by: 'boot' })))).toBe(
          'INVALID_TRANSITION',
        );
        expect(await model.warrants.pending()).toEqual([]);
      });

      it('writes nothing of an operation it refuses', async () => {
        const store = await fresh();
        const { model } = modelOn(store);
        const bead = await model.beads.create({ title: 'real' });
        expect(
          code(
            await failure(
              model.convoys.create({ title: 'half', beadIds: [bead.id, 'bd-missing'] }),
            ),
          ),
        ).toBe('NOT_FOUND');
        expect(await model.convoys.open()).toEqual([]);
        expect(
          code(
            await failure(model.hooks.attach({ agent: 'api/x', beadId: bead.id, rig: 'ghost' })),
          ),
        ).toBe('NOT_FOUND');
        expect(await model.beads.require(bead.id)).toEqual(bead);
      });
    });
  });
}
