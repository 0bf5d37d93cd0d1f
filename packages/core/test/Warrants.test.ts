import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectNoWrite,
  expectRefused,
  generatedId,
  ids,
  makeTown,
  T0,
  type TestTown,
} from './modelHelpers';

const STUCK = { target: 'api/toast', reason: 'no output for 2h', filedBy: 'deacon' };

/** A model whose rigs have polecats, each holding a bead: `api/toast`, `api/nux`, `web/zed`, `db/mole`. */
async function agents(town: TestTown = makeTown()) {
  const hooks: Record<string, { beadId: string; epoch: number }> = {};
  for (const agent of ['api/toast', 'api/nux', 'web/zed', 'db/mole']) {
    const [rig, name] = agent.split('/') as [string, string];
    if (!(await town.model.rigs.get(rig))) await town.model.rigs.create({ name: rig });
    const bead = await town.model.beads.create({ title: `work of ${agent}`, rig });
    const { hook } = await town.model.polecats.sling(bead.id, rig, { names: [name] });
    hooks[agent] = { beadId: hook.beadId, epoch: hook.epoch };
  }
  return { ...town, hooks };
}

describe('Warrants', () => {
  describe('file', () => {
    it('files a pending warrant stamped by the clock, recording the work on the target’s hook', async () => {
      const { model, clock, hooks } = await agents();
      clock.advanceSync(10);
      const { warrant, created } = await model.warrants.file(STUCK);
      expect(created).toBe(true);
      expect(warrant.id).toMatch(generatedId('wr'));
      expect(warrant).toStrictEqual({
        id: warrant.id,
        ...STUCK,
        rig: 'api',
        release: 'open',
        beadId: hooks['api/toast']?.beadId,
        hookEpoch: hooks['api/toast']?.epoch,
        filedAt: T0 + 10,
        status: 'pending',
      });
      expect(await model.warrants.get(warrant.id)).toEqual(warrant);
      expect(await model.warrants.pending()).toEqual([warrant]);
    });

    it('returns the pending warrant when the same target is filed again, writing nothing', async () => {
      const town = await agents();
      const first = await town.model.warrants.file(STUCK);
      town.clock.advanceSync(60_000);
      const again = await expectNoWrite(town, () =>
        town.model.warrants.file({ ...STUCK, reason: 'still stuck', filedBy: 'witness' }),
      );
      expect(again).toEqual({ warrant: first.warrant, created: false });
    });

    it('keeps one pending warrant per target even when filed concurrently', async () => {
      const { model } = await agents();
      const results = await Promise.all([
        model.warrants.file(STUCK),
        model.warrants.file({ ...STUCK, filedBy: 'witness' }),
        model.warrants.file({ ...STUCK, target: 'api/nux' }),
      ]);
      expect(results.map((r) => r.created)).toEqual([true, false, true]);
      expect(results[1]?.warrant).toEqual(results[0]?.warrant);
      expect(await model.warrants.pending()).toHaveLength(2);
    });

    it('refuses bad fields with a ConfigError at the field', async () => {
      const town = await agents();
      const file = (input: unknown) => () => town.model.warrants.file(input as never);
      await expectInvalid(town, file({ ...STUCK, target: 'bad target' }), 'warrant.target');
      await expectInvalid(town, file({ ...STUCK, target: 'toast' }), 'warrant.target', {
        message: /must be an agent id '<rig>\/<name>'/,
      });
      await expectInvalid(town, file({ ...STUCK, reason: '' }), 'warrant.reason');
      await expectInvalid(town, file({ ...STUCK, filedBy: undefined }), 'warrant.filedBy');
      await expectInvalid(town, file({ ...STUCK, release: 'done' }), 'warrant.release', {
        message: /must be one of open, blocked; got "done"/,
      });
      await expectInvalid(town, file(undefined), 'warrant.target');
    });

    it('records release: blocked, and refuses it in a town without a blocked status', async () => {
      const { model } = await agents();
      const { warrant } = await model.warrants.file({ ...STUCK, release: 'blocked' });
      expect(warrant.release).toBe('blocked');

      const plain = makeTown({ statuses: ['open', 'hooked', 'done'], terminalStatuses: ['done'] });
      await agents(plain);
      await expectInvalid(
        plain,
        () => plain.model.warrants.file({ ...STUCK, release: 'blocked' }),
        'warrant.release',
        { message: /'blocked' is not a bead status of this town/ },
      );
    });

    it('refuses a warrant against an agent the town does not know with NOT_FOUND naming it', async () => {
      const town = await agents();
      await expectRefused(
        town,
        () => town.model.warrants.file({ ...STUCK, target: 'api/ghost' }),
        'NOT_FOUND',
        'unknown agent "api/ghost"; known: api/nux, api/toast',
      );
      await expectRefused(
        town,
        () => town.model.warrants.file({ ...STUCK, target: 'nowhere/ghost' }),
        'NOT_FOUND',
        'unknown agent "nowhere/ghost"; there are none',
      );
    });

    it('files against an idle polecat (no work recorded) and against a hook holder without a polecat', async () => {
      const { model, hooks } = await agents();
      await model.hooks.detach('api/nux');
      const idle = await model.warrants.file({ ...STUCK, target: 'api/nux' });
      expect(idle.warrant).not.toHaveProperty('beadId');
      expect(idle.warrant).not.toHaveProperty('hookEpoch');
      const bead = await model.beads.create({ title: 'by hand', rig: 'api' });
      const hook = await model.hooks.attach({ agent: 'api/hand', beadId: bead.id, rig: 'api' });
      const held = await model.warrants.file({ ...STUCK, target: 'api/hand' });
      expect(held.warrant).toMatchObject({ rig: 'api', beadId: bead.id, hookEpoch: hook.epoch });
      expect(hooks['api/nux']).toBeDefined();
    });
  });

  describe('execution', () => {
    it('releases the warranted bead to the pool and records the outcome, in one transaction', async () => {
      const { model, clock, hooks } = await agents();
      const { beadId } = hooks['api/toast'] as { beadId: string };
      const { epoch } = await model.polecats.beginSpawn('api/toast', beadId);
      await model.polecats.markStarted('api/toast', epoch);
      const { warrant } = await model.warrants.file(STUCK);
      clock.advanceSync(10);
      const stopping = await model.warrants.beginStop(warrant.id);
      expect(stopping).toMatchObject({ status: 'pending', stoppingAt: T0 + 10 });
      // Idempotent: a run after a crash finds it begun and keeps the first time.
      clock.advanceSync(10);
      expect(await model.warrants.beginStop(warrant.id)).toEqual(stopping);
      expect(await model.warrants.pendingFor('api/toast')).toEqual(stopping);

      const executed = await model.warrants.execute(warrant.id, {
        by: 'deacon',
        session: 'api-toast',
      });
      expect(executed).toMatchObject({
        status: 'executed',
        executedAt: T0 + 20,
        executedBy: 'deacon',
        outcome: {
          session: 'api-toast',
          released: { beadId, status: 'open' },
          summary: `session api-toast stopped; bead ${beadId} released as open`,
        },
      });
      expect(await model.hooks.get('api/toast')).toBeUndefined();
      const bead = await model.beads.require(beadId);
      expect(bead.status).toBe('open');
      expect(bead).not.toHaveProperty('assignee');
      // An operator's stop is not a crash: slung again, the bead's next spawn is no respawn.
      await model.polecats.sling(beadId, 'api', { names: ['toast'] });
      expect((await model.polecats.beginSpawn('api/toast', beadId)).respawn).toBe(false);
      expect(await model.warrants.pendingFor('api/toast')).toBeUndefined();
    });

    it('release: blocked takes the bead off the hook as blocked', async () => {
      const { model, hooks } = await agents();
      const { warrant } = await model.warrants.file({ ...STUCK, release: 'blocked' });
      const executed = await model.warrants.execute(warrant.id, { by: 'deacon' });
      const beadId = hooks['api/toast']?.beadId as string;
      expect(executed.outcome).toEqual({
        session: null,
        released: { beadId, status: 'blocked' },
        summary: `nothing stopped; bead ${beadId} released as blocked`,
      });
      expect((await model.beads.require(beadId)).status).toBe('blocked');
    });

    it('releases nothing of the new work of a target that moved on', async () => {
      const { model, hooks } = await agents();
      const { warrant } = await model.warrants.file(STUCK);
      const old = hooks['api/toast']?.beadId as string;
      await model.hooks.detach('api/toast', { status: 'done' });
      const next = await model.beads.create({ title: 'next', rig: 'api' });
      const hook = await model.polecats.sling(next.id, 'api', { names: ['toast'] });
      expect(hook.polecat.id).toBe('api/toast');

      const executed = await model.warrants.execute(warrant.id, { by: 'deacon' });
      expect(executed.outcome).toEqual({
        session: null,
        released: null,
        summary: `nothing stopped; api/toast no longer holds bead ${old} (it holds bead ${next.id} now): nothing released`,
      });
      expect((await model.hooks.get('api/toast'))?.beadId).toBe(next.id);
      expect((await model.beads.require(next.id)).status).toBe('hooked');
      expect((await model.beads.require(old)).status).toBe('done');
    });

    it('the same bead hooked again (a new epoch) is new work: nothing released', async () => {
      const { model, hooks } = await agents();
      const { warrant } = await model.warrants.file(STUCK);
      const beadId = hooks['api/toast']?.beadId as string;
      await model.hooks.detach('api/toast');
      await model.polecats.sling(beadId, 'api', { names: ['toast'] });
      const executed = await model.warrants.execute(warrant.id, { by: 'deacon' });
      expect(executed.outcome?.released).toBeNull();
      expect((await model.hooks.get('api/toast'))?.beadId).toBe(beadId);
    });

    it('beginStop is refused once the warrant is executed or cancelled', async () => {
      const town = await agents();
      const { warrant } = await town.model.warrants.file(STUCK);
      await town.model.warrants.execute(warrant.id, { by: 'deacon' });
      await expectRefused(
        town,
        () => town.model.warrants.beginStop(warrant.id),
        'INVALID_TRANSITION',
        /was already executed/,
      );
    });
  });

  describe('execute and cancel', () => {
    it('executes a pending warrant once, recording who and when', async () => {
      const town = await agents();
      const { warrant } = await town.model.warrants.file(STUCK);
      town.clock.advanceSync(10);
      const executed = await town.model.warrants.execute(warrant.id, { by: 'boot' });
      expect(executed).toStrictEqual({
        ...warrant,
        status: 'executed',
        executedAt: T0 + 10,
        executedBy: 'boot',
        outcome: {
          session: null,
          released: { beadId: warrant.beadId, status: 'open' },
          summary: `nothing stopped; bead ${warrant.beadId} released as open`,
        },
      });
      expect(await town.model.warrants.get(warrant.id)).toEqual(executed);
      expect(await town.model.warrants.pending()).toEqual([]);

      town.clock.advanceSync(10);
      await expectRefused(
        town,
        () => town.model.warrants.execute(warrant.id, { by: 'boot-2' }),
        'INVALID_TRANSITION',
        `warrant ${warrant.id} was already executed at ${T0 + 10}`,
      );
      await expectRefused(
        town,
        () => town.model.warrants.cancel(warrant.id),
        'INVALID_TRANSITION',
        /was already executed/,
      );
    });

    it('cancels a pending warrant, which then cannot be executed', async () => {
      const town = await agents();
      const { warrant } = await town.model.warrants.file(STUCK);
      town.clock.advanceSync(10);
      const cancelled = await town.model.warrants.cancel(warrant.id);
      expect(cancelled).toStrictEqual({ ...warrant, status: 'cancelled', cancelledAt: T0 + 10 });
      expect(await town.model.warrants.pending()).toEqual([]);
      await expectRefused(
        town,
        () => town.model.warrants.execute(warrant.id, { by: 'boot' }),
        'INVALID_TRANSITION',
        `warrant ${warrant.id} was already cancelled at ${T0 + 10}`,
      );
      await expectRefused(town, () => town.model.warrants.cancel(warrant.id), 'INVALID_TRANSITION');
    });

    it('lets a new warrant be filed for a target once its previous one is finished', async () => {
      const { model, clock } = await agents();
      const first = await model.warrants.file(STUCK);
      await model.warrants.execute(first.warrant.id, { by: 'boot' });
      clock.advanceSync(10);
      const second = await model.warrants.file({ ...STUCK, reason: 'stuck again' });
      expect(second.created).toBe(true);
      expect(second.warrant).toMatchObject({
        target: STUCK.target,
        reason: 'stuck again',
        status: 'pending',
        filedAt: T0 + 10,
      });
      expect(second.warrant.id).not.toBe(first.warrant.id);
      await model.warrants.cancel(second.warrant.id);
      const third = await model.warrants.file(STUCK);
      expect(third.created).toBe(true);
      expect(ids(await model.warrants.pending())).toEqual([third.warrant.id]);
      // The old ones keep their outcome.
      expect((await model.warrants.get(first.warrant.id))?.status).toBe('executed');
      expect((await model.warrants.get(second.warrant.id))?.status).toBe('cancelled');
    });

    it('fails for an unknown warrant with NOT_FOUND, and for a bad executor name', async () => {
      const town = await agents();
      const { warrant } = await town.model.warrants.file(STUCK);
      await expectRefused(
        town,
        () => town.model.warrants.execute('wr-missing', { by: 'boot' }),
        'NOT_FOUND',
        'unknown warrant "wr-missing"',
      );
      await expectRefused(town, () => town.model.warrants.cancel('wr-missing'), 'NOT_FOUND');
      await expectInvalid(
        town,
        () => town.model.warrants.execute(warrant.id, { by: 'has space' }),
        'options.by',
      );
    });
  });

  it('lists pending warrants oldest first', async () => {
    const { model, clock } = await agents();
    const filed: string[] = [];
    for (const target of ['web/zed', 'api/toast', 'db/mole']) {
      filed.push((await model.warrants.file({ ...STUCK, target })).warrant.id);
      clock.advanceSync(10);
    }
    expect(ids(await model.warrants.pending())).toEqual(filed);
    expect(ids(await model.warrants.pending({ limit: 2 }))).toEqual(filed.slice(0, 2));
    await model.warrants.execute(filed[1] as string, { by: 'boot' });
    expect(ids(await model.warrants.pending())).toEqual([filed[0], filed[2]]);
  });
});
