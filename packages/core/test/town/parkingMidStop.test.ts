import { describe, expect, it } from 'vitest';
import { eventsOf, settleOn, TIMINGS, until } from './chainHelpers';
import { sessionOf, spawnOf, town } from './recordingTown';

describe('parking while a hung session is being stopped', () => {
  it('no new session is started after the stop; unpark spawns it again', async () => {
    const stopGraceMs = 90_000;
    const t = await town({
      timings: { ...TIMINGS, stopGraceMs },
      // Ignores the stop (a stop waits the whole grace) and goes quiet after its prime.
      agent: { launch: () => ({ command: ['stubborn'] }) },
    });
    const { agent, beadId } = await t.work('hangs, then ignores the stop');
    const first = await spawnOf(t, beadId);
    const session = sessionOf(agent);

    await until(t, () => t.driver.stopsOf(session).length > 0, {
      withinMs: TIMINGS.staleAfterMs + 5 * TIMINGS.surveyMs,
      what: 'the stop of the hung session',
    });
    const stopAt = t.driver.stopsOf(session)[0]?.at as number;
    const starts = t.driver.starts.length;
    const from = t.events.length;

    await settleOn(t, t.town.rigs.park('api'));
    expect((await t.model.rigs.require('api')).state).toBe('parked');
    // Parked while the stop still waits on the grace: the spawn that would follow is in flight.
    expect(t.clock.now()).toBeLessThan(stopAt + stopGraceMs);
    expect((await t.session(agent)).state).toBe('running');

    await until(t, async () => (await t.session(agent)).state === 'exited', {
      what: 'the hung session to be killed',
    });
    await t.advance(10 * 60_000);

    const dead = await t.session(agent);
    expect(dead).toMatchObject({ state: 'exited', signal: 'SIGKILL', epoch: first.epoch });
    expect(dead.state === 'exited' && dead.exitedAt).toBe(stopAt + stopGraceMs);
    expect(eventsOf(t, 'polecat.stopped', from).map((e) => e.reason)).toContain(
      'hung: no activity',
    );
    expect(eventsOf(t, 'polecat.spawned', from)).toEqual([]);
    expect(t.driver.starts.length).toBe(starts);
    expect(await t.model.hooks.get(agent)).toMatchObject({ beadId });

    await settleOn(t, t.town.rigs.unpark('api'));
    const again = await spawnOf(t, beadId, from);
    expect(again).toMatchObject({ agent, respawn: true });
    expect(again.epoch).toBeGreaterThan(first.epoch);
    expect(t.driver.starts.length).toBe(starts + 1);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: again.epoch });
    await t.stop();
  });
});
