import { createTownModel, MemoryStore, PATROL, PATROL_STEPS } from '@belfry/core';
import { createTestTown, SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  ALL_STEPS,
  convoyStepFailingStore,
  eventsOf,
  mayorSink,
  stepsOf,
  TIMINGS,
  timerEvaluator,
  until,
  waitFor,
} from './helpers';

const START = 1_700_000_000_000;

describe('the patrol', () => {
  it('runs the six steps in order, at start and on every heartbeat', async () => {
    const t = await createTestTown({
      timings: { ...TIMINGS, heartbeatMs: 60_000, patrolIntervalMs: 10_000_000 },
    });
    await t.advance(300_000);
    const started = eventsOf(t, 'patrol.started');
    const heartbeats = eventsOf(t, 'heartbeat');
    expect(heartbeats.map((e) => e.at - START)).toEqual([
      60_000, 120_000, 180_000, 240_000, 300_000,
    ]);
    expect(started.map((e) => e.at - START)).toEqual([
      0, 60_000, 120_000, 180_000, 240_000, 300_000,
    ]);
    for (const patrol of started) {
      expect(patrol.resumedAt).toBe(0);
      expect(stepsOf(t, patrol.moleculeId)).toEqual(ALL_STEPS);
    }
    // One patrol at a time: each finishes before the next starts.
    const order = t.events
      .filter((e) => e.type === 'patrol.started' || e.type === 'patrol.finished')
      .map((e) => e.type);
    expect(order).toEqual(started.flatMap(() => ['patrol.started', 'patrol.finished']));
    await t.stop();
  });

  it('also patrols every patrolIntervalMs when no heartbeat comes', async () => {
    const t = await createTestTown({
      timings: { ...TIMINGS, heartbeatMs: 10_000_000, patrolIntervalMs: 120_000 },
    });
    await t.advance(600_000);
    expect(eventsOf(t, 'heartbeat')).toEqual([]);
    const started = eventsOf(t, 'patrol.started');
    expect(started.map((e) => e.at - START)).toEqual([
      0, 120_000, 240_000, 360_000, 480_000, 600_000,
    ]);
    for (const patrol of started) expect(stepsOf(t, patrol.moleculeId)).toEqual(ALL_STEPS);
    await t.stop();
  });

  it('squashes every patrol into a digest bead, removes its molecule, and sends the mayor a summary', async () => {
    const sink = mayorSink();
    const t = await createTestTown({ timings: TIMINGS, mayor: sink.mayor });
    await t.advance(240_000);
    const finished = eventsOf(t, 'patrol.finished');
    expect(finished.length).toBe(5);
    for (const patrol of finished) {
      expect(await t.model.molecules.get(patrol.moleculeId)).toBeUndefined();
      const digest = await t.model.beads.require(patrol.digestBeadId);
      expect(digest.labels).toEqual(expect.arrayContaining(['digest']));
      expect(digest.status).toBe('done');
      // One short line, as the seed's squash summary; the step results are on it as `steps`.
      expect(digest.metadata.summary).toBe(
        `Patrol: witnesses ${patrol === finished[0] ? 1 : 0} started, 0 stopped, 0 triaged; warrants 0 executed, 0 pending; gates 0 evaluated, 0 closed, 0 escalated, 0 overdue, 0 evaluators failed; lifecycle 0 done, 0 failed; dispatched 0; convoys 0 closed, 0 stalled; incidents resolved 0; agents 0 healthy, 0 unhealthy; 0 open incidents`,
      );
      expect((digest.metadata.steps as Array<{ name: string }>).map((s) => s.name)).toEqual(
        ALL_STEPS,
      );
      expect(digest.metadata).toMatchObject({ molecule: patrol.moleculeId, outcome: 'done' });
    }
    expect(await t.model.molecules.list({ status: 'running', name: PATROL })).toEqual([]);
    // One summary per patrol, in order, naming the patrol and its steps' results.
    const summaries = sink.summaries();
    expect(summaries.map((s) => s.moleculeId)).toEqual(finished.map((e) => e.moleculeId));
    for (const summary of summaries) {
      expect(summary.steps).toMatchObject({
        gates: { evaluated: 0, closed: 0 },
        dispatch: { dispatched: [] },
      });
    }
    await t.stop();
  });

  it("the Mayor's summary is one of town health: healthy and unhealthy agents per rig, open incidents", async () => {
    const sink = mayorSink();
    const t = await createTestTown({ rigs: ['api', 'web'], timings: TIMINGS, mayor: sink.mayor });
    const a = await t.work('fix the login bug', 'api');
    const b = await t.work('add a page', 'web');
    const c = await t.work('tune the cache', 'web');
    await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === c.beadId });
    // The web rig is parked (nothing is respawned there), then one of its agents crashes.
    await until(t, t.town.rigs.park('web'));
    t.crash(b.agent);
    await t.model.reports.file({
      incidentKey: 'test:one',
      severity: 'high',
      title: 'an open incident',
      source: 'test',
    });
    const from = sink.summaries().length;
    await t.next('patrol.finished');
    const summary = sink.summaries().slice(from).at(-1);
    expect(summary?.health).toMatchObject({
      healthy: 2,
      unhealthy: 1,
      rigs: [
        { rig: 'api', state: 'operational', healthy: 1, unhealthy: 0, trouble: [] },
        {
          rig: 'web',
          state: 'parked',
          healthy: 1,
          unhealthy: 1,
          trouble: [{ agent: b.agent, session: 'exited' }],
        },
      ],
    });
    expect(summary?.health?.incidents).toMatchObject({ open: 1, high: 1, critical: 0 });
    const finished = eventsOf(t, 'patrol.finished').at(-1);
    expect(finished?.summary.health).toEqual(summary?.health);
    const digest = await t.model.beads.require(finished?.digestBeadId as string);
    expect(digest.metadata.summary).toContain('agents 2 healthy, 1 unhealthy; 1 open incidents');
    expect(a.agent).toBe('api/toast');
    await t.stop();
  });

  it('keeps only the newest keepPatrolDigests digests: the store does not grow with every patrol', async () => {
    const t = await createTestTown({ timings: { ...TIMINGS, keepPatrolDigests: 3 } });
    await t.advance(600_000);
    const finished = eventsOf(t, 'patrol.finished');
    expect(finished.length).toBeGreaterThan(6);
    const kept = await Promise.all(
      finished.map(async (e) => (await t.model.beads.get(e.digestBeadId)) !== undefined),
    );
    expect(kept).toEqual(finished.map((_, i) => i >= finished.length - 3));
    const digests = (await t.model.beads.list({ status: 'done' })).filter((b) =>
      b.labels.includes('digest'),
    );
    expect(digests).toHaveLength(3);
    await t.stop();
  });

  it('a patrol that crashes mid-way resumes at the step it had not completed', async () => {
    const store = convoyStepFailingStore(new MemoryStore());
    const sink = mayorSink();
    const t = await createTestTown({ store, timings: TIMINGS, mayor: sink.mayor });
    const job = await t.model.molecules.create({ name: 'job', rig: 'api', steps: [{ name: 'x' }] });
    store.failNext();
    const since = t.events.length;
    await t.advance(60_000);
    expect(store.failures).toBe(1);

    const crashed = await waitFor(t, 'patrol.started', { since });
    const starts = eventsOf(t, 'patrol.started', (e) => e.moleculeId === crashed.moleculeId);
    // Started, crashed in 'convoys' (step 5), restarted, and resumed there.
    expect(starts.map((e) => e.resumedAt)).toEqual([0, 5]);
    expect(stepsOf(t, crashed.moleculeId)).toEqual(ALL_STEPS);
    const finished = await waitFor(t, 'patrol.finished', {
      where: (e) => e.moleculeId === crashed.moleculeId,
    });
    const digest = await t.model.beads.require(finished.digestBeadId);
    expect((digest.metadata.steps as Array<{ name: string }>).map((s) => s.name)).toEqual(
      ALL_STEPS,
    );
    // The steps that ran before the crash are not redone: the molecule went out once.
    expect(eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === job.id)).toHaveLength(1);
    expect(finished.summary.steps).toMatchObject({ dispatch: { dispatched: [job.id] } });
    expect(sink.summaries().filter((s) => s.moleculeId === crashed.moleculeId)).toHaveLength(1);

    // The next patrols are whole again.
    await t.advance(120_000);
    const later = eventsOf(t, 'patrol.finished').filter((e) => e.at > finished.at);
    expect(later.length).toBeGreaterThanOrEqual(2);
    for (const patrol of later) expect(stepsOf(t, patrol.moleculeId)).toEqual(ALL_STEPS);
    await t.stop();
  });

  it('a town started on a store holding a half-done patrol resumes it at dispatch', async () => {
    const clock = new SimulatedClock(START);
    const store = new MemoryStore();
    const model = createTownModel({ store, clock });
    await model.rigs.create({ name: 'api' });
    const created = await model.molecules.create({
      name: PATROL,
      steps: PATROL_STEPS.map((name) => ({ name })),
    });
    const { epoch } = await model.molecules.dispatch(created.id, { by: 'deacon' });
    for (const step of [0, 1, 2, 3])
      await model.molecules.completeStep(created.id, { step, epoch, result: { before: 'crash' } });
    const job = await model.molecules.create({ name: 'job', rig: 'api', steps: [{ name: 'x' }] });

    const sink = mayorSink();
    const t = await createTestTown({ store, clock, timings: TIMINGS, mayor: sink.mayor });
    const first = eventsOf(t, 'patrol.started')[0];
    expect(first).toMatchObject({ moleculeId: created.id, resumedAt: 4 });
    const finished = await waitFor(t, 'patrol.finished', {
      where: (e) => e.moleculeId === created.id,
    });
    expect(stepsOf(t, created.id)).toEqual(['dispatch', 'convoys', 'report']);
    expect(eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === job.id)).toHaveLength(1);
    // The digest and the summary carry the steps done before the crash too.
    expect(finished.summary.steps).toMatchObject({
      witnesses: { before: 'crash' },
      warrants: { before: 'crash' },
      gates: { before: 'crash' },
      lifecycle: { before: 'crash' },
      dispatch: { dispatched: [job.id] },
    });
    const digest = await t.model.beads.require(finished.digestBeadId);
    expect((digest.metadata.steps as Array<{ name: string }>).map((s) => s.name)).toEqual(
      ALL_STEPS,
    );
    expect(sink.summaries()[0]?.moleculeId).toBe(created.id);
    // The next patrol is a new, whole one.
    const next = await t.next('patrol.finished');
    expect(next.moleculeId).not.toBe(created.id);
    expect(stepsOf(t, next.moleculeId)).toEqual(ALL_STEPS);
    await t.stop();
  });
});

describe('convoys through the patrol', () => {
  it('close when all their beads are terminal, are reported landed once, and reopen when a bead reopens', async () => {
    const sink = mayorSink();
    const t = await createTestTown({ timings: TIMINGS, mayor: sink.mayor });
    const a = await t.work('fix login');
    const b = await t.work('fix logout');
    const convoy = await t.town.convoys.create({
      title: 'Auth fixes',
      beadIds: [a.beadId, b.beadId],
    });
    await waitFor(t, 'polecat.spawned', { where: (e) => e.agent === a.agent });
    await waitFor(t, 'polecat.spawned', { where: (e) => e.agent === b.agent });

    await t.town.done(a.agent, a.beadId);
    await t.advance(180_000);
    expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
    expect(eventsOf(t, 'convoy.closed')).toEqual([]);

    await t.town.done(b.agent, b.beadId, { status: 'wontfix' });
    const closed = await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    expect(await t.town.convoys.status(convoy.id)).toMatchObject({
      status: 'closed',
      openCount: 0,
      closedAt: closed.at,
    });
    await t.advance(300_000);
    expect(eventsOf(t, 'convoy.closed')).toHaveLength(1);
    const landed = sink.reports(`convoy-landed:${convoy.id}`);
    expect(landed).toHaveLength(1);
    expect(landed[0]?.title).toMatch(/^convoy .* landed/);
    expect(landed[0]?.title).toContain('Auth fixes');

    // A bead reopens: so does the convoy, and no patrol closes it while the bead is open.
    await t.model.beads.setStatus(a.beadId, 'open');
    expect(await t.town.convoys.status(convoy.id)).toMatchObject({ status: 'open', openCount: 1 });
    await t.advance(300_000);
    expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
    expect(eventsOf(t, 'convoy.closed')).toHaveLength(1);
    await t.stop();
  });

  it('a convoy that reopens and lands again is closed and reported landed again', async () => {
    const sink = mayorSink();
    const t = await createTestTown({ timings: TIMINGS, mayor: sink.mayor });
    const bead = await t.model.beads.create({ title: 'ship it', rig: 'api', status: 'done' });
    const convoy = await t.town.convoys.create({ title: 'Release', beadIds: [bead.id] });
    await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    expect(sink.reports(`convoy-landed:${convoy.id}`)).toHaveLength(1);

    await t.model.beads.setStatus(bead.id, 'open');
    await t.advance(120_000);
    await t.model.beads.setStatus(bead.id, 'done');
    await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    expect((await t.town.convoys.status(convoy.id)).status).toBe('closed');
    // A second landing is news for the Mayor, as the first was.
    expect(sink.reports(`convoy-landed:${convoy.id}`)).toHaveLength(2);
    await t.stop();
  });

  it('a convoy without progress is escalated once per stall; a new stall after progress is a new incident', async () => {
    const sink = mayorSink();
    const t = await createTestTown({
      timings: { ...TIMINGS, convoyStallMs: 300_000 },
      mayor: sink.mayor,
    });
    const bead = await t.model.beads.create({ title: 'slow work', rig: 'api' });
    const convoy = await t.town.convoys.create({ title: 'Slow', beadIds: [bead.id] });

    await t.advance(240_000);
    expect(eventsOf(t, 'convoy.stalled')).toEqual([]);
    const stalled = await t.next('convoy.stalled', { where: (e) => e.convoyId === convoy.id });
    expect(stalled.sinceMs).toBeGreaterThanOrEqual(300_000);
    await t.advance(900_000);
    expect(eventsOf(t, 'convoy.stalled')).toHaveLength(1);
    expect(sink.reports(`convoy-stalled:${convoy.id}`)).toHaveLength(1);

    // Progress, then no progress again for convoyStallMs: a new incident.
    await t.model.beads.setStatus(bead.id, 'in_progress');
    const progressAt = t.clock.now();
    await t.advance(240_000);
    expect(eventsOf(t, 'convoy.stalled')).toHaveLength(1);
    const again = await t.next('convoy.stalled', { where: (e) => e.convoyId === convoy.id });
    expect(again.at).toBeGreaterThanOrEqual(progressAt + 300_000);
    await t.advance(900_000);
    expect(eventsOf(t, 'convoy.stalled')).toHaveLength(2);
    expect(sink.reports(`convoy-stalled:${convoy.id}`)).toHaveLength(2);
    await t.stop();
  });
});

describe('molecule dispatch', () => {
  it('never dispatches a done step bead again, nor spawns a polecat for it', async () => {
    const t = await createTestTown({ gates: [timerEvaluator()], timings: TIMINGS });
    const molecule = await t.model.molecules.create({
      name: 'two-steps',
      rig: 'api',
      steps: [
        { name: 'build' },
        { name: 'ship', gate: { type: 'timer', spec: { durationMs: 90_000 } } },
      ],
    });
    const s0 = `${molecule.id}.s0.e1`;
    const first = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === s0 });
    await t.town.done(first.agent, first.beadId);
    expect((await t.model.beads.require(s0)).status).toBe('done');

    // The gate of step 1 closes: the molecule goes out again, as a new bead of a new epoch.
    const s1 = `${molecule.id}.s1.e2`;
    const second = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === s1 });
    await t.town.done(second.agent, second.beadId);
    expect((await t.model.molecules.require(molecule.id)).status).toBe('done');

    await t.advance(900_000);
    expect(
      eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === molecule.id).map((e) => e.beadId),
    ).toEqual([s0, s1]);
    expect(eventsOf(t, 'polecat.spawned', (e) => e.beadId === s0)).toHaveLength(1);
    expect(eventsOf(t, 'polecat.spawned', (e) => e.beadId === s1)).toHaveLength(1);
    for (const beadId of [s0, s1]) {
      expect((await t.model.beads.require(beadId)).status).toBe('done');
      expect(await t.model.hooks.byBead(beadId)).toBeUndefined();
    }
    expect((await t.driver.list()).filter((s) => s.state === 'running')).toEqual([]);
    expect(await t.model.beads.list({ rig: 'api', status: 'hooked' })).toEqual([]);
    await t.stop();
  });

  it('holds a released molecule while its rig is parked or docked, and sends it once the rig is back', async () => {
    const t = await createTestTown({ rigs: ['api', 'web'], timings: TIMINGS });
    t.town.wake();
    await t.model.lifecycle.request({ action: 'park', target: 'api', requestedBy: 'operator' });
    await t.model.lifecycle.request({ action: 'dock', target: 'web', requestedBy: 'operator' });
    await t.advance(60_000);
    expect((await t.model.rigs.require('api')).state).toBe('parked');
    expect((await t.model.rigs.require('web')).state).toBe('docked');
    const onApi = await t.model.molecules.create({ name: 'a', rig: 'api', steps: [{ name: 'x' }] });
    const onWeb = await t.model.molecules.create({ name: 'w', rig: 'web', steps: [{ name: 'x' }] });

    await t.advance(600_000);
    expect(eventsOf(t, 'molecule.dispatched')).toEqual([]);
    expect((await t.model.molecules.require(onApi.id)).status).toBe('ready');
    expect((await t.model.molecules.require(onWeb.id)).status).toBe('ready');

    await t.model.lifecycle.request({ action: 'unpark', target: 'api', requestedBy: 'operator' });
    await t.model.lifecycle.request({ action: 'undock', target: 'web', requestedBy: 'operator' });
    await t.advance(120_000);
    for (const m of [onApi, onWeb]) {
      const sent = eventsOf(t, 'molecule.dispatched', (e) => e.moleculeId === m.id);
      expect(sent).toEqual([expect.objectContaining({ beadId: `${m.id}.s0.e1`, rig: m.rig })]);
      await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === `${m.id}.s0.e1` });
    }
    await t.stop();
  });
});
