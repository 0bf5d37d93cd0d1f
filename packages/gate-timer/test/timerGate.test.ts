import { ConfigError, type TownEvent } from '@belfry/core';
import { timerGate } from '@belfry/gate-timer';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';

const MIN = 60_000;
const timings = { heartbeatMs: 10_000, patrolIntervalMs: 10_000 };

function closedAt(t: { events: readonly TownEvent[] }, gateId: string): number | undefined {
  return t.events.find((e) => e.type === 'gate.closed' && e.gateId === gateId)?.at;
}

async function advanceUntilClosed(t: TestTown, gateId: string, withinMs: number) {
  return t.next('gate.closed', {
    where: (e) => e.gateId === gateId,
    withinMs,
    stepMs: 1_000,
    since: 0,
  });
}

describe('timerGate', () => {
  it('decides pending (due at the deadline) before it, close with { expiredAt } from it on', async () => {
    const timer = timerGate();
    const gate = {
      id: 'gt-1',
      type: 'timer',
      spec: { durationMs: 30 * MIN },
      status: 'open' as const,
      createdAt: 1_000,
      waiters: [],
      escalations: [],
    };
    const at = (now: number) =>
      timer.evaluate([gate], { now, clock: new SimulatedClock(now), signal: AbortSignal.abort() });
    await expect(at(5)).rejects.toThrow();
    const ask = (now: number) =>
      timer.evaluate([gate], {
        now,
        clock: new SimulatedClock(now),
        signal: new AbortController().signal,
      });
    expect((await ask(1_000 + 30 * MIN - 1)).get('gt-1')).toEqual({
      kind: 'pending',
      nextCheckAt: 1_000 + 30 * MIN,
    });
    expect((await ask(1_000 + 30 * MIN)).get('gt-1')).toEqual({
      kind: 'close',
      result: { expiredAt: 1_000 + 30 * MIN },
    });
    expect((await ask(1_000 + 90 * MIN)).get('gt-1')).toEqual({
      kind: 'close',
      result: { expiredAt: 1_000 + 30 * MIN },
    });
  });

  it('refuses bad options and runs under another type name when asked', () => {
    expect(() => timerGate({ typo: 1 } as never)).toThrow(ConfigError);
    expect(() => timerGate({ type: 'Has Spaces' })).toThrow(/options\.type/);
    expect(() => timerGate(null as never)).toThrow(/options: must be an object/);
    expect(timerGate({ type: 'cooldown' }).type).toBe('cooldown');
  });

  it('in a town, the gate closes at the first patrol from its deadline and its step carries the result', async () => {
    const t = await createTestTown({ gates: [timerGate()], timings });
    const molecule = await t.model.molecules.create({
      name: 'deploy',
      rig: 'api',
      steps: [{ name: 'cool-down', gate: { type: 'timer', spec: { durationMs: 30 * MIN } } }],
    });
    const gateId = molecule.waitingOn as string;
    const created = t.clock.now();
    await t.advance(30 * MIN - 1_000);
    expect((await t.model.gates.require(gateId)).status).toBe('open');
    const closed = await advanceUntilClosed(t, gateId, 60_000);
    expect(closed.at).toBeGreaterThanOrEqual(created + 30 * MIN);
    expect(closed.at).toBeLessThan(created + 30 * MIN + timings.patrolIntervalMs + 1_000);
    const dispatched = await t.next('molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id,
      since: 0,
    });
    expect((await t.model.beads.require(dispatched.beadId)).metadata).toMatchObject({
      gate: { id: gateId, type: 'timer', result: { expiredAt: created + 30 * MIN } },
    });
    await t.stop();
  });

  it('keeps the remaining time across a daemon crash: a restart does not re-arm the timer', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const first = await createTestTown({ gates: [timerGate()], timings, clock });
    const gate = await first.town.gates.create({ type: 'timer', spec: { durationMs: 30 * MIN } });
    const created = clock.now();
    await first.advance(20 * MIN);
    first.town.kill(); // the daemon dies with 10 minutes left
    await clock.advance(5 * MIN); // and stays down for five of them

    const second = await createTestTown({
      gates: [timerGate()],
      timings,
      clock,
      store: first.store,
      driver: first.driver,
    });
    expect((await second.model.gates.require(gate.id)).status).toBe('open');
    const closed = await advanceUntilClosed(second, gate.id, 10 * MIN);
    // Due at its stored deadline: 5 minutes after the restart, not 30.
    expect(closed.at).toBeGreaterThanOrEqual(created + 30 * MIN);
    expect(closed.at).toBeLessThan(created + 30 * MIN + timings.patrolIntervalMs + 1_000);
    expect(closedAt(first, gate.id)).toBeUndefined();
    await second.stop();
  });

  it('a timer that ran out while the daemon was down closes at the first patrol after the restart', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const first = await createTestTown({ gates: [timerGate()], timings, clock });
    const gate = await first.town.gates.create({ type: 'timer', spec: { durationMs: 30 * MIN } });
    await first.advance(MIN);
    first.town.kill();
    await clock.advance(2 * 60 * MIN);
    const restartedAt = clock.now();
    const second = await createTestTown({
      gates: [timerGate()],
      timings,
      clock,
      store: first.store,
      driver: first.driver,
    });
    const closed = await advanceUntilClosed(second, gate.id, MIN);
    expect(closed.at - restartedAt).toBeLessThanOrEqual(timings.patrolIntervalMs);
    expect((await second.model.gates.require(gate.id)).result).toEqual({
      expiredAt: gate.createdAt + 30 * MIN,
    });
    await second.stop();
  });
});
