import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo, settleOn, TIMINGS } from './chainHelpers';
import { town } from './recordingTown';

describe('edge cases: work for other agents, rigs the town cannot name, long triage reasons', () => {
  it("a Boot escalation with a long reason (an LLM triage's explanation) is reported, and the patrol carries on", async () => {
    const reason = `sessions are still running in a docked rig: ${'because '.repeat(80)}`;
    const t = await town({ triage: () => ({ action: 'escalate', reason }) });
    await settleOn(t, t.town.rigs.dock('api'));
    // A session of the rig started behind the town's back.
    await t.driver.start({
      name: 'api-rogue',
      epoch: 1,
      command: ['agent'],
      labels: { rig: 'api' },
    });
    const seenFrom = t.seen.length;
    const from = t.events.length;
    await t.advance(3 * TIMINGS.heartbeatMs);

    expect(eventsOf(t, 'boot.assessed', from).length).toBeGreaterThan(0);
    const failures = t.seen
      .slice(seenFrom)
      .filter(
        (e) =>
          e.type === 'child.exited' && e.supervisor === 'town/deacon' && e.childId === 'patrol',
      )
      .map((e) => (e.type === 'child.exited' && e.error instanceof Error ? e.error.message : ''));
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(reportsTo(t.mayor, 'boot:docked-rig-with-sessions:api')).toHaveLength(1);
    await t.stop();
  });
});
