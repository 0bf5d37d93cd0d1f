import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, since, TIMINGS, until, waitFor } from './helpers';

const MINUTE = 60_000;

async function witnessOf(t: TestTown, rig = 'api') {
  return (await t.town.status()).rigs.find((r) => r.name === rig)?.witness;
}

describe('park', () => {
  it('keeps the Witness while work is in flight, stops it after the last session ends, and starts it again on unpark', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const { agent, beadId } = await t.work('in flight');
    await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === beadId });
    const from = t.events.length;
    await until(t, t.town.rigs.park('api'));
    await t.advance(10 * MINUTE);
    // In-flight work finishes under its Witness.
    expect((await t.session(agent)).state).toBe('running');
    expect(await witnessOf(t)).toMatchObject({ state: 'running' });
    expect(eventsOf(since(t, from), 'witness.stopped')).toEqual([]);

    const doneAt = t.clock.now();
    await t.town.done(agent, beadId);
    const stopped = await waitFor(t, 'witness.stopped', {
      where: (e) => e.rig === 'api',
      since: from,
      withinMs: 2 * MINUTE,
    });
    // Woken by the Witness's survey, not a whole patrol interval later.
    expect(stopped.at - doneAt).toBeLessThan(TIMINGS.surveyMs as number);
    expect(await witnessOf(t)).toBeUndefined();

    // A parked rig with no sessions costs no Witness and no survey cycles.
    const quiet = t.events.length;
    await t.advance(60 * MINUTE);
    expect(eventsOf(since(t, quiet), 'witness.started')).toEqual([]);
    expect(await witnessOf(t)).toBeUndefined();

    await until(t, t.town.rigs.unpark('api'));
    expect(eventsOf(since(t, quiet), 'witness.started', (e) => e.rig === 'api')).toHaveLength(1);
    expect(await witnessOf(t)).toMatchObject({ state: 'running' });
    const next = await t.work('after the unpark');
    await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === next.beadId, since: quiet });
    await t.stop();
  });

  it('a parked rig with nothing in flight loses its Witness with the park request', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    expect(await witnessOf(t)).toMatchObject({ state: 'running' });
    await until(t, t.town.rigs.park('api'));
    expect(await witnessOf(t)).toBeUndefined();
    expect(eventsOf(t, 'witness.stopped', (e) => e.rig === 'api')).toHaveLength(1);
    await t.stop();
  });

  it('a parked rig whose only session crashed loses its Witness; the crash is respawned (and counted) on unpark', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const { agent, beadId } = await t.work('crashes while parked');
    await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === beadId });
    await until(t, t.town.rigs.park('api'));
    const from = t.events.length;
    t.crash(agent);
    await waitFor(t, 'witness.stopped', { where: (e) => e.rig === 'api', since: from });
    expect(eventsOf(since(t, from), 'polecat.spawned')).toEqual([]);
    await until(t, t.town.rigs.unpark('api'));
    const again = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.agent === agent,
      since: from,
    });
    expect(again.respawn).toBe(true);
    expect(await t.model.respawns.count(beadId)).toBe(1);
    await t.stop();
  });

  it('a town started with a parked rig without sessions starts no Witness for it', async () => {
    const t1 = await createTestTown({ rigs: ['api', 'web'], timings: TIMINGS });
    await until(t1, t1.town.rigs.park('web'));
    await t1.stop();
    const t2 = await createTestTown({
      rigs: ['api', 'web'],
      timings: TIMINGS,
      store: t1.store,
      driver: t1.driver,
      clock: t1.clock,
    });
    await t2.advance(30 * MINUTE);
    expect(eventsOf(t2, 'witness.started').map((e) => e.rig)).toEqual(['api']);
    expect(await witnessOf(t2, 'web')).toBeUndefined();
    await t2.stop();
  });
});
