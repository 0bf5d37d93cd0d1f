import type { Molecule } from '@belfry/core';
import type { Gate, GateDecision, GateEvaluator, JsonObject } from '@belfry/core/gate';
import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  badEvaluator,
  eventsOf,
  ghRunEvaluator,
  type Misbehaviour,
  mayorSink,
  type RunState,
  since,
  TIMINGS,
  timerEvaluator,
  waitFor,
} from './helpers';

const timings = { ...TIMINGS, gateIntervalMs: 30_000, gateTimeoutMs: 5_000 };

describe('gates through the patrol', () => {
  it('a timer gate closes once its time has passed, and its molecule step goes to the rig once', async () => {
    const timer = timerEvaluator();
    const t = await createTestTown({ gates: [timer], timings });
    const molecule = await t.model.molecules.create({
      name: 'deploy',
      rig: 'api',
      steps: [{ name: 'cool-down', gate: { type: 'timer', spec: { durationMs: 150_000 } } }],
    });
    expect(molecule.status).toBe('waiting');
    const gateId = molecule.waitingOn as string;
    const createdAt = t.clock.now();

    // Patrols before the timer expires leave it open and dispatch nothing.
    await t.advance(140_000);
    expect(eventsOf(t, 'patrol.finished').length).toBeGreaterThanOrEqual(3);
    expect((await t.model.gates.require(gateId)).status).toBe('open');
    expect(eventsOf(t, 'molecule.dispatched')).toEqual([]);

    const closed = await waitFor(t, 'gate.closed', { where: (e) => e.gateId === gateId });
    expect(closed.gateType).toBe('timer');
    expect(closed.at).toBeGreaterThanOrEqual(createdAt + 150_000);
    const gate = await t.model.gates.require(gateId);
    expect(gate).toMatchObject({ status: 'closed', result: { expiredAt: createdAt + 150_000 } });

    const dispatched = await waitFor(t, 'molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id,
    });
    const beadId = `${molecule.id}.s0.e1`;
    expect(dispatched).toMatchObject({ step: 0, beadId, rig: 'api' });
    const spawned = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === beadId });
    expect(spawned.rig).toBe('api');
    expect(await t.model.beads.require(beadId)).toMatchObject({
      status: 'hooked',
      assignee: spawned.agent,
      labels: ['molecule-step'],
      metadata: { molecule: molecule.id, step: 0, epoch: 1 },
    });
    expect(await t.model.molecules.require(molecule.id)).toMatchObject({
      status: 'running',
      epoch: 1,
      cursor: 0,
    });

    // Many more patrols: still one dispatch and one polecat for the step.
    await t.advance(600_000);
    expect(eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === molecule.id)).toHaveLength(1);
    expect(eventsOf(t, 'polecat.spawned', (e) => e.beadId === beadId)).toHaveLength(1);
    expect(eventsOf(t, 'gate.closed')).toHaveLength(1);
    await t.stop();
  });

  it('done on a step bead completes the step; the next step goes out, and a human gate waits for resolve', async () => {
    const t = await createTestTown({ gates: [timerEvaluator()], timings });
    const molecule = await t.model.molecules.create({
      name: 'release',
      rig: 'api',
      steps: [
        { name: 'build' },
        { name: 'test' },
        { name: 'ship', gate: { type: 'human', spec: { prompt: 'ship it?' } } },
      ],
    });
    expect(molecule.status).toBe('ready');
    const s0 = `${molecule.id}.s0.e1`;
    const first = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === s0 });
    expect(eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === molecule.id)).toEqual([
      expect.objectContaining({ step: 0, beadId: s0 }),
    ]);

    await t.town.done(first.agent, first.beadId, { result: { artifact: 'v1.2.3' } });
    expect((await t.model.beads.require(s0)).status).toBe('done');
    let m = await t.model.molecules.require(molecule.id);
    expect(m).toMatchObject({ status: 'running', cursor: 1, epoch: 1 });
    expect(m.completed).toEqual([
      expect.objectContaining({ step: 0, name: 'build', result: { artifact: 'v1.2.3' } }),
    ]);
    // The next step's bead is on a hook right away and gets a session.
    const s1 = `${molecule.id}.s1.e1`;
    expect((await t.model.hooks.byBead(s1))?.rig).toBe('api');
    const second = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.beadId === s1,
      withinMs: 120_000,
    });

    // Done with step 1: step 2 waits on a human gate, which no patrol closes by itself.
    await t.town.done(second.agent, second.beadId);
    m = await t.model.molecules.require(molecule.id);
    expect(m).toMatchObject({ status: 'waiting', cursor: 2 });
    const gateId = m.waitingOn as string;
    expect((await t.model.gates.require(gateId)).type).toBe('human');
    await t.advance(600_000);
    expect((await t.model.gates.require(gateId)).status).toBe('open');
    expect(eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === molecule.id)).toHaveLength(1);
    expect(eventsOf(t, 'gate.evaluatorFailed')).toEqual([]);

    // A person approves: the molecule is released and dispatched again with a new epoch.
    const resolved = await t.town.gates.resolve(gateId, { approvedBy: 'ada' });
    expect(resolved).toMatchObject({ status: 'closed', result: { approvedBy: 'ada' } });
    const s2 = `${molecule.id}.s2.e2`;
    const dispatched = await waitFor(t, 'molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id && e.step === 2,
      withinMs: 120_000,
    });
    expect(dispatched).toMatchObject({ beadId: s2, rig: 'api' });
    const third = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === s2 });
    await t.town.done(third.agent, third.beadId);
    m = await t.model.molecules.require(molecule.id);
    expect(m.status).toBe('done');
    expect(m.completed.map((c) => c.name)).toEqual(['build', 'test', 'ship']);
    await t.advance(300_000);
    expect(eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === molecule.id)).toHaveLength(2);
    await t.stop();
  });

  it('a gh:run gate stays pending, closes on success, and escalates once on failure staying open', async () => {
    const runs = new Map<number, RunState>([
      [101, 'pending'],
      [202, 'pending'],
    ]);
    const gh = ghRunEvaluator(runs);
    const sink = mayorSink();
    const t = await createTestTown({ gates: [gh], timings, mayor: sink.mayor });
    const ok = await t.model.molecules.create({
      name: 'wait-ci',
      rig: 'api',
      steps: [
        {
          name: 'merge',
          gate: { type: 'gh:run', spec: { owner: 'belfry', repo: 'belfry', runId: 101 } },
        },
      ],
    });
    const okGate = ok.waitingOn as string;
    const bad = await t.town.gates.create({
      type: 'gh:run',
      spec: { owner: 'belfry', repo: 'belfry', runId: 202 },
    });

    // Pending: evaluated in batches patrol after patrol, rescheduled, open.
    await t.advance(200_000);
    expect(gh.batches.length).toBeGreaterThanOrEqual(3);
    expect(gh.batches.at(-1)?.sort()).toEqual([okGate, bad.id].sort());
    const pending = await t.model.gates.require(okGate);
    expect(pending.status).toBe('open');
    expect(pending.lastEvaluatedAt).toBeGreaterThan(t.clock.now() - 60_000);
    expect(pending.dueAt).toBe((pending.lastEvaluatedAt as number) + 30_000);

    runs.set(101, 'success');
    runs.set(202, 'failure');
    const closed = await waitFor(t, 'gate.closed', { where: (e) => e.gateId === okGate });
    expect(closed.gateType).toBe('gh:run');
    expect((await t.model.gates.require(okGate)).result).toEqual({
      conclusion: 'success',
      runId: 101,
    });
    await waitFor(t, 'molecule.dispatched', { where: (e) => e.moleculeId === ok.id });

    // The failed run: escalated, reported once, open, however many patrols look at it again.
    await t.advance(600_000);
    const failed = await t.model.gates.require(bad.id);
    expect(failed.status).toBe('open');
    expect(failed.escalations).toEqual([
      expect.objectContaining({ reason: 'run 202 failed', count: expect.any(Number) }),
    ]);
    expect(failed.escalations[0]?.count).toBeGreaterThan(3);
    expect(eventsOf(t, 'gate.escalated', (e) => e.gateId === bad.id)).toEqual([
      expect.objectContaining({ gateType: 'gh:run', reason: 'run 202 failed' }),
    ]);
    expect(sink.reports(`gate:${bad.id}`)).toHaveLength(1);
    expect(sink.reports(`gate:${bad.id}`)[0]?.title).toContain('run 202 failed');
    // The run is fixed and re-run: the gate closes after all.
    runs.set(202, 'success');
    await waitFor(t, 'gate.closed', { where: (e) => e.gateId === bad.id });
    await t.stop();
  });

  describe.each<{ how: Misbehaviour; what: string }>([
    { how: 'throws', what: 'throws' },
    { how: 'non-map', what: 'returns something other than a Map' },
    { how: 'hangs', what: 'never resolves (gateTimeoutMs, its signal aborted)' },
  ])('an evaluator that $what', ({ how }) => {
    it('affects only its own gates: they stay open and are rescheduled, one report; other types still close', async () => {
      const flaky = badEvaluator(how);
      const sink = mayorSink();
      const t = await createTestTown({
        gates: [flaky, timerEvaluator()],
        timings,
        mayor: sink.mayor,
      });
      const mine = [
        await t.town.gates.create({ type: 'flaky', spec: { n: 1 } }),
        await t.town.gates.create({ type: 'flaky', spec: { n: 2 } }),
      ];
      const molecule: Molecule = await t.model.molecules.create({
        name: 'after-timer',
        rig: 'api',
        steps: [{ name: 'go', gate: { type: 'timer', spec: { durationMs: 1_000 } } }],
      });
      const timerGate = molecule.waitingOn as string;
      const since = t.events.length;

      // The next patrol: the flaky gates fail, the timer gate closes, the molecule goes out.
      const failure = await waitFor(t, 'gate.evaluatorFailed', { withinMs: 120_000, since });
      expect(failure).toMatchObject({ gateType: 'flaky', gates: 2 });
      expect(failure.error).toBeInstanceOf(Error);
      const gatesStep = await waitFor(t, 'patrol.step', {
        where: (e) => e.step === 'gates',
        since,
      });
      expect(gatesStep.result).toMatchObject({ evaluated: 3, closed: 1, failed: ['flaky'] });
      expect((await t.model.gates.require(timerGate)).status).toBe('closed');
      const dispatched = await waitFor(t, 'patrol.step', {
        where: (e) => e.moleculeId === gatesStep.moleculeId && e.step === 'dispatch',
      });
      expect(dispatched.result).toEqual({ dispatched: [molecule.id] });
      await waitFor(t, 'patrol.finished', { where: (e) => e.moleculeId === gatesStep.moleculeId });
      for (const gate of mine) {
        const now = await t.model.gates.require(gate.id);
        expect(now.status).toBe('open');
        expect(now.lastEvaluatedAt).toBeGreaterThanOrEqual(failure.at);
        // Looked at again one gate interval after the evaluation started.
        expect(now.dueAt).toBeGreaterThan(failure.at);
        expect(now.dueAt).toBeLessThanOrEqual(failure.at + 30_000);
      }
      if (how === 'hangs') {
        expect(failure.error.message).toMatch(/did not answer within 5000 ms/);
        expect(flaky.signals.every((s) => s.aborted)).toBe(true);
      }

      // Many patrols later: evaluated again and again, still open, one report for the incident.
      await t.advance(600_000);
      expect(flaky.calls).toBeGreaterThanOrEqual(5);
      expect(eventsOf(t, 'gate.evaluatorFailed').length).toBeGreaterThanOrEqual(5);
      for (const gate of mine) expect((await t.model.gates.require(gate.id)).status).toBe('open');
      expect(sink.reports('gate-evaluator:flaky')).toHaveLength(1);
      expect(eventsOf(t, 'patrol.finished').length).toBeGreaterThanOrEqual(8);
      if (how === 'hangs') expect(flaky.signals.every((s) => s.aborted)).toBe(true);
      await t.stop();
    });
  });

  it('an evaluator outage that ended and a new outage later are two incidents for the mayor', async () => {
    const sink = mayorSink();
    let down = true;
    const gh = ghRunEvaluator(new Map());
    const flappy = {
      ...gh,
      evaluate: (...args: Parameters<typeof gh.evaluate>) => {
        if (down) throw new Error('api.github.com is down');
        return gh.evaluate(...args);
      },
    };
    const t = await createTestTown({ gates: [flappy], timings, mayor: sink.mayor });
    await t.town.gates.create({
      type: 'gh:run',
      spec: { owner: 'belfry', repo: 'belfry', runId: 5 },
    });
    await t.advance(300_000);
    expect(sink.reports('gate-evaluator:gh:run')).toHaveLength(1);

    // It recovers for a good while: patrols evaluate the gate normally.
    down = false;
    const recovered = t.events.length;
    await t.advance(600_000);
    expect(eventsOf(since(t, recovered), 'gate.evaluatorFailed')).toEqual([]);
    expect(gh.batches.length).toBeGreaterThanOrEqual(5);

    // A new outage: the mayor hears of it.
    down = true;
    await t.advance(300_000);
    expect(eventsOf(since(t, recovered), 'gate.evaluatorFailed').length).toBeGreaterThan(0);
    expect(sink.reports('gate-evaluator:gh:run')).toHaveLength(2);
    await t.stop();
  });

  it('a gate whose type has no evaluator stays open (and is reported once)', async () => {
    const sink = mayorSink();
    const t = await createTestTown({ timings, mayor: sink.mayor });
    const gate = await t.town.gates.create({
      type: 'gh:run',
      spec: { owner: 'belfry', repo: 'belfry', runId: 7 },
    });
    const failure = await waitFor(t, 'gate.evaluatorFailed', { withinMs: 120_000 });
    expect(failure).toMatchObject({ gateType: 'gh:run', gates: 1 });
    expect(failure.error.message).toMatch(/no gate evaluator/);
    await t.advance(600_000);
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    expect(sink.reports('gate-evaluator:gh:run')).toHaveLength(1);
    expect(await t.town.gates.list()).toEqual([expect.objectContaining({ id: gate.id })]);
    await t.stop();
  });

  it('an open gate past its timeout is escalated once, however many patrols run', async () => {
    const sink = mayorSink();
    const runs = new Map<number, RunState>();
    const t = await createTestTown({ gates: [ghRunEvaluator(runs)], timings, mayor: sink.mayor });
    const gate = await t.town.gates.create({
      type: 'gh:run',
      spec: { owner: 'belfry', repo: 'belfry', runId: 9 },
      timeoutMs: 200_000,
    });
    await t.advance(150_000);
    expect(eventsOf(t, 'gate.escalated')).toEqual([]);
    const escalated = await waitFor(t, 'gate.escalated', { where: (e) => e.gateId === gate.id });
    expect(escalated.reason).toBe('past its timeout with no result');
    expect(escalated.at).toBeGreaterThanOrEqual(gate.createdAt + 200_000);
    await t.advance(900_000);
    expect(eventsOf(t, 'gate.escalated', (e) => e.gateId === gate.id)).toHaveLength(1);
    const after = await t.model.gates.require(gate.id);
    expect(after.status).toBe('open');
    expect(after.escalations).toEqual([
      expect.objectContaining({ reason: 'past its timeout with no result', count: 1 }),
    ]);
    expect(sink.reports(`gate-timeout:${gate.id}`)).toEqual([
      expect.objectContaining({ title: expect.stringContaining('past its timeout') }),
    ]);
    // The run finishes at last: the gate closes and the timeout incident is over.
    expect(await t.model.reports.byIncident(`gate-timeout:${gate.id}`)).toBeDefined();
    runs.set(9, 'success');
    await waitFor(t, 'gate.closed', { where: (e) => e.gateId === gate.id });
    expect(await t.model.reports.byIncident(`gate-timeout:${gate.id}`)).toBeUndefined();
    await t.stop();
  });

  it('an overdue gate whose evaluator keeps escalating the same reason is reported once per reason', async () => {
    const sink = mayorSink();
    const runs = new Map<number, RunState>([[11, 'failure']]);
    const t = await createTestTown({ gates: [ghRunEvaluator(runs)], timings, mayor: sink.mayor });
    const gate = await t.town.gates.create({
      type: 'gh:run',
      spec: { owner: 'belfry', repo: 'belfry', runId: 11 },
      timeoutMs: 100_000,
    });
    await t.advance(900_000);
    const reasons = eventsOf(t, 'gate.escalated', (e) => e.gateId === gate.id).map((e) => e.reason);
    expect(reasons.sort()).toEqual(['past its timeout with no result', 'run 11 failed']);
    expect(sink.reports(`gate:${gate.id}`)).toHaveLength(1);
    expect(sink.reports(`gate-timeout:${gate.id}`)).toHaveLength(1);
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    await t.stop();
  });
});

describe('what an evaluator can say besides open or closed', () => {
  /** Gates are evaluated by the patrol, once per patrol interval. */
  const P = TIMINGS.patrolIntervalMs as number;
  function scripted(answer: (gate: Gate, call: number) => GateDecision) {
    const seen: Gate[][] = [];
    const evaluator: GateEvaluator = {
      type: 'scripted',
      validate: (spec) => ({ ...(spec as JsonObject) }),
      async evaluate(gates) {
        seen.push([...gates]);
        return new Map(gates.map((g) => [g.id, answer(g, seen.length)]));
      },
    };
    return { evaluator, seen };
  }

  it('a memo is stored with the gate and handed back on the next evaluation, after a restart too', async () => {
    const { evaluator, seen } = scripted((g, call) => ({
      kind: 'pending',
      memo: { calls: ((g.memo?.calls as number | undefined) ?? 0) + 1, call },
    }));
    const t = await createTestTown({ gates: [evaluator], timings });
    const gate = await t.town.gates.create({ type: 'scripted', spec: {} });
    await t.advance(P * 2 + 1_000);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    const stored = await t.model.gates.require(gate.id);
    expect(stored.memo?.calls).toBe(seen.length);
    t.town.kill();
    const again = scripted((g) => ({
      kind: 'pending',
      memo: { calls: (g.memo?.calls as number) + 1 },
    }));
    const t2 = await createTestTown({
      gates: [again.evaluator],
      timings,
      store: t.store,
      clock: t.clock,
      driver: t.driver,
    });
    await t2.advance(P + 1_000);
    expect(again.seen[0]?.[0]?.memo?.calls).toBe(stored.memo?.calls);
    expect((await t2.model.gates.require(gate.id)).memo?.calls).toBe(
      (stored.memo?.calls as number) + again.seen.length,
    );
    await t2.stop();
  });

  it('nextCheckAt: null leaves the gate due only on demand; a time makes it due then', async () => {
    const { evaluator, seen } = scripted((_g, call) =>
      call === 1 ? { kind: 'pending', nextCheckAt: null } : { kind: 'pending' },
    );
    const t = await createTestTown({ gates: [evaluator], timings });
    const gate = await t.town.gates.create({ type: 'scripted', spec: {} });
    await t.advance(P * 5);
    expect(seen).toHaveLength(1);
    expect((await t.model.gates.require(gate.id)).dueAt).toBeUndefined();
    await t.stop();

    let t2: TestTown | undefined;
    const at = scripted(() => ({
      kind: 'pending',
      nextCheckAt: (t2 as TestTown).clock.now() + 5 * P,
    }));
    t2 = await createTestTown({ gates: [at.evaluator], timings });
    const g2 = await t2.town.gates.create({ type: 'scripted', spec: {} });
    t2.town.wake();
    await t2.advance(1_000);
    expect(at.seen).toHaveLength(1);
    const due = (await t2.model.gates.require(g2.id)).dueAt as number;
    await t2.advance(due - t2.clock.now() - 1_000);
    expect(at.seen).toHaveLength(1);
    await t2.advance(P + 1_000);
    expect(at.seen).toHaveLength(2);
    await t2.stop();
  });

  it('a close with a failure fails the molecules waiting on it, with the reason, and dispatches nothing', async () => {
    const { evaluator } = scripted(() => ({
      kind: 'close',
      result: { conclusion: 'failure' },
      failure: 'run 7 concluded failure',
    }));
    const t = await createTestTown({ gates: [evaluator], timings });
    const molecule = await t.model.molecules.create({
      name: 'ship',
      rig: 'api',
      steps: [{ name: 'wait-ci', gate: { type: 'scripted', spec: {} } }, { name: 'deploy' }],
    });
    const gateId = molecule.waitingOn as string;
    const closed = await t.next('gate.closed', { where: (e) => e.gateId === gateId, since: 0 });
    expect(closed.failure).toBe('run 7 concluded failure');
    expect(await t.model.gates.require(gateId)).toMatchObject({
      status: 'closed',
      failure: 'run 7 concluded failure',
      result: { conclusion: 'failure' },
    });
    expect(await t.model.molecules.require(molecule.id)).toMatchObject({
      status: 'failed',
      failure: `gate ${gateId} (scripted) failed: run 7 concluded failure`,
    });
    await t.advance(P * 3);
    expect(eventsOf(t, 'molecule.dispatched')).toEqual([]);
    await t.stop();
  });

  it('a memo too large is not stored: the gate is escalated once and stays open', async () => {
    const { evaluator } = scripted(() => ({ kind: 'pending', memo: { blob: 'x'.repeat(20_000) } }));
    const t = await createTestTown({ gates: [evaluator], timings });
    const gate = await t.town.gates.create({ type: 'scripted', spec: {} });
    const escalated = await t.next('gate.escalated', {
      where: (e) => e.gateId === gate.id,
      since: 0,
    });
    expect(escalated.reason).toMatch(/decision cannot be stored: memo: .*at most 16384/);
    const stored = await t.model.gates.require(gate.id);
    expect(stored.status).toBe('open');
    expect(stored.memo).toBeUndefined();
    expect(stored.dueAt).toBeDefined();
    await t.stop();
  });

  it.each([
    ['a nextCheckAt that is not a time', { kind: 'pending', nextCheckAt: 'soon' }],
    ['a memo that is an array', { kind: 'pending', memo: [1] }],
    ['an empty failure', { kind: 'close', failure: '' }],
  ])('%s is not a decision: the gate is escalated and stays open', async (_what, answer) => {
    const { evaluator } = scripted(() => answer as unknown as GateDecision);
    const t = await createTestTown({ gates: [evaluator], timings });
    const gate = await t.town.gates.create({ type: 'scripted', spec: {} });
    const escalated = await t.next('gate.escalated', {
      where: (e) => e.gateId === gate.id,
      since: 0,
    });
    expect(escalated.reason).toMatch(/not a decision/);
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    await t.stop();
  });
});
