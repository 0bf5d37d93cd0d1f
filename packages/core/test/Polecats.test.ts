import { StoreError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { makeTown } from './modelHelpers';

async function withRig(state: 'operational' | 'parked' | 'docked' = 'operational') {
  const town = makeTown();
  await town.model.rigs.create({ name: 'api' });
  if (state === 'parked') await town.model.rigs.park('api');
  if (state === 'docked') await town.model.rigs.dock('api');
  return town;
}

describe('Polecats', () => {
  it('slings beads onto new polecats named from the pool, and reuses an idle one', async () => {
    const { model } = await withRig();
    const b1 = await model.beads.create({ title: 'one' });
    const b2 = await model.beads.create({ title: 'two' });
    const first = await model.polecats.sling(b1.id, 'api', { names: ['toast', 'nux'] });
    const second = await model.polecats.sling(b2.id, 'api', { names: ['toast', 'nux'] });
    expect([first.polecat.id, second.polecat.id, first.created, second.created]).toEqual([
      'api/toast',
      'api/nux',
      true,
      true,
    ]);
    expect(await model.beads.require(b1.id)).toMatchObject({
      status: 'hooked',
      assignee: 'api/toast',
    });
    await model.hooks.detach('api/toast', { status: 'done' });
    const b3 = await model.beads.create({ title: 'three' });
    const third = await model.polecats.sling(b3.id, 'api', { names: ['toast', 'nux'] });
    expect([third.polecat.id, third.created]).toEqual(['api/toast', false]);
    const b4 = await model.beads.create({ title: 'four' });
    expect(
      (await model.polecats.sling(b4.id, 'api', { names: ['toast', 'nux'] })).polecat.name,
    ).toBe('p3');
    expect((await model.polecats.list('api')).map((p) => p.name)).toEqual(['nux', 'p3', 'toast']);
  });

  it('never gives two concurrent slings the same polecat', async () => {
    const { model } = await withRig();
    const beads = await Promise.all(
      Array.from({ length: 12 }, (_, i) => model.beads.create({ title: `b${i}` })),
    );
    const results = await Promise.all(beads.map((b) => model.polecats.sling(b.id, 'api')));
    expect(new Set(results.map((r) => r.polecat.id)).size).toBe(12);
    expect((await model.hooks.list({ rig: 'api' })).length).toBe(12);
  });

  it('returns the existing hook when a bead is slung twice, and refuses another rig', async () => {
    const { model } = await withRig();
    await model.rigs.create({ name: 'web' });
    const bead = await model.beads.create({ title: 'once' });
    const a = await model.polecats.sling(bead.id, 'api');
    const b = await model.polecats.sling(bead.id, 'api');
    expect(b).toMatchObject({ created: false, hook: a.hook });
    await expect(model.polecats.sling(bead.id, 'web')).rejects.toMatchObject({
      code: 'INVALID_TRANSITION',
    });
  });

  it.each(['parked', 'docked'] as const)(
    'takes no new work into a %s rig, writing nothing',
    async (state) => {
      const { model } = await withRig(state);
      const bead = await model.beads.create({ title: 'x' });
      const err = await model.polecats.sling(bead.id, 'api').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).message).toContain(state);
      expect(await model.polecats.list('api')).toEqual([]);
      expect((await model.beads.require(bead.id)).status).toBe('open');
    },
  );

  it('claims a new spawn epoch each time and records the start', async () => {
    const { model, clock } = await withRig();
    const bead = await model.beads.create({ title: 'x' });
    await model.polecats.sling(bead.id, 'api');
    const first = await model.polecats.beginSpawn('api/toast', bead.id);
    expect(first.respawn).toBe(false);
    // Claimed but never started (a crash between the claim and the start): not a respawn.
    const second = await model.polecats.beginSpawn('api/toast', bead.id);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(second.respawn).toBe(false);
    clock.advanceSync(7);
    expect(await model.polecats.markStarted('api/toast', second.epoch)).toMatchObject({
      spawnEpoch: second.epoch,
      spawnStartedAt: clock.now(),
    });
    expect((await model.polecats.beginSpawn('api/toast', bead.id)).respawn).toBe(true);
    const other = await model.beads.create({ title: 'y' });
    expect((await model.polecats.beginSpawn('api/toast', other.id)).respawn).toBe(false);
    await expect(model.polecats.beginSpawn('api/ghost', bead.id)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
