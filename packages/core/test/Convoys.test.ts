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

const HOUR = 3_600_000;
const THREE = [{ name: 'one' }, { name: 'two' }, { name: 'three' }];

/** A town with open beads `a`, `b`, `c` (no rig). */
async function town(): Promise<TestTown> {
  const t = makeTown();
  for (const id of ['a', 'b', 'c']) await t.model.beads.create({ id, title: id });
  return t;
}

describe('Convoys', () => {
  describe('create', () => {
    it('tracks existing beads, counting the ones not terminal', async () => {
      const { model, clock } = await town();
      await model.beads.setStatus('c', 'done');
      clock.advanceSync(10);
      const convoy = await model.convoys.create({ title: 'release 1', beadIds: ['a', 'b', 'c'] });
      expect(convoy.id).toMatch(generatedId('cv'));
      expect(convoy).toStrictEqual({
        id: convoy.id,
        title: 'release 1',
        beadIds: ['a', 'b', 'c'],
        moleculeIds: [],
        status: 'open',
        openCount: 2,
        openMolecules: 0,
        createdAt: T0 + 10,
        lastProgressAt: T0 + 10,
      });
      expect(await model.convoys.require(convoy.id)).toEqual(convoy);
      expect(ids(await model.convoys.open())).toEqual([convoy.id]);
      expect(ids(await model.convoys.byBead('b'))).toEqual([convoy.id]);
    });

    it('writes nothing when a bead is unknown', async () => {
      const t = await town();
      await expectRefused(
        t,
        () => t.model.convoys.create({ title: 'half', beadIds: ['a', 'bd-missing'] }),
        'NOT_FOUND',
        'unknown bead "bd-missing"',
      );
      expect(await t.model.convoys.open()).toEqual([]);
      expect(await t.model.convoys.byBead('a')).toEqual([]);
    });

    it('refuses an empty bead list, a bead listed twice and an empty title', async () => {
      const t = await town();
      await expectInvalid(t, () => t.model.convoys.create({ title: 'x', beadIds: [] }), 'convoy', {
        message: 'must track at least one bead (beadIds) or molecule (moleculeIds)',
      });
      await expectInvalid(
        t,
        () => t.model.convoys.create({ title: 'x', beadIds: ['a', 'b', 'a'] }),
        'convoy.beadIds[2]',
        { message: 'bead a is listed twice' },
      );
      await expectInvalid(
        t,
        () => t.model.convoys.create({ title: '', beadIds: ['a'] }),
        'convoy.title',
      );
    });
  });

  describe('auto-close and reopen', () => {
    it('is finished only once every tracked bead is terminal', async () => {
      const { model } = await town();
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a', 'b', 'c'] });
      await model.beads.setStatus('a', 'done');
      await model.beads.setStatus('b', 'wontfix');
      expect(await model.convoys.finished()).toEqual([]);
      expect((await model.convoys.require(convoy.id)).openCount).toBe(1);
      await model.beads.setStatus('c', 'done');
      expect(ids(await model.convoys.finished())).toEqual([convoy.id]);
      expect((await model.convoys.require(convoy.id)).openCount).toBe(0);
      // Finished is not closed: only closeFinished (or close) closes it.
      expect((await model.convoys.require(convoy.id)).status).toBe('open');
    });

    it('counts a convoy created over terminal beads as finished at once', async () => {
      const { model } = await town();
      await model.beads.setStatus('a', 'done');
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a'] });
      expect(convoy.openCount).toBe(0);
      expect(ids(await model.convoys.finished())).toEqual([convoy.id]);
    });

    it('never counts a convoy without beads as finished', async () => {
      const { model, store } = await town();
      // The API refuses an empty bead list, so write such a record directly.
      await store.transaction((tx) =>
        tx.insert('convoys', {
          id: 'cv-empty',
          title: 'empty',
          beadIds: [],
          status: 'open',
          openCount: 0,
          createdAt: T0,
          lastProgressAt: T0,
        }),
      );
      expect(ids(await model.convoys.open())).toEqual(['cv-empty']);
      expect(await model.convoys.finished()).toEqual([]);
      expect(await model.convoys.closeFinished()).toEqual([]);
      expect((await model.convoys.require('cv-empty')).status).toBe('open');
    });

    it('closeFinished closes every finished convoy, returns them, and leaves the others open', async () => {
      const { model, clock } = await town();
      const ab = await model.convoys.create({ title: 'ab', beadIds: ['a', 'b'] });
      clock.advanceSync(1);
      const c = await model.convoys.create({ title: 'c', beadIds: ['c'] });
      clock.advanceSync(1);
      const bc = await model.convoys.create({ title: 'bc', beadIds: ['b', 'c'] });
      await model.beads.setStatus('a', 'done');
      await model.beads.setStatus('b', 'done');
      clock.advanceSync(10);
      const closed = await model.convoys.closeFinished();
      expect(closed).toEqual([await model.convoys.require(ab.id)]);
      expect(closed[0]).toMatchObject({ id: ab.id, status: 'closed', closedAt: T0 + 12 });
      expect(ids(await model.convoys.open())).toEqual([c.id, bc.id]);
      expect(await model.convoys.finished()).toEqual([]);
      expect(await model.convoys.closeFinished()).toEqual([]);

      await model.beads.setStatus('c', 'done');
      clock.advanceSync(10);
      const next = await model.convoys.closeFinished({ limit: 1 });
      expect(ids(next)).toEqual([c.id]);
      expect(ids(await model.convoys.closeFinished())).toEqual([bc.id]);
      expect(await model.convoys.open()).toEqual([]);
    });

    it('reopens a closed convoy when a tracked bead reopens', async () => {
      const { model, clock } = await town();
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a', 'b'] });
      await model.beads.setStatus('a', 'done');
      await model.beads.setStatus('b', 'done');
      await model.convoys.closeFinished();
      clock.advanceSync(10);
      await model.beads.setStatus('b', 'open');
      const reopened = await model.convoys.require(convoy.id);
      expect(reopened).toStrictEqual({
        ...convoy,
        status: 'open',
        openCount: 1,
        reopenedAt: T0 + 10,
        lastProgressAt: T0 + 10,
      });
      expect(reopened).not.toHaveProperty('closedAt');
      expect(ids(await model.convoys.open())).toEqual([convoy.id]);
      expect(await model.convoys.finished()).toEqual([]);
      // And it finishes again when the bead does.
      await model.beads.setStatus('b', 'wontfix');
      expect(ids(await model.convoys.finished())).toEqual([convoy.id]);
    });

    it('reopens a closed convoy when a live bead is added', async () => {
      const { model, clock } = await town();
      await model.beads.setStatus('a', 'done');
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a'] });
      await model.convoys.closeFinished();
      clock.advanceSync(10);
      const added = await model.convoys.add(convoy.id, ['b']);
      expect(added).toStrictEqual({
        ...convoy,
        beadIds: ['a', 'b'],
        status: 'open',
        openCount: 1,
        reopenedAt: T0 + 10,
        lastProgressAt: T0 + 10,
      });
      expect(await model.convoys.require(convoy.id)).toEqual(added);
      expect(ids(await model.convoys.byBead('b'))).toEqual([convoy.id]);
    });

    it('keeps a closed convoy closed when only terminal beads are added', async () => {
      const { model, clock } = await town();
      await model.beads.setStatus('a', 'done');
      await model.beads.setStatus('b', 'wontfix');
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a'] });
      const [closed] = await model.convoys.closeFinished();
      clock.advanceSync(10);
      const added = await model.convoys.add(convoy.id, ['b']);
      expect(added).toStrictEqual({
        ...closed,
        beadIds: ['a', 'b'],
        openCount: 0,
        lastProgressAt: T0 + 10,
      });
      expect(added).not.toHaveProperty('reopenedAt');
      expect(await model.convoys.open()).toEqual([]);
    });

    it('refuses to add a bead it already tracks, or an unknown one, writing nothing', async () => {
      const t = await town();
      const convoy = await t.model.convoys.create({ title: 'r', beadIds: ['a'] });
      await expectRefused(
        t,
        () => t.model.convoys.add(convoy.id, ['b', 'a']),
        'DUPLICATE_ID',
        `bead a is already in convoy ${convoy.id}`,
      );
      await expectRefused(t, () => t.model.convoys.add(convoy.id, ['bd-missing']), 'NOT_FOUND');
      await expectRefused(t, () => t.model.convoys.add('cv-missing', ['b']), 'NOT_FOUND');
      await expectInvalid(t, () => t.model.convoys.add(convoy.id, []), 'beadIds');
      expect((await t.model.convoys.require(convoy.id)).beadIds).toEqual(['a']);
    });
  });

  describe('progress', () => {
    it('moves lastProgressAt on every status change of a tracked bead, and only then', async () => {
      const { model, clock } = await town();
      await model.rigs.create({ name: 'api' });
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a', 'b'] });
      const progress = async () => (await model.convoys.require(convoy.id)).lastProgressAt;

      clock.advanceSync(10);
      await model.beads.setStatus('a', 'in_progress');
      expect(await progress()).toBe(T0 + 10);
      clock.advanceSync(10);
      await model.hooks.attach({ agent: 'api/toast', beadId: 'b', rig: 'api' });
      expect(await progress()).toBe(T0 + 20);
      clock.advanceSync(10);
      await model.hooks.detach('api/toast', { status: 'blocked' });
      expect(await progress()).toBe(T0 + 30);
      expect((await model.convoys.require(convoy.id)).openCount).toBe(2);

      clock.advanceSync(10);
      await model.beads.setStatus('c', 'done'); // not tracked
      await model.beads.update('a', { title: 'renamed', labels: ['x'] }); // not a status change
      await model.beads.setStatus('a', 'in_progress'); // the same status: no change
      expect(await progress()).toBe(T0 + 30);

      clock.advanceSync(10);
      await model.convoys.add(convoy.id, ['c']);
      expect(await progress()).toBe(T0 + 50);
    });

    it('lists open convoys without progress since a time: the Deacon’s stalled convoys', async () => {
      const { model, clock } = await town();
      const quiet = await model.convoys.create({ title: 'quiet', beadIds: ['a'] });
      clock.advanceSync(10);
      const busy = await model.convoys.create({ title: 'busy', beadIds: ['b'] });
      const done = await model.convoys.create({ title: 'done', beadIds: ['c'] });
      await model.beads.setStatus('c', 'done');
      await model.convoys.closeFinished();
      clock.advanceSync(30 * 60_000);
      await model.beads.setStatus('b', 'in_progress');
      clock.advanceSync(31 * 60_000);

      const stalled = await model.convoys.stalled(clock.now() - HOUR);
      expect(ids(stalled)).toEqual([quiet.id]);
      expect(ids(await model.convoys.stalled(clock.now()))).toEqual([quiet.id, busy.id]);
      expect(ids(await model.convoys.stalled(clock.now(), { limit: 1 }))).toEqual([quiet.id]);
      expect(ids(await model.convoys.stalled(T0 + 9))).toEqual([quiet.id]);
      expect(ids(await model.convoys.stalled(T0 - 1))).toEqual([]);
      expect(ids(await model.convoys.stalled(clock.now()))).not.toContain(done.id);

      // Progress takes it off the list.
      await model.beads.setStatus('a', 'blocked');
      expect(await model.convoys.stalled(clock.now() - HOUR)).toEqual([]);
    });
  });

  it('tracks beads of two rigs together', async () => {
    const { model } = makeTown();
    await model.rigs.create({ name: 'api' });
    await model.rigs.create({ name: 'web' });
    const api = await model.beads.create({ title: 'endpoint', rig: 'api' });
    const web = await model.beads.create({ title: 'button', rig: 'web' });
    const convoy = await model.convoys.create({ title: 'feature', beadIds: [api.id, web.id] });
    await model.hooks.attach({ agent: 'api/toast', beadId: api.id, rig: 'api' });
    await model.hooks.attach({ agent: 'web/ace', beadId: web.id, rig: 'web' });
    await model.hooks.detach('api/toast', { status: 'done' });
    expect(await model.convoys.finished()).toEqual([]);
    expect((await model.convoys.require(convoy.id)).openCount).toBe(1);
    await model.hooks.detach('web/ace', { status: 'done' });
    expect(ids(await model.convoys.closeFinished())).toEqual([convoy.id]);
    expect(ids(await model.convoys.byBead(api.id))).toEqual([convoy.id]);
    expect(ids(await model.convoys.byBead(web.id))).toEqual([convoy.id]);
  });

  it('keeps every convoy tracking a bead in step', async () => {
    const { model } = await town();
    const one = await model.convoys.create({ title: 'one', beadIds: ['a'] });
    const two = await model.convoys.create({ title: 'two', beadIds: ['a', 'b'] });
    await model.beads.setStatus('a', 'done');
    expect((await model.convoys.require(one.id)).openCount).toBe(0);
    expect((await model.convoys.require(two.id)).openCount).toBe(1);
    expect(ids(await model.convoys.finished())).toEqual([one.id]);
  });

  describe('close', () => {
    it('refuses to close a convoy with open beads unless forced', async () => {
      const t = await town();
      const convoy = await t.model.convoys.create({ title: 'r', beadIds: ['a', 'b'] });
      await t.model.beads.setStatus('a', 'done');
      await expectRefused(
        t,
        () => t.model.convoys.close(convoy.id),
        'INVALID_TRANSITION',
        `convoy ${convoy.id} still has 1 open bead(s) and 0 unfinished molecule(s); pass force to close it anyway`,
      );
      t.clock.advanceSync(10);
      const forced = await t.model.convoys.close(convoy.id, { force: true });
      expect(forced).toMatchObject({ status: 'closed', closedAt: T0 + 10, openCount: 1 });
      expect(await t.model.convoys.open()).toEqual([]);
      // Closing a closed convoy changes nothing.
      t.clock.advanceSync(10);
      expect(await expectNoWrite(t, () => t.model.convoys.close(convoy.id))).toEqual(forced);
    });

    it('closes a convoy whose beads are all terminal without force', async () => {
      const { model } = await town();
      const convoy = await model.convoys.create({ title: 'r', beadIds: ['a'] });
      await model.beads.setStatus('a', 'done');
      expect((await model.convoys.close(convoy.id)).status).toBe('closed');
      expect(await model.convoys.finished()).toEqual([]);
    });

    it('fails for an unknown convoy with NOT_FOUND', async () => {
      const t = await town();
      await expectRefused(t, () => t.model.convoys.close('cv-missing'), 'NOT_FOUND');
      expect(await t.model.convoys.get('cv-missing')).toBeUndefined();
    });
  });

  describe('molecules', () => {
    /** A workflow: `build`, then `deploy` behind a timer gate. */
    const GATED = [
      { name: 'build' },
      { name: 'deploy', gate: { type: 'timer', spec: { durationMs: 60_000 } } },
    ];

    it('stays open while a tracked molecule waits on a gate, and closes once it finished', async () => {
      const { model } = await town();
      const mol = await model.molecules.create({ name: 'release', steps: GATED });
      const convoy = await model.convoys.create({ title: 'ship it', moleculeIds: [mol.id] });
      expect(convoy).toMatchObject({ beadIds: [], moleculeIds: [mol.id], openMolecules: 1 });
      expect(ids(await model.convoys.byMolecule(mol.id))).toEqual([convoy.id]);
      const run = await model.molecules.dispatch(mol.id, { by: 'deacon' });
      const waiting = await model.molecules.completeStep(mol.id, { step: 0, epoch: run.epoch });
      expect(waiting.status).toBe('waiting');
      // Waiting on its gate: not finished, so the convoy is not either.
      expect(await model.convoys.closeFinished()).toEqual([]);
      await model.gates.close(waiting.waitingOn as string, { ok: true });
      expect(await model.convoys.closeFinished()).toEqual([]);
      const again = await model.molecules.dispatch(mol.id, { by: 'deacon' });
      await model.molecules.completeStep(mol.id, { step: 1, epoch: again.epoch });
      expect(ids(await model.convoys.closeFinished())).toEqual([convoy.id]);
    });

    it('a bead that is a molecule step brings its molecule: done bead, gate still open, convoy open', async () => {
      const { model } = await town();
      const mol = await model.molecules.create({ name: 'release', steps: GATED });
      await model.beads.create({
        id: 'step0',
        title: 'build',
        labels: ['molecule-step'],
        metadata: { molecule: mol.id, step: 0, epoch: 1 },
      });
      const convoy = await model.convoys.create({ title: 'build and ship', beadIds: ['step0'] });
      expect(convoy).toMatchObject({ moleculeIds: [mol.id], openCount: 1, openMolecules: 1 });
      const run = await model.molecules.dispatch(mol.id, { by: 'deacon' });
      await model.beads.setStatus('step0', 'done');
      await model.molecules.completeStep(mol.id, { step: 0, epoch: run.epoch });
      // The bead is done, but the work it started waits on a gate.
      expect(await model.convoys.closeFinished()).toEqual([]);
      expect((await model.convoys.require(convoy.id)).openCount).toBe(0);
    });

    it('a failed molecule is finished; progress of a molecule is the convoy progress', async () => {
      const { model, clock } = await town();
      const mol = await model.molecules.create({ name: 'release', steps: THREE });
      const convoy = await model.convoys.create({
        title: 'x',
        beadIds: ['a'],
        moleculeIds: [mol.id],
      });
      const run = await model.molecules.dispatch(mol.id, { by: 'deacon' });
      clock.advanceSync(HOUR);
      await model.molecules.completeStep(mol.id, { step: 0, epoch: run.epoch });
      expect((await model.convoys.require(convoy.id)).lastProgressAt).toBe(T0 + HOUR);
      await model.molecules.fail(mol.id, { epoch: run.epoch, reason: 'tests broke' });
      await model.beads.setStatus('a', 'done');
      expect(ids(await model.convoys.closeFinished())).toEqual([convoy.id]);
    });

    it('adding an unfinished molecule reopens a closed convoy; a finished one does not', async () => {
      const { model } = await town();
      const convoy = await model.convoys.create({ title: 'x', beadIds: ['c'] });
      await model.beads.setStatus('c', 'done');
      await model.convoys.closeFinished();
      const finished = await model.molecules.create({ name: 'm', steps: [{ name: 'one' }] });
      const run = await model.molecules.dispatch(finished.id, { by: 'deacon' });
      await model.molecules.completeStep(finished.id, { step: 0, epoch: run.epoch });
      const same = await model.convoys.add(convoy.id, [], { moleculeIds: [finished.id] });
      expect(same).toMatchObject({ status: 'closed', openMolecules: 0 });
      const live = await model.molecules.create({ name: 'm', steps: [{ name: 'one' }] });
      const reopened = await model.convoys.add(convoy.id, [], { moleculeIds: [live.id] });
      expect(reopened).toMatchObject({ status: 'open', openMolecules: 1 });
      expect(reopened.moleculeIds).toEqual([finished.id, live.id]);
    });

    it('refuses an unknown molecule, one listed twice and one tracked already, writing nothing', async () => {
      const t = await town();
      await expectRefused(
        t,
        () => t.model.convoys.create({ title: 'x', moleculeIds: ['mol-missing'] }),
        'NOT_FOUND',
        'unknown molecule "mol-missing"',
      );
      const mol = await t.model.molecules.create({ name: 'm', steps: THREE });
      await expectInvalid(
        t,
        () => t.model.convoys.create({ title: 'x', moleculeIds: [mol.id, mol.id] }),
        'convoy.moleculeIds[1]',
        { message: `molecule ${mol.id} is listed twice` },
      );
      await expectInvalid(
        t,
        () => t.model.convoys.create({ title: 'x', moleculeIds: 'm' as never }),
        'convoy.moleculeIds',
        { message: 'must be an array of molecule ids; got' },
      );
      const convoy = await t.model.convoys.create({ title: 'x', moleculeIds: [mol.id] });
      await expectRefused(
        t,
        () => t.model.convoys.add(convoy.id, [], { moleculeIds: [mol.id] }),
        'DUPLICATE_ID',
        `molecule ${mol.id} is already tracked by this convoy`,
      );
      await expectRefused(
        t,
        () => t.model.convoys.close(convoy.id),
        'INVALID_TRANSITION',
        `convoy ${convoy.id} still has 0 open bead(s) and 1 unfinished molecule(s)`,
      );
    });
  });
});
