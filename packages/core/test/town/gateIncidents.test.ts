import type { GateEvaluator } from '@belfry/core/gate';
import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo, TIMINGS, until } from './chainHelpers';
import { flipEvaluator, patrolFailures, START, town } from './recordingTown';

describe('gate incidents', () => {
  it('an evaluator escalating with a new reason each patrol: one report, counted, showing the latest; at most 20 escalations on the gate', async () => {
    const flip = flipEvaluator();
    const t = await town({ gates: [flip], timings: { ...TIMINGS, gateIntervalMs: 30_000 } });
    const gate = await t.town.gates.create({ type: 'flip', spec: {} });
    const key = `gate:${gate.id}:escalated`;

    await t.advance(30 * TIMINGS.heartbeatMs);
    expect(flip.calls).toBeGreaterThanOrEqual(25);
    expect(reportsTo(t.mayor, 'gate')).toEqual([
      expect.objectContaining({ incidentKey: key, count: 1 }),
    ]);
    const open = await t.model.reports.byIncident(key);
    expect(open).toMatchObject({
      count: flip.escalations,
      title: expect.stringContaining(`attempt ${flip.calls}: the run failed`),
    });
    const escalations = (await t.model.gates.require(gate.id)).escalations;
    expect(escalations).toHaveLength(20);
    // The newest twenty are kept.
    expect(escalations.map((e) => e.reason).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `attempt ${flip.calls - 19 + i}: the run failed`).sort(),
    );

    // It answers pending: the incident is over.
    flip.mode = 'pending';
    const calls = flip.calls;
    await until(t, () => flip.calls > calls, { what: 'an evaluation answering pending' });
    await t.advance(0);
    expect(await t.model.reports.byIncident(key)).toBeUndefined();
    expect(await t.model.reports.get(open?.id as string)).toMatchObject({ status: 'resolved' });
    await t.advance(5 * TIMINGS.heartbeatMs);
    expect(reportsTo(t.mayor, 'gate')).toHaveLength(1);

    // A later escalation is a new incident: the Mayor hears again.
    flip.mode = 'escalate';
    const again = flip.calls;
    await until(t, () => flip.calls > again, { what: 'an escalating evaluation' });
    await t.advance(0);
    const second = reportsTo(t.mayor, 'gate');
    expect(second).toHaveLength(2);
    expect(second[1]).toMatchObject({ incidentKey: key, count: 1 });
    expect(second[1]?.id).not.toBe(open?.id);
    expect((await t.model.gates.require(gate.id)).escalations.length).toBeLessThanOrEqual(20);
    await t.stop();
  });

  it('closing a gate by hand resolves its open escalation and timeout reports at once', async () => {
    const flip = flipEvaluator();
    const t = await town({ gates: [flip], timings: { ...TIMINGS, gateIntervalMs: 30_000 } });
    const gate = await t.town.gates.create({ type: 'flip', spec: {}, timeoutMs: 3 * 60_000 });
    await t.advance(5 * TIMINGS.heartbeatMs);
    const escalated = await t.model.reports.byIncident(`gate:${gate.id}:escalated`);
    const timedOut = await t.model.reports.byIncident(`gate-timeout:${gate.id}`);
    expect(escalated).toBeDefined();
    expect(timedOut).toBeDefined();

    await t.town.gates.resolve(gate.id, { approvedBy: 'ada' });
    // Right away, not at the next patrol.
    expect(await t.model.reports.byIncident(`gate:${gate.id}:escalated`)).toBeUndefined();
    expect(await t.model.reports.byIncident(`gate-timeout:${gate.id}`)).toBeUndefined();
    expect(await t.model.reports.get(escalated?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(await t.model.reports.get(timedOut?.id as string)).toMatchObject({
      status: 'resolved',
    });
    const calls = flip.calls;
    await t.advance(10 * TIMINGS.heartbeatMs);
    expect(flip.calls).toBe(calls);
    expect(await t.model.reports.open()).toEqual([]);
    expect(
      reportsTo(t.mayor, 'gate')
        .map((r) => r.incidentKey)
        .sort(),
    ).toEqual([`gate-timeout:${gate.id}`, `gate:${gate.id}:escalated`].sort());
    await t.stop();
  });

  it('an overdue gate is escalated as overdue once, even while its evaluator escalates with ever new reasons', async () => {
    const flip = flipEvaluator();
    const t = await town({ gates: [flip], timings: { ...TIMINGS, gateIntervalMs: 30_000 } });
    const gate = await t.town.gates.create({ type: 'flip', spec: {}, timeoutMs: 2 * 60_000 });
    await t.advance(50 * TIMINGS.heartbeatMs);
    expect(flip.calls).toBeGreaterThan(45);

    const overdue = eventsOf(t, 'gate.escalated').filter(
      (e) => e.gateId === gate.id && e.reason === 'past its timeout with no result',
    );
    expect(reportsTo(t.mayor, `gate-timeout:${gate.id}`)).toHaveLength(1);
    expect(
      overdue.map((e) => e.at - START),
      'the gate was escalated as overdue again each time its overdue entry fell out of the 20 kept escalations',
    ).toHaveLength(1);
    expect(await t.model.reports.byIncident(`gate-timeout:${gate.id}`)).toMatchObject({
      count: 1,
    });
    await t.stop();
  });
});

describe('edge cases: hand-closed gates, long reasons and messages', () => {
  it('an evaluator escalating with a long reason (a log excerpt) is reported once and does not fail the patrol', async () => {
    const reason = `the run failed: ${'x'.repeat(600)}`;
    const evaluator: GateEvaluator = {
      type: 'ci',
      validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
      async evaluate(gates) {
        return new Map(gates.map((g) => [g.id, { kind: 'escalate', reason }]));
      },
    };
    const t = await town({ gates: [evaluator] });
    const seenFrom = t.seen.length;
    const gate = await t.town.gates.create({ type: 'ci', spec: {} });
    await t.advance(5 * TIMINGS.heartbeatMs);
    const failures = patrolFailures(t, seenFrom);
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(reportsTo(t.mayor, `gate:${gate.id}:escalated`)).toHaveLength(1);
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    await t.stop();
  });

  it('an evaluator that throws an error with a long message affects only its own gates: reported once, the patrol carries on', async () => {
    const evaluator: GateEvaluator = {
      type: 'ci',
      validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
      evaluate() {
        throw new Error(`HTTP 503: ${'<p>unavailable</p>'.repeat(40)}`);
      },
    };
    const t = await town({ gates: [evaluator] });
    const seenFrom = t.seen.length;
    await t.town.gates.create({ type: 'ci', spec: {} });
    await t.advance(5 * TIMINGS.heartbeatMs);
    const failures = patrolFailures(t, seenFrom);
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(eventsOf(t, 'gate.evaluatorFailed').length).toBeGreaterThanOrEqual(5);
    expect(reportsTo(t.mayor, 'gate-evaluator:ci:')).toHaveLength(1);
    await t.stop();
  });
});
