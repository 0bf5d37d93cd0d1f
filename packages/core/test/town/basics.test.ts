import { createTestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';

describe('a town on simulated time', () => {
  it('patrols at start, spawns a polecat for slung work, and primes it once', async () => {
    const t = await createTestTown();
    expect(t.events.map((e) => e.type)).toContain('patrol.finished');
    const { agent, beadId } = await t.work('fix the login bug');
    const spawned = await t.next('polecat.spawned');
    expect(spawned).toMatchObject({ agent, rig: 'api', beadId, respawn: false });
    expect(await t.session(agent)).toMatchObject({
      state: 'running',
      epoch: spawned.epoch,
      labels: { bead: beadId },
    });
    expect(t.driver.nudgesOf('api-toast')).toEqual([expect.stringContaining(beadId)]);
    await t.stop();
    // A stopped daemon leaves the agents running.
    expect((await t.session(agent)).state).toBe('running');
  });

  it('restarts a crashed polecat with a new epoch and the same hook', async () => {
    const t = await createTestTown({ timings: { surveyMs: 10_000 } });
    const { agent, beadId } = await t.work('long job');
    const first = await t.next('polecat.spawned');
    t.crash(agent);
    const second = await t.next('polecat.spawned', { withinMs: 60_000 });
    expect(second).toMatchObject({ agent, beadId, respawn: true });
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(await t.model.hooks.get(agent)).toMatchObject({ beadId });
    expect(await t.model.respawns.count(beadId)).toBe(1);
    await t.stop();
  });
});
