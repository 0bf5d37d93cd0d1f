import { createTestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, TIMINGS, timerEvaluator, waitFor } from './helpers';

describe('convoys over workflows', () => {
  it('the Deacon seed: a convoy whose bead creates a gate does not close until that gate resolves', async () => {
    const t = await createTestTown({ gates: [timerEvaluator()], timings: TIMINGS });
    // A workflow: `build` goes to the rig at once; `ship` waits on a 20 min timer gate.
    const molecule = await t.model.molecules.create({
      name: 'release',
      rig: 'api',
      steps: [
        { name: 'build' },
        { name: 'ship', gate: { type: 'timer', spec: { durationMs: 1_200_000 } } },
      ],
    });
    const first = await waitFor(t, 'molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id && e.step === 0,
    });
    const convoy = await t.town.convoys.create({ title: 'release 2.1', beadIds: [first.beadId] });
    expect(convoy.moleculeIds).toEqual([molecule.id]);
    const spawned = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.beadId === first.beadId,
    });

    // The agent finishes `build`: its bead is done, and the workflow now waits on the gate.
    await t.town.done(spawned.agent, first.beadId);
    expect((await t.model.molecules.require(molecule.id)).status).toBe('waiting');
    // Patrols pass; the bead is terminal, yet the convoy stays open while the gate is open.
    await t.advance(600_000);
    expect(eventsOf(t, 'patrol.finished').length).toBeGreaterThanOrEqual(4);
    expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
    expect(eventsOf(t, 'convoy.closed')).toEqual([]);

    // The gate resolves, `ship` is dispatched and done: then the convoy lands.
    const second = await waitFor(t, 'molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id && e.step === 1,
      withinMs: 1_200_000,
    });
    expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
    const agent = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === second.beadId });
    await t.town.done(agent.agent, second.beadId);
    const closed = await waitFor(t, 'convoy.closed', { where: (e) => e.convoyId === convoy.id });
    expect(closed.at).toBeGreaterThan(second.at);
    expect((await t.model.molecules.require(molecule.id)).status).toBe('done');
    await t.stop();
  });

  it('a convoy can track a molecule by id, beside beads', async () => {
    const t = await createTestTown({ gates: [timerEvaluator()], timings: TIMINGS });
    const bead = await t.model.beads.create({ title: 'docs', rig: 'api' });
    const molecule = await t.model.molecules.create({
      name: 'cool-down',
      steps: [{ name: 'wait', gate: { type: 'timer', spec: { durationMs: 300_000 } } }],
    });
    const convoy = await t.town.convoys.create({
      title: 'docs and cool-down',
      beadIds: [bead.id],
      moleculeIds: [molecule.id],
    });
    await t.model.beads.setStatus(bead.id, 'done');
    await t.advance(300_000);
    // The gate closed: the molecule (no rig, run by the user) is ready but not finished.
    expect((await t.model.molecules.require(molecule.id)).status).toBe('ready');
    expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
    const run = await t.model.molecules.dispatch(molecule.id, { by: 'user' });
    await t.model.molecules.completeStep(molecule.id, { step: 0, epoch: run.epoch });
    await waitFor(t, 'convoy.closed', { where: (e) => e.convoyId === convoy.id });
    await t.stop();
  });
});
