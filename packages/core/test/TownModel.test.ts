import {
  createTownModel,
  DEFAULT_STATUSES,
  DEFAULT_TERMINAL_STATUSES,
  MemoryStore,
  realClock,
  StoreError,
  type TownModelOptions,
  townSchema,
} from '@belfry/core';
import { describe, expect, it } from 'vitest';
import {
  expectConfigError,
  expectStoreError,
  failure,
  ids,
  makeTown,
  T0,
  TrackingStore,
} from './modelHelpers';

function create(options: unknown) {
  return () => createTownModel(options as TownModelOptions);
}

describe('TownModel', () => {
  describe('options', () => {
    it('opens on a store with the town schema, with the documented defaults', async () => {
      const store = new MemoryStore();
      const model = createTownModel({ store });
      expect(model.store).toBe(store);
      expect(model.clock).toBe(realClock);
      expect(await model.schemaVersion()).toBe(townSchema.version);
      expect(DEFAULT_STATUSES).toEqual([
        'open',
        'in_progress',
        'blocked',
        'hooked',
        'done',
        'wontfix',
      ]);
      expect(DEFAULT_TERMINAL_STATUSES).toEqual(['done', 'wontfix']);
      expect(DEFAULT_STATUSES.filter((s) => model.isTerminal(s))).toEqual(['done', 'wontfix']);
    });

    it('refuses an unknown option, naming the allowed ones', async () => {
      await expectConfigError(
        create({ store: new MemoryStore(), beadPrefx: 'tk' }),
        'options.beadPrefx',
        {
          code: 'UNKNOWN_OPTION',
          message: 'allowed: store, clock, statuses, terminalStatuses, gateTypes, beadPrefix',
        },
      );
    });

    it('refuses options that are not an object, and a missing or fake store', async () => {
      await expectConfigError(create(undefined), 'options', { message: 'must be an object' });
      await expectConfigError(create({}), 'options.store', {
        code: 'MISSING_OPTION',
        message: 'must be a Store',
      });
      await expectConfigError(create({ store: { schema: townSchema } }), 'options.store', {
        code: 'MISSING_OPTION',
      });
    });

    it('refuses a store opened with another schema or version', async () => {
      const other = new MemoryStore({ schema: { name: 'acme.jobs', version: 1, collections: {} } });
      await expectConfigError(create({ store: other }), 'options.store', {
        message: `must be opened with the town schema (belfry.town v${townSchema.version}); it holds acme.jobs v1`,
      });
      const newer = new MemoryStore({ schema: { ...townSchema, version: townSchema.version + 1 } });
      await expectConfigError(create({ store: newer }), 'options.store', {
        message: `it holds belfry.town v${townSchema.version + 1}`,
      });
    });

    it('refuses a clock without now/setTimeout/clearTimeout', async () => {
      await expectConfigError(
        create({ store: new MemoryStore(), clock: { now: () => 1 } }),
        'options.clock',
      );
    });

    it("refuses statuses without 'open' or 'hooked', empty, repeated or badly named", async () => {
      const store = new MemoryStore();
      const statuses = (value: unknown) => create({ store, statuses: value });
      await expectConfigError(statuses(['hooked', 'done']), 'options.statuses', {
        message: "must include 'open'",
      });
      await expectConfigError(statuses(['open', 'done']), 'options.statuses', {
        message: "must include 'hooked'",
      });
      await expectConfigError(statuses([]), 'options.statuses', {
        message: 'must be a non-empty array of statuses',
      });
      await expectConfigError(statuses(['open', 'hooked', 'open']), 'options.statuses[2]', {
        message: 'status "open" is listed twice',
      });
      await expectConfigError(statuses(['open', 'In Review', 'hooked']), 'options.statuses[1]', {
        message: 'must be a status name',
      });
    });

    it('refuses a terminal status that is not a status, or that is open or hooked', async () => {
      const store = new MemoryStore();
      const statuses = ['open', 'hooked', 'merged', 'abandoned'];
      await expectConfigError(
        create({ store, statuses, terminalStatuses: ['merged', 'done'] }),
        'options.terminalStatuses[1]',
        { message: '"done" is not one of options.statuses' },
      );
      // Custom statuses without terminalStatuses fall back to done/wontfix, which they lack.
      await expectConfigError(create({ store, statuses }), 'options.terminalStatuses[0]');
      await expectConfigError(
        create({ store, terminalStatuses: ['done', 'hooked'] }),
        'options.terminalStatuses[1]',
        { message: "'hooked' cannot be terminal" },
      );
      await expectConfigError(
        create({ store, terminalStatuses: ['open'] }),
        'options.terminalStatuses[0]',
        { message: "'open' cannot be terminal" },
      );
      await expectConfigError(create({ store, terminalStatuses: [] }), 'options.terminalStatuses');
    });

    it('refuses a bad beadPrefix', async () => {
      const store = new MemoryStore();
      for (const beadPrefix of ['', 'BD', '1bd', 'b-d', 'toolongpx', 7]) {
        await expectConfigError(create({ store, beadPrefix }), 'options.beadPrefix', {
          message: 'must be 1 to 8 lowercase letters and digits, starting with a letter',
        });
      }
      expect(createTownModel({ store, beadPrefix: 'abcd1234' })).toBeDefined();
    });
  });

  describe('transaction', () => {
    it('applies every operation of a transaction together and returns its value', async () => {
      const { model } = makeTown();
      const result = await model.transaction(async (m) => {
        await m.rigs.create({ name: 'api' });
        const bead = await m.beads.create({ title: 't', rig: 'api' });
        const hook = await m.hooks.attach({ agent: 'api/toast', beadId: bead.id, rig: 'api' });
        // Reads inside see the transaction's own writes.
        expect((await m.beads.require(bead.id)).status).toBe('hooked');
        return { bead, hook };
      });
      expect(result.hook.epoch).toBe(1);
      expect(await model.hooks.byBead(result.bead.id)).toEqual(result.hook);
    });

    it('rolls back everything when the function throws, convoy counters and hook epochs included', async () => {
      const town = makeTown();
      const { model, clock } = town;
      await model.rigs.create({ name: 'api' });
      const bead = await model.beads.create({ id: 'b1', title: 't', rig: 'api' });
      const other = await model.beads.create({ id: 'b2', title: 'u', rig: 'api' });
      const convoy = await model.convoys.create({ title: 'r', beadIds: [bead.id, other.id] });
      const first = await model.hooks.attach({ agent: 'api/toast', beadId: bead.id, rig: 'api' });
      await model.hooks.detach('api/toast');
      const request = await model.lifecycle.request({
        action: 'park',
        target: 'api',
        requestedBy: 'mayor',
      });
      const before = await town.snapshot();

      clock.advanceSync(100);
      const boom = new Error('crashed half-way');
      const error = await failure(() =>
        model.transaction(async (m) => {
          const hook = await m.hooks.attach({ agent: 'api/nux', beadId: bead.id, rig: 'api' });
          expect(hook.epoch).toBe(first.epoch + 1);
          // Filed while api/nux holds the bead: a warrant needs an agent the town knows.
          await m.warrants.file({ target: 'api/nux', reason: 'r', filedBy: 'deacon' });
          await m.hooks.detach('api/nux', { status: 'done' });
          await m.beads.setStatus(other.id, 'wontfix');
          expect(await m.convoys.require(convoy.id)).toMatchObject({ openCount: 0 });
          expect(ids(await m.convoys.closeFinished())).toEqual([convoy.id]);
          const claim = await m.lifecycle.claimNext({ claimer: 'deacon', leaseMs: 1_000 });
          await m.rigs.park('api');
          await m.lifecycle.complete(request.id, { token: claim?.claim?.token as string });
          await m.respawns.increment(bead.id);
          throw boom;
        }),
      );
      expect(error).toBe(boom);
      expect(await town.snapshot()).toEqual(before);
      expect(await model.convoys.require(convoy.id)).toEqual(convoy);
      expect((await model.rigs.require('api')).state).toBe('operational');
      expect(await model.respawns.count(bead.id)).toBe(0);
      // The epoch taken by the rolled-back attach is handed out again.
      const next = await model.hooks.attach({ agent: 'api/nux', beadId: bead.id, rig: 'api' });
      expect(next.epoch).toBe(first.epoch + 1);
    });

    it('rolls back earlier operations when a later one is refused', async () => {
      const town = makeTown();
      const { model } = town;
      await model.rigs.create({ name: 'api' });
      await model.rigs.dock('api');
      const before = await town.snapshot();
      await expectStoreError(
        () =>
          model.transaction(async (m) => {
            await m.beads.create({ title: 'written first', rig: 'api' });
            await m.rigs.park('api'); // refused: docked
          }),
        'INVALID_TRANSITION',
      );
      expect(await town.snapshot()).toEqual(before);
      expect(await model.beads.list({ rig: 'api' })).toEqual([]);
    });

    it('joins a transaction started inside another: the inner one commits or rolls back with the outer', async () => {
      const town = makeTown();
      const { model } = town;
      const before = await town.snapshot();
      await failure(() =>
        model.transaction(async (outer) => {
          await outer.rigs.create({ name: 'api' });
          await outer.transaction(async (inner) => {
            expect(inner).toBe(outer);
            // The inner one sees the outer one's writes.
            expect((await inner.rigs.require('api')).state).toBe('operational');
            await inner.beads.create({ id: 'b1', title: 'inner', rig: 'api' });
          });
          throw new Error('outer fails after the inner one finished');
        }),
      );
      expect(await town.snapshot()).toEqual(before);
      expect(await model.rigs.get('api')).toBeUndefined();
      expect(await model.beads.get('b1')).toBeUndefined();

      await model.transaction(async (outer) => {
        await outer.rigs.create({ name: 'api' });
        await outer.transaction((inner) =>
          inner.beads.create({ id: 'b1', title: 'x', rig: 'api' }),
        );
      });
      expect((await model.beads.require('b1')).rig).toBe('api');
    });

    it('fails fast, instead of waiting forever, when the outer model is used inside a transaction', async () => {
      const { model } = makeTown();
      const error = await failure(() =>
        model.transaction(async () => {
          await model.rigs.create({ name: 'api' });
        }),
      );
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('CONFLICT');
      expect(await model.rigs.get('api')).toBeUndefined();
    });

    it('keeps working on the same store from a second model', async () => {
      const store = new TrackingStore();
      const one = makeTown({ store });
      const two = makeTown({ store });
      await one.model.rigs.create({ name: 'api' });
      expect(await two.model.rigs.require('api')).toMatchObject({ createdAt: T0 });
    });
  });
});
