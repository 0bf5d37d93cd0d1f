import type { TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  eventsOf,
  TWO_RIGS as OPTIONS,
  restartDaemon,
  runningSessions,
  settleOn,
  until,
} from './chainHelpers';
import { restartDeacon, restartWitness, spawnedAgents, town } from './faultyStoreTown';

describe('the supervisor fights the operator (#1152, #1761, #3331)', () => {
  it('a parked rig is never restarted: not by its Witness, a restarted Witness, a restarted Deacon or a restarted daemon', async () => {
    const t = await town();
    const { agent, beadId } = await t.work('in flight when parked', 'api');
    const slow = await t.work('in flight and quiet when parked', 'api');
    await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
    const slowSession = await t.session(slow.agent);
    await settleOn(t, t.town.rigs.park('api'));
    expect((await t.model.rigs.require('api')).state).toBe('parked');

    t.crash(agent);
    // Parked means in-flight work is left to finish, even when it looks stuck.
    t.hang(slow.agent);
    const starts = t.driver.starts.length;
    await t.advance(5 * 60_000); // the Witness's own surveys
    await restartWitness(t, t.store, 'api');
    await restartDeacon(t, t.store, t.seen);
    const t2 = await restartDaemon(t, OPTIONS);
    await t2.advance(10 * 60_000);

    expect(t.driver.starts.length).toBe(starts);
    expect((await t2.session(agent)).state).toBe('exited');
    expect(eventsOf(t2, 'polecat.spawned')).toEqual([]);
    expect(eventsOf(t, 'polecat.spawned')).toHaveLength(2);
    expect(eventsOf(t, 'polecat.stopped')).toEqual([]);
    expect(eventsOf(t2, 'polecat.stopped')).toEqual([]);
    expect(await t2.session(slow.agent)).toMatchObject({
      state: 'running',
      epoch: slowSession.epoch,
    });
    // The work waits on its hook for the operator.
    expect(await t2.model.hooks.get(agent)).toMatchObject({ beadId });

    // Unparked, the same work gets its session back.
    await settleOn(t2, t2.town.rigs.unpark('api'));
    await until(t2, () => spawnedAgents(t2).includes(agent), {
      withinMs: 120_000,
      what: 'the spawn after unpark',
    });
    expect(eventsOf(t2, 'polecat.spawned').find((e) => e.agent === agent)).toMatchObject({
      beadId,
      respawn: true,
    });
    await t2.stop();
  });

  it('a docked rig has no Witness and no sessions, even after the Deacon and the daemon restart', async () => {
    const t = await town();
    const one = await t.work('docked work', 'api');
    const two = await t.work('more docked work', 'api');
    await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
    await settleOn(t, t.town.rigs.dock('api', { immediate: true }));
    expect((await runningSessions(t.driver)).filter((s) => s.name.startsWith('api-'))).toEqual([]);
    const starts = t.driver.starts.length;

    const docked = async (x: TestTown) => {
      const rig = (await x.town.status()).rigs.find((r) => r.name === 'api');
      expect(rig).toMatchObject({ state: 'docked', witness: undefined });
      expect(rig?.polecats.map((p) => p.session.state)).toEqual(['exited', 'exited']);
      expect(t.driver.starts.length).toBe(starts);
    };
    await t.advance(10 * 60_000);
    await docked(t);
    await restartDeacon(t, t.store, t.seen);
    await t.advance(5 * 60_000);
    await docked(t);
    const t2 = await restartDaemon(t, OPTIONS);
    await t2.advance(10 * 60_000);
    await docked(t2);
    expect(eventsOf(t2, 'witness.started').map((e) => e.rig)).toEqual(['web']);

    // Undocked, the hooks (kept through the dock) get their sessions again.
    await settleOn(t2, t2.town.rigs.undock('api'));
    await until(t2, () => spawnedAgents(t2).length >= 2, { what: 'the spawns after undock' });
    expect(spawnedAgents(t2).sort()).toEqual([one.agent, two.agent].sort());
    await t2.stop();
  });
});
