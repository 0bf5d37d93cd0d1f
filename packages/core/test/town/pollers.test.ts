import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo } from './chainHelpers';
import { START, stuckPoller, town } from './recordingTown';

describe('pollers', () => {
  it('a run that never finishes is aborted after its interval (the default time limit), reported once, and the poller keeps running', async () => {
    const { runs, poller } = stuckPoller({ intervalMs: 60_000 });
    const t = await town({ pollers: [poller] });

    await t.advance(60_000);
    expect(runs.map((r) => r.at - START)).toEqual([60_000]);
    await t.advance(59_999);
    expect(runs[0]?.signal.aborted).toBe(false);
    expect(eventsOf(t, 'poller.failed')).toEqual([]);
    await t.advance(1);
    expect(runs[0]?.signal.aborted).toBe(true);
    const failed = eventsOf(t, 'poller.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ poller: 'inbox', at: START + 120_000 });
    expect(failed[0]?.error.message).toContain('did not finish within 60000 ms');
    expect(reportsTo(t.mayor, 'poller:')).toEqual([
      expect.objectContaining({ incidentKey: 'poller:inbox', severity: 'low' }),
    ]);

    await t.advance(10 * 60_000);
    // One run per interval after the last one ended: each is aborted in turn.
    expect(runs.map((r) => r.at - START)).toEqual([
      60_000, 180_000, 300_000, 420_000, 540_000, 660_000,
    ]);
    // The sixth run reached its limit just now (at 720 s).
    expect(runs.every((r) => r.signal.aborted)).toBe(true);
    expect(eventsOf(t, 'poller.failed').map((e) => e.at - START)).toEqual([
      120_000, 240_000, 360_000, 480_000, 600_000, 720_000,
    ]);
    expect(reportsTo(t.mayor, 'poller:')).toHaveLength(1);
    expect(await t.model.reports.byIncident('poller:inbox')).toMatchObject({ count: 6 });
    await t.stop();
  });

  it('an explicit timeoutMs shorter than the interval applies', async () => {
    const { runs, poller } = stuckPoller({ intervalMs: 60_000, timeoutMs: 5_000 });
    const t = await town({ pollers: [poller] });
    await t.advance(64_999);
    expect(runs[0]?.signal.aborted).toBe(false);
    await t.advance(1);
    expect(runs[0]?.signal.aborted).toBe(true);
    expect(eventsOf(t, 'poller.failed').map((e) => e.at - START)).toEqual([65_000]);
    await t.advance(60_000);
    expect(runs.map((r) => r.at - START)).toEqual([60_000, 125_000]);
    await t.stop();
  });

  it('stopping the town aborts the signal of a run in flight and files no report', async () => {
    const { runs, poller } = stuckPoller({ intervalMs: 60_000 });
    const t = await town({ pollers: [poller] });
    await t.advance(90_000);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.signal.aborted).toBe(false);

    await t.town.stop();
    expect(runs[0]?.signal.aborted).toBe(true);
    // Past the time limit of the run that was cut off: still nothing.
    await t.advance(5 * 60_000);
    expect(runs).toHaveLength(1);
    expect(eventsOf(t, 'poller.failed')).toEqual([]);
    expect(reportsTo(t.mayor, 'poller:')).toEqual([]);
    expect(await t.model.reports.byIncident('poller:inbox')).toBeUndefined();
  });
});

describe('edge cases: hand-closed gates, long reasons and messages', () => {
  it('a poller failing with a long error message (an HTTP error body) is still reported once', async () => {
    const t = await town({
      pollers: [
        {
          name: 'discord',
          intervalMs: 60_000,
          run: () => {
            throw new Error(`HTTP 502: ${'<html>'.repeat(100)}`);
          },
        },
      ],
    });
    await t.advance(5 * 60_000);
    expect(eventsOf(t, 'poller.failed')).toHaveLength(5);
    expect(
      reportsTo(t.mayor, 'poller:discord'),
      'the report (its title carries the whole message) was refused, and nobody was told',
    ).toHaveLength(1);
    await t.stop();
  });

  it('a per-rig poller that times out is reported per rig, and a run that succeeds again resolves it', async () => {
    let hang = true;
    const signals: Array<{ rig: string | undefined; signal: AbortSignal }> = [];
    const t = await town({
      rigs: ['api', 'web'],
      pollers: [
        {
          name: 'inbox',
          intervalMs: 60_000,
          timeoutMs: 10_000,
          perRig: true,
          run: ({ rig, signal }) => {
            signals.push({ rig, signal });
            return rig === 'web' && hang ? new Promise<void>(() => {}) : undefined;
          },
        },
      ],
    });
    await t.advance(70_000);
    expect(signals.map((s) => [s.rig, s.signal.aborted])).toEqual([
      ['api', false],
      ['web', true],
    ]);
    expect(eventsOf(t, 'poller.failed')).toEqual([
      expect.objectContaining({ poller: 'inbox', rig: 'web', at: START + 70_000 }),
    ]);
    expect(reportsTo(t.mayor, 'poller:')).toEqual([
      expect.objectContaining({ incidentKey: 'poller:inbox:web' }),
    ]);
    hang = false;
    await t.advance(60_000);
    expect(await t.model.reports.byIncident('poller:inbox:web')).toBeUndefined();
    expect(eventsOf(t, 'poller.failed')).toHaveLength(1);
    await t.stop();
  });
});
