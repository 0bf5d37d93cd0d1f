import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo, TIMINGS } from './chainHelpers';
import { sessionOf, spawnOf, town } from './recordingTown';

describe('a session that never starts', () => {
  it('is escalated after maxRespawns + 1 failed starts: blocked, one report, no more starts; re-slinging it resolves the report at the next patrol', async () => {
    const t = await town({
      timings: { ...TIMINGS, maxRespawns: 2 },
      agent: { launch: () => ({ command: ['broken'] }) },
    });
    t.driver.program('broken', () => {}, { failStart: 'boom' });
    const { agent, beadId } = await t.work('needs a tool that is not installed');
    const session = sessionOf(agent);

    const escalated = await t.next('polecat.escalated', { withinMs: 10 * 60_000 });
    expect(escalated).toMatchObject({ agent, rig: 'api', beadId, respawns: 3 });
    expect(t.driver.startsOf(session)).toHaveLength(3);
    expect(await t.model.hooks.get(agent)).toBeUndefined();
    expect((await t.model.beads.require(beadId)).status).toBe('blocked');
    expect(await t.model.respawns.count(beadId)).toBe(3);
    const reports = reportsTo(t.mayor, 'respawn-limit:');
    expect(reports).toEqual([
      expect.objectContaining({
        incidentKey: `respawn-limit:${beadId}`,
        severity: 'high',
        status: 'open',
        title: expect.stringContaining('cannot start its session'),
      }),
    ]);

    // However long we wait: no more starts, no second escalation or report.
    const starts = t.driver.starts.length;
    await t.advance(30 * 60_000);
    expect(t.driver.starts.length).toBe(starts);
    expect(eventsOf(t, 'polecat.escalated')).toHaveLength(1);
    expect(eventsOf(t, 'polecat.spawned')).toEqual([]);
    expect(reportsTo(t.mayor, 'respawn-limit:')).toHaveLength(1);
    expect((await t.session(agent)).state).toBe('exited');
    const open = await t.model.reports.byIncident(`respawn-limit:${beadId}`);
    expect(open).toMatchObject({ id: reports[0]?.id, count: 1 });

    // The operator installs the tool and puts the bead back to work.
    t.driver.program('broken', (s) => s.after(10_000, () => s.write('working')));
    await t.model.beads.setStatus(beadId, 'open');
    const from = t.events.length;
    const again = await t.town.sling(beadId, 'api');
    expect(again.agent).toBe(agent);
    // Not yet resolved: the patrol does that.
    expect(await t.model.reports.byIncident(`respawn-limit:${beadId}`)).toBeDefined();
    const spawned = await spawnOf(t, beadId, from);
    expect(spawned).toMatchObject({ agent, respawn: false });
    await t.next('patrol.finished', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(await t.model.reports.byIncident(`respawn-limit:${beadId}`)).toBeUndefined();
    expect(await t.model.reports.get(reports[0]?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(reportsTo(t.mayor, 'respawn-limit:')).toHaveLength(1);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
    await t.stop();
  });
});
