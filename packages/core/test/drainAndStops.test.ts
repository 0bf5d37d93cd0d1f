import { ConfigError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { makeTown, T0 } from './modelHelpers';

// The records behind a graceful dock (the rig's drain deadline) and behind "operator actions are
// never crashes" (a polecat's stop on purpose).

async function withRig() {
  const town = makeTown();
  await town.model.rigs.create({ name: 'api' });
  return town;
}

describe('a rig drain (model.rigs.dock with drainUntil, endDrain)', () => {
  it('records the deadline, keeps it on a repeated draining dock, and ends it once', async () => {
    const { model, clock } = await withRig();
    const docked = await model.rigs.dock('api', { drainUntil: T0 + 1_000 });
    expect(docked).toMatchObject({ state: 'docked', drainUntil: T0 + 1_000, stateChangedAt: T0 });
    clock.advanceSync(10);
    // Asked again: never extended.
    expect(await model.rigs.dock('api', { drainUntil: T0 + 9_000 })).toMatchObject({
      drainUntil: T0 + 1_000,
      stateChangedAt: T0,
    });
    expect(await model.rigs.endDrain('api')).toBe(true);
    expect(await model.rigs.endDrain('api')).toBe(false);
    const drained = await model.rigs.require('api');
    expect(drained).toMatchObject({ state: 'docked' });
    expect(drained).not.toHaveProperty('drainUntil');
  });

  it('an immediate dock ends a drain under way; undock cancels one', async () => {
    const { model } = await withRig();
    await model.rigs.dock('api', { drainUntil: T0 + 1_000 });
    expect(await model.rigs.dock('api')).not.toHaveProperty('drainUntil');
    await model.rigs.undock('api');
    await model.rigs.dock('api', { drainUntil: T0 + 1_000 });
    const undocked = await model.rigs.undock('api');
    expect(undocked.state).toBe('operational');
    expect(undocked).not.toHaveProperty('drainUntil');
    expect(await model.rigs.endDrain('api')).toBe(false);
  });

  it('a parked rig can be docked with a drain; endDrain of a rig that is not draining is false', async () => {
    const { model } = await withRig();
    expect(await model.rigs.endDrain('api')).toBe(false);
    await model.rigs.park('api');
    expect(await model.rigs.dock('api', { drainUntil: T0 + 5 })).toMatchObject({
      state: 'docked',
      drainUntil: T0 + 5,
    });
    await expect(model.rigs.endDrain('nowhere')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it.each([-1, 1.5, Number.NaN, '10', null])('refuses drainUntil %s', async (value) => {
    const { model } = await withRig();
    await expect(model.rigs.dock('api', { drainUntil: value as never })).rejects.toThrow(
      ConfigError,
    );
    expect((await model.rigs.require('api')).state).toBe('operational');
  });
});

describe('a stop on purpose (model.polecats.recordStop)', () => {
  it('makes the next spawn of the same bead not a respawn; a later crash counts again', async () => {
    const { model, clock } = await withRig();
    const bead = await model.beads.create({ title: 'x' });
    await model.polecats.sling(bead.id, 'api');
    const first = await model.polecats.beginSpawn('api/toast', bead.id);
    await model.polecats.markStarted('api/toast', first.epoch);
    clock.advanceSync(5);
    expect(
      await model.polecats.recordStop('api/toast', {
        epoch: first.epoch,
        reason: 'rig api docked',
      }),
    ).toMatchObject({ stoppedEpoch: first.epoch, stopReason: 'rig api docked', stoppedAt: T0 + 5 });
    const second = await model.polecats.beginSpawn('api/toast', bead.id);
    expect(second.respawn).toBe(false);
    // The claim starts a fresh record: the stop was of the previous session.
    expect(await model.polecats.get('api/toast')).not.toHaveProperty('stoppedEpoch');
    await model.polecats.markStarted('api/toast', second.epoch);
    // No stop recorded for this session: it crashed.
    expect((await model.polecats.beginSpawn('api/toast', bead.id)).respawn).toBe(true);
  });

  it('a stop recorded for an older epoch does not excuse the current session', async () => {
    const { model } = await withRig();
    const bead = await model.beads.create({ title: 'x' });
    await model.polecats.sling(bead.id, 'api');
    const first = await model.polecats.beginSpawn('api/toast', bead.id);
    await model.polecats.markStarted('api/toast', first.epoch);
    await model.polecats.recordStop('api/toast', { epoch: first.epoch - 1, reason: 'old' });
    expect((await model.polecats.beginSpawn('api/toast', bead.id)).respawn).toBe(true);
  });

  it('a stopped session seen running again (a stop cut off by a crash) is no longer excused', async () => {
    const { model } = await withRig();
    const bead = await model.beads.create({ title: 'x' });
    await model.polecats.sling(bead.id, 'api');
    const first = await model.polecats.beginSpawn('api/toast', bead.id);
    await model.polecats.markStarted('api/toast', first.epoch);
    await model.polecats.recordStop('api/toast', { epoch: first.epoch, reason: 'docked' });
    // Adopted again: it runs, so its next end is a crash.
    expect(await model.polecats.markStarted('api/toast', first.epoch)).not.toHaveProperty(
      'stoppedEpoch',
    );
    expect((await model.polecats.beginSpawn('api/toast', bead.id)).respawn).toBe(true);
  });

  it('refuses a bad epoch or reason, and an unknown polecat', async () => {
    const { model } = await withRig();
    const bead = await model.beads.create({ title: 'x' });
    await model.polecats.sling(bead.id, 'api');
    await expect(
      model.polecats.recordStop('api/toast', { epoch: -1, reason: 'x' }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION', path: 'options.epoch' });
    await expect(
      model.polecats.recordStop('api/toast', { epoch: 1, reason: ' ' }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION', path: 'options.reason' });
    await expect(
      model.polecats.recordStop('api/ghost', { epoch: 1, reason: 'x' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
