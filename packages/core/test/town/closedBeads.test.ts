import type { StoreError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import {
  eventsOf,
  TWO_RIGS as OPTIONS,
  restartDaemon,
  runningSessions,
  until,
} from './chainHelpers';
import { spawnedAgents, town } from './faultyStoreTown';

describe('no re-dispatch onto a closed bead (#4698, #2203)', () => {
  it('slinging a done or wontfix bead is refused, and nothing is spawned for it', async () => {
    const t = await town();
    const done = await t.model.beads.create({ title: 'shipped', rig: 'api', status: 'done' });
    const wontfix = await t.model.beads.create({
      title: 'not doing it',
      rig: 'api',
      status: 'wontfix',
    });
    for (const bead of [done, wontfix]) {
      await expect(t.town.sling(bead.id, 'api')).rejects.toMatchObject({
        code: 'INVALID_TRANSITION',
      } satisfies Partial<StoreError>);
    }
    await t.advance(5 * 60_000);
    expect(await t.model.polecats.list('api')).toEqual([]);
    expect(t.driver.starts).toEqual([]);

    // Reopened, it can be slung again.
    await t.model.beads.setStatus(done.id, 'open');
    const { agent } = await t.town.sling(done.id, 'api');
    await until(t, () => spawnedAgents(t).includes(agent), { what: 'the spawn' });
    await t.stop();
  });

  it('a bead finished with done() never gets a session again: not after a daemon crash and restart, nor on a start request', async () => {
    const t = await town();
    const first = await t.work('finished before the crash', 'api');
    const second = await t.work('finished while the daemon is down', 'api');
    await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
    await t.town.done(first.agent, first.beadId);
    t.town.kill();
    // The agent reports done while the daemon is down (done needs only the store and driver).
    await t.town.done(second.agent, second.beadId, { status: 'wontfix' });
    await t.advance(60_000);

    const t2 = await restartDaemon(t, OPTIONS);
    await t2.advance(10 * 60_000);
    // The polecat records still name the closed beads as their last spawns...
    expect((await t2.model.polecats.get(first.agent))?.spawnBeadId).toBe(first.beadId);
    // ...but neither is given a session again.
    const request = await t2.model.lifecycle.request({
      action: 'start',
      target: first.agent,
      requestedBy: 'operator',
    });
    t2.town.wake();
    const failed = await t2.next('lifecycle.failed', { withinMs: 60_000 });
    expect(failed).toMatchObject({ requestId: request.id });
    await t2.advance(10 * 60_000);
    expect(t.driver.starts.map((s) => s.labels?.bead)).toEqual([first.beadId, second.beadId]);
    expect(await runningSessions(t.driver)).toEqual([]);
    expect(eventsOf(t2, 'polecat.spawned')).toEqual([]);
    expect((await t2.model.beads.require(first.beadId)).status).toBe('done');
    expect((await t2.model.beads.require(second.beadId)).status).toBe('wontfix');
    await t2.stop();
  });
});
