import { ConfigError, GateError } from '@belfry/core';
import { humanGate } from '@belfry/gate-human';
import { createTestTown, SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';

const HOUR = 3_600_000;
const timings = { heartbeatMs: 10_000, patrolIntervalMs: 10_000 };

async function gateError(promise: Promise<unknown>): Promise<GateError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GateError);
    return error as GateError;
  }
  throw new Error('expected a GateError');
}

async function waitingTown(spec: Record<string, unknown> = {}, slow = false) {
  const human = humanGate();
  const t = await createTestTown({
    gates: [human],
    timings: slow ? { heartbeatMs: 600_000, patrolIntervalMs: 600_000 } : timings,
  });
  const molecule = await t.model.molecules.create({
    name: 'release',
    rig: 'api',
    steps: [{ name: 'publish', gate: { type: 'human', spec } }],
  });
  return { human, t, molecule, gateId: molecule.waitingOn as string };
}

describe('humanGate', () => {
  it('approve closes the gate with who, when and why, and the waiting step goes out carrying it', async () => {
    const { human, t, molecule, gateId } = await waitingTown({ prompt: 'publish 1.4?' });
    await t.advance(5_000);
    const at = t.clock.now();
    const gate = await human.approve(gateId, { by: 'ada', comment: 'changelog reviewed' });
    expect(gate).toMatchObject({
      status: 'closed',
      closedAt: at,
      result: { decision: 'approved', by: 'ada', at, comment: 'changelog reviewed' },
    });
    expect(gate.failure).toBeUndefined();
    const closed = await t.next('gate.closed', { where: (e) => e.gateId === gateId, since: 0 });
    expect(closed.failure).toBeUndefined();
    const dispatched = await t.next('molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id,
      since: 0,
    });
    expect((await t.model.beads.require(dispatched.beadId)).metadata).toMatchObject({
      gate: { id: gateId, type: 'human', result: { decision: 'approved', by: 'ada' } },
    });
    await t.stop();
  });

  it('reject closes the gate as failed and fails the molecules waiting on it, with the reason', async () => {
    const { human, t, molecule, gateId } = await waitingTown();
    const gate = await human.reject(gateId, { by: 'grace', comment: 'the migration is unsafe' });
    expect(gate).toMatchObject({
      status: 'closed',
      result: { decision: 'rejected', by: 'grace', comment: 'the migration is unsafe' },
      failure: 'rejected by grace: the migration is unsafe',
    });
    expect(await t.model.molecules.require(molecule.id)).toMatchObject({
      status: 'failed',
      failure: `gate ${gateId} (human) failed: rejected by grace: the migration is unsafe`,
    });
    const closed = await t.next('gate.closed', { where: (e) => e.gateId === gateId, since: 0 });
    expect(closed.failure).toBe('rejected by grace: the migration is unsafe');
    await t.advance(60_000);
    expect(t.events.filter((e) => e.type === 'molecule.dispatched')).toEqual([]);
    await t.stop();
  });

  it('only a listed approver may decide', async () => {
    const { human, t, gateId } = await waitingTown({ approvers: ['ada', 'grace'] });
    const refused = await gateError(human.approve(gateId, { by: 'mallory' }));
    expect(refused.code).toBe('NOT_ALLOWED');
    expect(refused.message).toContain('ada, grace');
    expect((await t.model.gates.require(gateId)).status).toBe('open');
    await human.approve(gateId, { by: 'grace' });
    expect((await t.model.gates.require(gateId)).status).toBe('closed');
    await t.stop();
  });

  it('a gate is decided once: a second decision, or two at once, hears who decided', async () => {
    const { human, t, gateId } = await waitingTown();
    await human.approve(gateId, { by: 'ada' });
    const again = await gateError(human.reject(gateId, { by: 'grace' }));
    expect(again.code).toBe('CLOSED');
    expect(again.message).toContain('approved by ada');

    const other = await t.town.gates.create({ type: 'human', spec: {} });
    const outcomes = await Promise.allSettled([
      human.approve(other.id, { by: 'ada' }),
      human.reject(other.id, { by: 'grace' }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(GateError);
    expect((lost.reason as GateError).code).toBe('CLOSED');
    expect(t.events.filter((e) => e.type === 'gate.closed' && e.gateId === other.id)).toHaveLength(
      1,
    );
    await t.stop();
  });

  it('says clearly what was wrong: no started town, unknown gate, another type, bad input', async () => {
    const human = humanGate();
    const notYet = await gateError(human.approve('gt-x', { by: 'ada' }));
    expect(notYet.code).toBe('NOT_ATTACHED');
    const t = await createTestTown({ gates: [human], timings, start: false });
    expect((await gateError(human.approve('gt-x', { by: 'ada' }))).code).toBe('NOT_ATTACHED');
    await t.town.start();
    expect((await gateError(human.approve('gt-nope', { by: 'ada' }))).code).toBe('NOT_FOUND');
    const timer = await t.town.gates.create({ type: 'timer', spec: { durationMs: HOUR } });
    const wrong = await gateError(human.approve(timer.id, { by: 'ada' }));
    expect(wrong.code).toBe('WRONG_TYPE');
    const gate = await t.town.gates.create({ type: 'human', spec: {} });
    await expect(human.approve(gate.id, { by: '' })).rejects.toThrow(/input\.by/);
    await expect(human.approve(gate.id, { by: 'x'.repeat(101) })).rejects.toThrow(ConfigError);
    await expect(human.approve(gate.id, { by: 'ada', comment: 'y'.repeat(2_001) })).rejects.toThrow(
      /input\.comment/,
    );
    await expect(human.approve(gate.id, { by: 'ada', reason: 'x' } as never)).rejects.toThrow(
      /input\.reason/,
    );
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    await t.stop();
    expect((await gateError(human.approve(gate.id, { by: 'ada' }))).code).toBe('NOT_ATTACHED');
    expect(() => humanGate({ approvers: [] } as never)).toThrow(/options\.approvers/);
  });

  it('never approves by itself: without a deadline the gate is not even evaluated', async () => {
    const { t, gateId } = await waitingTown({}, true);
    await t.advance(10 * 24 * HOUR);
    const gate = await t.model.gates.require(gateId);
    expect(gate.status).toBe('open');
    expect(gate.lastEvaluatedAt).toBeUndefined();
    expect(t.events.filter((e) => e.type.startsWith('gate.'))).toEqual([]);
    await t.stop();
  }, 30_000);

  it('past its deadline it escalates once and stays open; a late approval still counts and ends the incident', async () => {
    const { human, t, gateId } = await waitingTown({ prompt: 'publish?', deadlineMs: HOUR });
    const created = t.clock.now();
    await t.advance(HOUR - 20_000);
    expect(t.events.filter((e) => e.type === 'gate.escalated')).toEqual([]);
    const escalated = await t.next('gate.escalated', { where: (e) => e.gateId === gateId });
    expect(escalated.at).toBeGreaterThanOrEqual(created + HOUR);
    expect(escalated.reason).toContain('no decision by its deadline');
    expect(escalated.reason).toContain('publish?');
    expect(await t.model.reports.byIncident(`gate:${gateId}:escalated`)).toBeDefined();
    // It is not looked at again by itself: one escalation, however long it waits.
    await t.advance(6 * HOUR);
    expect(t.events.filter((e) => e.type === 'gate.escalated')).toHaveLength(1);
    const gate = await t.model.gates.require(gateId);
    expect(gate).toMatchObject({ status: 'open', escalations: [{ count: 1 }] });
    expect(gate.dueAt).toBeUndefined();
    await human.approve(gateId, { by: 'ada', comment: 'sorry, late' });
    expect(await t.model.reports.byIncident(`gate:${gateId}:escalated`)).toBeUndefined();
    await t.stop();
  }, 20_000);

  it('keeps its deadline across a restart, and a new town’s evaluator decides gates made before', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const first = await createTestTown({ gates: [humanGate()], timings, clock });
    const late = await first.town.gates.create({ type: 'human', spec: { deadlineMs: HOUR } });
    const other = await first.town.gates.create({ type: 'human', spec: {} });
    await first.advance(HOUR / 2);
    first.town.kill();
    await clock.advance(HOUR / 4);

    const human = humanGate();
    const second = await createTestTown({
      gates: [human],
      timings,
      clock,
      store: first.store,
      driver: first.driver,
    });
    const escalated = await second.next('gate.escalated', {
      where: (e) => e.gateId === late.id,
      since: 0,
      withinMs: HOUR,
      stepMs: 5_000,
    });
    expect(escalated.at).toBeGreaterThanOrEqual(late.createdAt + HOUR);
    expect(escalated.at).toBeLessThan(late.createdAt + HOUR + 20_000);
    await human.approve(other.id, { by: 'ada' });
    expect((await second.model.gates.require(other.id)).status).toBe('closed');
    await second.stop();
  }, 20_000);
});
