import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo, TIMINGS } from './chainHelpers';
import { patrolFailures, town } from './recordingTown';

describe('convoy incidents', () => {
  it('a stall is reported once, resolved at the next patrol after progress, and a new stall is a new report; landing is news, resolved at once', async () => {
    const convoyStallMs = 5 * 60_000;
    const t = await town({ timings: { ...TIMINGS, convoyStallMs } });
    const a = await t.model.beads.create({ title: 'part a', rig: 'api' });
    const b = await t.model.beads.create({ title: 'part b', rig: 'api' });
    const convoy = await t.town.convoys.create({ title: 'release 2.0', beadIds: [a.id, b.id] });
    const key = `convoy-stalled:${convoy.id}`;

    const stalled = await t.next('convoy.stalled', { withinMs: convoyStallMs + 3 * 60_000 });
    expect(stalled.convoyId).toBe(convoy.id);
    expect(stalled.sinceMs).toBeGreaterThanOrEqual(convoyStallMs);
    await t.advance(15 * 60_000);
    expect(eventsOf(t, 'convoy.stalled')).toHaveLength(1);
    const first = reportsTo(t.mayor, 'convoy');
    expect(first).toEqual([expect.objectContaining({ incidentKey: key, severity: 'medium' })]);
    expect((await t.model.reports.byIncident(key))?.count).toBe(1);

    // Progress: one bead changes status. Open until the next patrol, resolved by it.
    await t.model.beads.setStatus(a.id, 'in_progress');
    expect(await t.model.reports.byIncident(key)).toBeDefined();
    const from = t.events.length;
    await t.next('patrol.finished', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(await t.model.reports.byIncident(key)).toBeUndefined();
    expect(await t.model.reports.get(first[0]?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(eventsOf(t, 'convoy.stalled', from)).toEqual([]);

    // No progress again for a stall period: a new incident.
    const again = await t.next('convoy.stalled', { withinMs: convoyStallMs + 3 * 60_000 });
    expect(again.convoyId).toBe(convoy.id);
    const second = reportsTo(t.mayor, 'convoy-stalled');
    expect(second).toHaveLength(2);
    expect(second[1]?.id).not.toBe(second[0]?.id);

    // It lands: one info report, resolved at once, and the stall is over too.
    await t.model.beads.setStatus(a.id, 'done');
    await t.model.beads.setStatus(b.id, 'done');
    await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    await t.next('patrol.finished');
    const landed = reportsTo(t.mayor, 'convoy-landed');
    expect(landed).toEqual([
      expect.objectContaining({ incidentKey: `convoy-landed:${convoy.id}`, severity: 'info' }),
    ]);
    expect(await t.model.reports.byIncident(`convoy-landed:${convoy.id}`)).toBeUndefined();
    expect(await t.model.reports.get(landed[0]?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(await t.model.reports.byIncident(key)).toBeUndefined();
    await t.advance(20 * 60_000);
    expect(reportsTo(t.mayor, 'convoy')).toHaveLength(3);
    expect(await t.model.reports.open()).toEqual([]);
    await t.stop();
  });
});

describe('edge cases: hand-closed gates, long reasons and messages', () => {
  it('a convoy with a title of the longest length the model accepts is reported once when it stalls, and the patrol carries on', async () => {
    const t = await town({ timings: { ...TIMINGS, convoyStallMs: 5 * 60_000 } });
    const bead = await t.model.beads.create({ title: 'waits', rig: 'api' });
    const convoy = await t.town.convoys.create({ title: 'q'.repeat(500), beadIds: [bead.id] });
    const seenFrom = t.seen.length;
    await t.advance(15 * 60_000);
    const failures = patrolFailures(t, seenFrom);
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(reportsTo(t.mayor, `convoy-stalled:${convoy.id}`)).toHaveLength(1);
    await t.stop();
  });
});
