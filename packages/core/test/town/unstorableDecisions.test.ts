import type { Gate, GateDecision, GateEvaluator } from '@belfry/core/gate';
import { createTestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, TIMINGS, timerEvaluator, until } from './helpers';

/** A cyclic object. */
function cycle(): Record<string, unknown> {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}

/** A getter that throws when the patrol reads it. */
function throwing<T extends object>(base: T, key: string): T {
  return Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get() {
      throw new Error(`reading ${key} blew up`);
    },
  });
}

/**
 * Answers the probe found wedging every patrol (issue 13, item 2), and more: each passes or
 * fails `isGateDecision` on its own, but none can be stored.
 */
const ANSWERS: Array<[string, () => unknown]> = [
  ['close: a BigInt in the result', () => ({ kind: 'close', result: { n: 10n } })],
  ['close: a cycle in the result', () => ({ kind: 'close', result: cycle() })],
  ['close: a function in the result', () => ({ kind: 'close', result: { f: () => 1 } })],
  ['close: NaN in the result', () => ({ kind: 'close', result: { n: Number.NaN } })],
  ['close: Infinity in the result', () => ({ kind: 'close', result: [Number.POSITIVE_INFINITY] })],
  ['close: a symbol in the result', () => ({ kind: 'close', result: { s: Symbol('x') } })],
  ['close: a failure over 1,000 characters', () => ({ kind: 'close', failure: 'x'.repeat(1_001) })],
  ['close: an empty failure', () => ({ kind: 'close', failure: '' })],
  ['close: a throwing getter on the result', () => throwing({ kind: 'close' }, 'result')],
  ['pending: a function in the memo', () => ({ kind: 'pending', memo: { f: () => 1 } })],
  ['pending: a BigInt in the memo', () => ({ kind: 'pending', memo: { n: 1n } })],
  ['pending: an array as the memo', () => ({ kind: 'pending', memo: [1, 2] })],
  [
    'pending: a memo over the size limit',
    () => ({ kind: 'pending', memo: { s: 'm'.repeat(70_000) } }),
  ],
  [
    'pending: a fractional nextCheckAt',
    () => ({ kind: 'pending', nextCheckAt: 1_700_000_000_000.5 }),
  ],
  ['pending: a negative nextCheckAt', () => ({ kind: 'pending', nextCheckAt: -5 })],
  ['pending: a huge nextCheckAt', () => ({ kind: 'pending', nextCheckAt: Number.MAX_VALUE })],
  ['pending: a string nextCheckAt', () => ({ kind: 'pending', nextCheckAt: '5' })],
  ['pending: a throwing getter on the memo', () => throwing({ kind: 'pending' }, 'memo')],
  ['escalate: a cycle in the memo', () => ({ kind: 'escalate', reason: 'slow', memo: cycle() })],
  ['escalate: a throwing getter on the reason', () => throwing({ kind: 'escalate' }, 'reason')],
  ['a throwing getter on the kind', () => throwing({}, 'kind')],
];

/** An evaluator of `bad` gates answering gate `i` (spec `{ i }`) with ANSWERS[i]. */
function unstorable(): GateEvaluator {
  return {
    type: 'bad',
    validate: (spec: unknown) => ({ i: (spec as { i: number }).i }),
    async evaluate(gates: readonly Gate[]) {
      const out = new Map<string, GateDecision>();
      for (const gate of gates)
        out.set(
          gate.id,
          (ANSWERS[gate.spec.i as number] as [string, () => unknown])[1]() as GateDecision,
        );
      return out;
    },
  };
}

describe('evaluator decisions that cannot be stored (issue 13, item 2)', () => {
  it(`all ${ANSWERS.length} shapes: each gate escalated and left open, one report for the evaluator; other gates, requests and patrols go on`, async () => {
    const t = await createTestTown({
      gates: [unstorable(), timerEvaluator()],
      timings: { ...TIMINGS, gateIntervalMs: 30_000 },
    });
    const bad = [];
    for (const [i] of ANSWERS.entries())
      bad.push(await t.model.gates.create({ type: 'bad', spec: { i } }));
    const timer = await t.model.gates.create({ type: 'timer', spec: { durationMs: 90_000 } });
    await t.advance(120_000);
    // The timer gate closed beside them; a rig request is carried out; patrols keep finishing.
    expect((await t.model.gates.require(timer.id)).status).toBe('closed');
    await until(t, t.town.rigs.park('api'));
    const finished = eventsOf(t, 'patrol.finished').length;
    await t.advance(600_000);
    expect(eventsOf(t, 'patrol.finished').length).toBeGreaterThan(finished + 3);
    const status = await t.town.status();
    expect(status.deacon.restarts).toBe(0);
    for (const [i, gate] of bad.entries()) {
      const now = await t.model.gates.require(gate.id);
      expect(now.status, ANSWERS[i]?.[0]).toBe('open');
      expect(now.escalations?.[0]?.reason, ANSWERS[i]?.[0]).toMatch(
        /its evaluator('s decision cannot be stored| answered .*, not a decision)/,
      );
    }
    const reports = eventsOf(
      t,
      'report',
      (e) => e.created && e.report.incidentKey === 'gate-evaluator:bad:UNSTORABLE_DECISION',
    );
    expect(reports).toHaveLength(1);
    await t.stop();
  });

  it('a Map whose has() throws: that evaluator’s gates are escalated; the patrol goes on', async () => {
    const throwingMap: GateEvaluator = {
      type: 'odd',
      validate: (spec: unknown) => spec as Record<string, never>,
      async evaluate() {
        const out = new Map<string, GateDecision>();
        out.has = () => {
          throw new Error('has() is broken');
        };
        return out;
      },
    };
    const t = await createTestTown({ gates: [throwingMap, timerEvaluator()], timings: TIMINGS });
    const odd = await t.model.gates.create({ type: 'odd', spec: {} });
    const timer = await t.model.gates.create({ type: 'timer', spec: { durationMs: 60_000 } });
    await t.advance(300_000);
    expect((await t.model.gates.require(timer.id)).status).toBe('closed');
    const gate = await t.model.gates.require(odd.id);
    expect(gate.status).toBe('open');
    expect(gate.escalations?.[0]?.reason).toMatch(/cannot be stored: has\(\) is broken/);
    expect((await t.town.status()).deacon.restarts).toBe(0);
    await t.stop();
  });
});
