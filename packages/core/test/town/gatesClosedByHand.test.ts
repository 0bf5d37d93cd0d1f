import type { GateEvaluator } from '@belfry/core/gate';
import { describe, expect, it } from 'vitest';
import { eventsOf, reportsTo, TIMINGS, until } from './chainHelpers';
import { deferred, patrolFailures, slowEvaluator, town } from './recordingTown';

describe('a gate closed by hand while its evaluator is evaluating', () => {
  it.each<[string, unknown]>([
    ['close', { kind: 'close', result: { by: 'evaluator' } }],
    ['pending', { kind: 'pending' }],
    ['escalate', { kind: 'escalate', reason: 'the run failed' }],
    ['something that is not a decision', { kind: 'maybe' }],
  ])(
    'an answer of %s does not fail the patrol; the hand result stands',
    async (_what, decision) => {
      const slow = slowEvaluator(decision);
      const t = await town({ gates: [slow], timings: { ...TIMINGS, gateTimeoutMs: 60_000 } });
      const molecule = await t.model.molecules.create({
        name: 'approve-then-ship',
        rig: 'api',
        steps: [{ name: 'ship', gate: { type: 'slow', spec: {} } }],
      });
      const gateId = molecule.waitingOn as string;
      t.town.wake();
      await until(t, () => slow.calls > 0, { stepMs: 100, what: 'the evaluation to begin' });
      const from = t.events.length;
      const seenFrom = t.seen.length;

      const closed = await t.town.gates.resolve(gateId, { approvedBy: 'ada' });
      expect(closed).toMatchObject({ status: 'closed', result: { approvedBy: 'ada' } });
      slow.release.resolve();

      const finished = await t.next('patrol.finished', { since: from, withinMs: 30_000 });
      const gatesStep = eventsOf(t, 'patrol.step', from).find(
        (e) => e.moleculeId === finished.moleculeId && e.step === 'gates',
      );
      expect(gatesStep?.result).toEqual({
        evaluated: 1,
        closed: 0,
        escalated: 0,
        overdue: 0,
        failed: [],
      });
      const patrolExits = t.seen
        .slice(seenFrom)
        .filter(
          (e) =>
            (e.type === 'child.exited' || e.type === 'child.restarting') &&
            e.supervisor === 'town/deacon' &&
            e.childId === 'patrol',
        );
      expect(patrolExits).toEqual([]);
      expect(await t.model.gates.require(gateId)).toMatchObject({
        status: 'closed',
        result: { approvedBy: 'ada' },
        escalations: [],
      });
      // One gate.closed: the hand close's; the evaluator's late answer adds none.
      expect(eventsOf(t, 'gate.closed').map((e) => e.gateId)).toEqual([gateId]);
      expect(eventsOf(t, 'gate.escalated')).toEqual([]);
      expect(eventsOf(t, 'gate.evaluatorFailed')).toEqual([]);
      expect(reportsTo(t.mayor, 'gate')).toEqual([]);

      // The molecule the hand close released goes out once.
      await t.advance(5 * 60_000);
      expect(
        eventsOf(t, 'molecule.dispatched').filter((e) => e.moleculeId === molecule.id),
      ).toHaveLength(1);
      expect(slow.calls).toBe(1);
      await t.stop();
    },
  );
});

describe('edge cases: hand-closed gates, long reasons and messages', () => {
  it.each([
    ['throws', 'throw'],
    ['hangs past gateTimeoutMs', 'hang'],
  ] as const)(
    'a gate closed by hand while its evaluator runs, which then %s, does not fail the patrol',
    async (_what, how) => {
      const release = deferred();
      let calls = 0;
      const evaluator: GateEvaluator = {
        type: 'slow',
        validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
        async evaluate() {
          calls++;
          if (how === 'hang') return new Promise<never>(() => {});
          await release.promise;
          throw new Error('the CI API is down');
        },
      };
      const t = await town({ gates: [evaluator], timings: { ...TIMINGS, gateTimeoutMs: 20_000 } });
      const gate = await t.town.gates.create({ type: 'slow', spec: {} });
      t.town.wake();
      await until(t, () => calls > 0, { stepMs: 100, what: 'the evaluation to begin' });
      const from = t.events.length;
      const seenFrom = t.seen.length;
      await t.town.gates.resolve(gate.id, { approvedBy: 'ada' });
      release.resolve();

      await t.next('patrol.finished', { since: from, withinMs: 60_000 });
      const failures = patrolFailures(t, seenFrom);
      expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
      expect(await t.model.gates.require(gate.id)).toMatchObject({
        status: 'closed',
        result: { approvedBy: 'ada' },
      });
      await t.stop();
    },
  );

  it('a gate closed by hand mid-evaluation does not keep the rest of its batch from closing', async () => {
    const release = deferred();
    let calls = 0;
    const evaluator: GateEvaluator = {
      type: 'slow',
      validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
      async evaluate(gates) {
        calls++;
        await release.promise;
        return new Map(gates.map((g) => [g.id, { kind: 'close', result: { by: 'ci' } }]));
      },
    };
    const t = await town({ gates: [evaluator], timings: { ...TIMINGS, gateTimeoutMs: 60_000 } });
    const byHand = await t.town.gates.create({ type: 'slow', spec: { n: 1 } });
    await t.advance(1);
    const byCi = await t.town.gates.create({ type: 'slow', spec: { n: 2 } });
    t.town.wake();
    await until(t, () => calls > 0, { stepMs: 100, what: 'the evaluation to begin' });
    await t.town.gates.resolve(byHand.id, { approvedBy: 'ada' });
    release.resolve();
    const closed = await t.next('gate.closed', { where: (e) => e.gateId === byCi.id });
    expect(closed.gateType).toBe('slow');
    expect(await t.model.gates.require(byCi.id)).toMatchObject({ result: { by: 'ci' } });
    expect(await t.model.gates.require(byHand.id)).toMatchObject({ result: { approvedBy: 'ada' } });
    // Each closed once: by hand first, then by its evaluator.
    expect(eventsOf(t, 'gate.closed').map((e) => e.gateId)).toEqual([byHand.id, byCi.id]);
    await t.stop();
  });
});
