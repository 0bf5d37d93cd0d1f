import type { MayorMessage } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo, TIMINGS, until } from './chainHelpers';
import { spawnedAgents, town } from './faultyStoreTown';

describe('one alert per incident, not one per tick (#2795, #2041)', () => {
  it('an overdue gate and a stalled convoy, persisting over 20 patrols: one Mayor report each', async () => {
    const mayor: MayorMessage[] = [];
    const t = await town({
      timings: { ...TIMINGS, convoyStallMs: 5 * 60_000 },
      mayor: (m) => {
        mayor.push(m);
      },
    });
    const gate = await t.town.gates.create({
      type: 'human',
      spec: { prompt: 'approve the release' },
      timeoutMs: 2 * 60_000,
    });
    const waiting = await t.model.beads.create({ title: 'never picked up', rig: 'api' });
    const convoy = await t.town.convoys.create({ title: 'release 1.2', beadIds: [waiting.id] });

    const patrolsBefore = eventsOf(t, 'patrol.finished').length;
    await t.advance(25 * TIMINGS.heartbeatMs);
    expect(eventsOf(t, 'patrol.finished').length - patrolsBefore).toBeGreaterThanOrEqual(20);

    expect(reportsTo(mayor, `gate-timeout:${gate.id}`)).toHaveLength(1);
    expect(reportsTo(mayor, `convoy-stalled:${convoy.id}`)).toHaveLength(1);
    expect(reportsTo(mayor)).toHaveLength(2);
    expect(eventsOf(t, 'gate.escalated')).toHaveLength(1);
    expect(eventsOf(t, 'convoy.stalled')).toHaveLength(1);
    // Both are still what they were: the gate open, the convoy open.
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
    await t.stop();
  });

  it('a poller that fails on every run for 20 intervals: one Mayor report', async () => {
    const mayor: MayorMessage[] = [];
    let runs = 0;
    const t = await town({
      pollers: [
        {
          name: 'discord',
          intervalMs: TIMINGS.heartbeatMs,
          run: () => {
            runs++;
            throw new Error('discord is unreachable');
          },
        },
      ],
      mayor: (m) => {
        mayor.push(m);
      },
    });
    await t.advance(20 * TIMINGS.heartbeatMs);
    expect(runs).toBe(20);
    expect(eventsOf(t, 'poller.failed')).toHaveLength(20);
    expect(reportsTo(mayor, 'poller:discord')).toHaveLength(1);
    expect(reportsTo(mayor)).toHaveLength(1);
    await t.stop();
  });

  it('a Witness that stays unresponsive for 20 patrols: one Mayor report, not one per restart', async () => {
    const mayor: MayorMessage[] = [];
    const t = await town({
      mayor: (m) => {
        mayor.push(m);
      },
    });
    const { agent } = await t.work('keeps running', 'api');
    await until(t, () => spawnedAgents(t).includes(agent), { what: 'the spawn' });
    t.store.hangRig('api'); // every survey of this Witness, before and after restarts, hangs
    await t.advance(20 * TIMINGS.patrolIntervalMs);

    const restarts = eventsOf(t, 'witness.restarted').length;
    expect(restarts).toBeGreaterThanOrEqual(2);
    expect(
      reportsTo(mayor, 'witness-unresponsive:api').map((r) => r.firstAt),
      `the Mayor was alerted anew for each of ${restarts} restarts of a Witness that never recovered`,
    ).toHaveLength(1);
    // Its agent was never touched meanwhile.
    expect(t.driver.starts).toHaveLength(1);
    await t.stop();
  });
});
