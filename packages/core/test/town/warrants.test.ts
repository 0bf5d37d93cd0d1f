import {
  type Assessment,
  MemoryStore,
  PATROL,
  type Situation,
  StoreError,
  type Town,
} from '@belfry/core';
import type { SessionDriver } from '@belfry/core/driver';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, mayorSink, since, stepsOf, TIMINGS, waitFor } from './helpers';

/** A town with one running polecat; returns it with its agent and bead. */
async function running(options: Parameters<typeof createTestTown>[0] = {}) {
  const sink = mayorSink();
  const t = await createTestTown({ timings: TIMINGS, mayor: sink.mayor, ...options });
  const { agent, beadId } = await t.work('migrate the users table');
  await waitFor(t, 'polecat.spawned', { where: (e) => e.agent === agent });
  return { t, sink, agent, beadId };
}

/** The warrants seen by triage, and a triage answering with `answer`. */
function scriptedTriage(answer: (s: Situation) => Assessment) {
  const seen: Situation[] = [];
  return {
    seen,
    triage: (situation: Situation) => {
      seen.push(situation);
      return answer(situation);
    },
  };
}

describe('warrants', () => {
  it('a warrant against a running polecat is executed at the next patrol: session stopped, bead open again, recorded, announced, reported', async () => {
    const { t, sink, agent, beadId } = await running();
    const before = t.events.length;
    const { warrant, created } = await t.town.warrants.file({
      target: agent,
      reason: 'no output for 2h',
    });
    expect(created).toBe(true);
    expect(warrant).toMatchObject({ filedBy: 'operator', release: 'open', beadId, rig: 'api' });
    expect(eventsOf(t, 'warrant.filed')).toEqual([
      expect.objectContaining({
        warrantId: warrant.id,
        agent,
        rig: 'api',
        reason: 'no output for 2h',
        filedBy: 'operator',
        release: 'open',
      }),
    ]);
    // Filed, not yet executed: it waits for the patrol.
    expect((await t.session(agent)).state).toBe('running');
    expect((await t.town.warrants.list()).map((w) => w.id)).toEqual([warrant.id]);

    const executed = await t.next('warrant.executed');
    const session = 'api-toast';
    expect(executed).toMatchObject({
      warrantId: warrant.id,
      agent,
      rig: 'api',
      outcome: {
        session,
        released: { beadId, status: 'open' },
        summary: `session ${session} stopped; bead ${beadId} released as open`,
      },
    });
    expect((await t.session(agent)).state).not.toBe('running');
    const bead = await t.model.beads.require(beadId);
    expect(bead.status).toBe('open');
    expect(bead).not.toHaveProperty('assignee');
    expect(await t.model.hooks.get(agent)).toBeUndefined();
    const record = await t.model.warrants.get(warrant.id);
    expect(record).toMatchObject({
      status: 'executed',
      executedBy: 'deacon',
      executedAt: executed.at,
      outcome: executed.outcome,
    });
    expect(await t.town.warrants.list()).toEqual([]);
    // Boot assessed it (the mechanical triage executes), and the patrol's warrants step did it.
    const assessed = eventsOf(t, 'boot.assessed', (e) => e.situation.kind === 'warrant');
    expect(assessed).toHaveLength(1);
    expect(assessed[0]?.situation).toEqual({
      kind: 'warrant',
      rig: 'api',
      agent,
      warrantId: warrant.id,
      reason: 'no output for 2h',
      filedBy: 'operator',
      beadId,
      release: 'open',
    });
    expect(assessed[0]?.assessment.action).toBe('execute');
    const step = eventsOf(t, 'patrol.step', (e) => e.step === 'warrants' && e.at === executed.at);
    expect(step.at(-1)?.result).toEqual({
      executed: [warrant.id],
      held: [],
      escalated: [],
      failed: [],
    });
    // The Mayor hears it once, as news (medium, resolved at once).
    const reports = sink.reports(`warrant-executed:${warrant.id}`);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ severity: 'medium', source: 'deacon' });
    expect(reports[0]?.title).toContain(`released as open`);
    expect(await t.model.reports.byIncident(`warrant-executed:${warrant.id}`)).toBeUndefined();
    // The digest line counts it.
    const finished = await waitFor(t, 'patrol.finished', { since: before });
    const digest = await t.model.beads.require(finished.digestBeadId);
    expect(digest.metadata.summary).toContain('warrants 1 executed, 0 pending');

    // Not restarted: the hook is empty, so the Witness spawns nothing for it.
    await t.advance(300_000);
    expect(eventsOf(since(t, t.events.indexOf(executed)), 'polecat.spawned')).toEqual([]);
    // An operator's stop is not a crash: slung again, the bead starts afresh (no respawn counted).
    await t.town.sling(beadId, 'api');
    const again = await t.next('polecat.spawned', { where: (e) => e.beadId === beadId });
    expect(again.respawn).toBe(false);
    expect(await t.model.respawns.count(beadId)).toBe(0);
    await t.stop();
  });

  it("release: 'blocked' takes the bead off the hook as blocked", async () => {
    const { t, agent, beadId } = await running();
    const { warrant } = await t.town.warrants.file({
      target: agent,
      reason: 'loops on the same error',
      filedBy: 'witness-api',
      release: 'blocked',
    });
    const executed = await t.next('warrant.executed');
    expect(executed.outcome.released).toEqual({ beadId, status: 'blocked' });
    expect((await t.model.beads.require(beadId)).status).toBe('blocked');
    expect(await t.model.warrants.get(warrant.id)).toMatchObject({
      status: 'executed',
      filedBy: 'witness-api',
    });
    await t.advance(120_000);
    expect(eventsOf(since(t, t.events.indexOf(executed)), 'polecat.spawned')).toEqual([]);
    await t.stop();
  });

  it('a triage answering none holds the warrant pending, asked again each patrol; escalate reports it and holds it too', async () => {
    let answer: Assessment['action'] = 'none';
    const triage = scriptedTriage(() => ({ action: answer, reason: `said ${answer}` }));
    const { t, sink, agent, beadId } = await running({ triage: triage.triage });
    const { warrant } = await t.town.warrants.file({ target: agent, reason: 'stuck' });
    await t.advance(360_000);
    const asked = () => triage.seen.filter((s) => s.kind === 'warrant');
    expect(asked().length).toBeGreaterThanOrEqual(2);
    expect((await t.model.warrants.get(warrant.id))?.status).toBe('pending');
    expect((await t.session(agent)).state).toBe('running');
    expect((await t.model.hooks.get(agent))?.beadId).toBe(beadId);
    expect(eventsOf(t, 'warrant.executed')).toEqual([]);
    expect(sink.reports('warrant-')).toEqual([]);

    answer = 'escalate';
    await t.advance(360_000);
    // Reported once however many patrols hold it, and still pending.
    const held = sink.reports(`warrant-held:${warrant.id}`);
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ severity: 'high', source: 'boot' });
    expect(held[0]?.title).toContain('said escalate');
    expect((await t.model.warrants.get(warrant.id))?.status).toBe('pending');
    expect((await t.session(agent)).state).toBe('running');

    // An answer that does not apply to a warrant counts as escalate.
    answer = 'stop-sessions';
    const from = t.events.length;
    await t.next('patrol.finished');
    const assessed = eventsOf(
      since(t, from),
      'boot.assessed',
      (e) => e.situation.kind === 'warrant',
    );
    expect(assessed[0]?.assessment.action).toBe('escalate');
    expect(assessed[0]?.assessment.reason).toContain(
      'does not apply to a warrant situation (allowed: execute, none, escalate)',
    );

    answer = 'execute';
    await t.next('warrant.executed');
    await t.next('patrol.finished');
    // Executed: the held incident is over.
    expect(await t.model.reports.byIncident(`warrant-held:${warrant.id}`)).toBeUndefined();
    expect((await t.model.beads.require(beadId)).status).toBe('open');
    await t.stop();
  });

  it('a warrant against an agent the town does not know is refused at filing (NOT_FOUND naming it)', async () => {
    const { t } = await running();
    const error = await t.town.warrants.file({ target: 'api/ghost', reason: 'x' }).catch((e) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'NOT_FOUND' });
    expect((error as Error).message).toBe('unknown agent "api/ghost"; known: api/toast');
    expect(eventsOf(t, 'warrant.filed')).toEqual([]);
    expect(await t.town.warrants.list()).toEqual([]);
    await t.stop();
  });

  it('a warrant whose target moved on to other work stops nothing and releases nothing of the new work', async () => {
    const { t, agent, beadId } = await running({
      timings: { ...TIMINGS, patrolIntervalMs: 600_000, heartbeatMs: 600_000 },
    });
    const { warrant } = await t.town.warrants.file({ target: agent, reason: 'slow' });
    // Before the patrol, the agent finishes and takes new work.
    await t.town.done(agent, beadId);
    const next = await t.work('the next task');
    expect(next.agent).toBe(agent);
    const spawned = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === next.beadId });
    const executed = await t.next('warrant.executed', { withinMs: 900_000 });
    expect(executed.outcome).toEqual({
      session: null,
      released: null,
      summary: `nothing stopped; ${agent} no longer holds bead ${beadId} (it holds bead ${next.beadId} now): nothing released`,
    });
    expect((await t.model.warrants.get(warrant.id))?.status).toBe('executed');
    expect((await t.model.hooks.get(agent))?.beadId).toBe(next.beadId);
    expect((await t.session(agent)).state).toBe('running');
    expect((await t.session(agent)).epoch).toBe(spawned.epoch);
    expect((await t.model.beads.require(beadId)).status).toBe('done');
    await t.stop();
  });

  it('exactly once across a kill between the stop and the record: a new town finishes it once, nothing respawned', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const store = new MemoryStore();
    const holder: { town?: Town } = {};
    let stops = 0;
    let armed = true;
    const wrapDriver = (inner: SessionDriver): SessionDriver => ({
      kind: inner.kind,
      start: (spec) => inner.start(spec),
      status: (name) => inner.status(name),
      list: () => inner.list(),
      nudge: (name, text) => inner.nudge(name, text),
      capture: (name, options) => inner.capture(name, options),
      async stop(name, options) {
        stops++;
        await inner.stop(name, options);
        if (!armed) return;
        armed = false;
        // The daemon dies right after the stop, before the warrant is recorded.
        holder.town?.kill();
        return new Promise<void>(() => {});
      },
    });
    const triage = scriptedTriage(() => ({ action: 'execute', reason: 'stuck for good' }));
    const first = await running({ store, clock, wrapDriver, triage: triage.triage });
    holder.town = first.t.town;
    const { agent, beadId } = first;
    const { warrant } = await first.t.town.warrants.file({ target: agent, reason: 'stuck' });
    // Wait for the kill: the session is gone, the warrant is still pending (its stop begun).
    for (let i = 0; i < 300 && armed; i++) await first.t.advance(1_000);
    expect(armed).toBe(false);
    expect((await first.t.session(agent)).state).not.toBe('running');
    const stored = await first.t.model.warrants.get(warrant.id);
    expect(stored?.status).toBe('pending');
    expect(stored?.stoppingAt).toBeDefined();
    expect(eventsOf(first.t, 'warrant.executed')).toEqual([]);

    const second: TestTown = await createTestTown({
      store,
      clock,
      driver: first.t.driver,
      wrapDriver,
      timings: TIMINGS,
      triage: triage.triage,
    });
    const executed = await second.next('warrant.executed', { since: 0 });
    expect(executed.warrantId).toBe(warrant.id);
    expect(executed.outcome.released).toEqual({ beadId, status: 'open' });
    await second.advance(300_000);
    expect(eventsOf(second, 'warrant.executed')).toHaveLength(1);
    // Boot was asked once: the run after the crash finished the decision already taken.
    expect(triage.seen.filter((s) => s.kind === 'warrant')).toHaveLength(1);
    // Released once, and the warranted work got no new session in between.
    expect((await second.model.beads.require(beadId)).status).toBe('open');
    expect(await second.model.hooks.get(agent)).toBeUndefined();
    expect(eventsOf(second, 'polecat.spawned')).toEqual([]);
    expect(await second.model.respawns.count(beadId)).toBe(0);
    expect(stops).toBeGreaterThanOrEqual(2);
    await second.stop();
  });

  it('a stop that fails is reported and the warrant stays pending; its work gets no new session meanwhile; the next patrol finishes it', async () => {
    let failing = true;
    const wrapDriver = (inner: SessionDriver): SessionDriver => ({
      kind: inner.kind,
      start: (spec) => inner.start(spec),
      status: (name) => inner.status(name),
      list: () => inner.list(),
      nudge: (name, text) => inner.nudge(name, text),
      capture: (name, options) => inner.capture(name, options),
      async stop(name, options) {
        await inner.stop(name, options);
        // The session is gone, but the driver says it failed (a process tree half reaped).
        if (failing) throw new Error('kill: some processes did not exit');
      },
    });
    const { t, sink, agent, beadId } = await running({ wrapDriver });
    const { warrant } = await t.town.warrants.file({ target: agent, reason: 'stuck' });
    const step = await t.next('patrol.step', { where: (e) => e.step === 'warrants' });
    expect(step.result).toMatchObject({ executed: [], failed: [warrant.id] });
    const failed = sink.reports(`warrant-failed:${warrant.id}`);
    expect(failed).toHaveLength(1);
    expect(failed[0]?.title).toContain('kill: some processes did not exit');
    expect((await t.model.warrants.get(warrant.id))?.status).toBe('pending');
    // The session is gone and the hook still holds the bead: a crash would be respawned, but
    // this is the operator's stop under way.
    await t.advance(100_000);
    expect(eventsOf(since(t, t.events.indexOf(step)), 'polecat.spawned')).toEqual([]);
    expect(await t.model.respawns.count(beadId)).toBe(0);

    failing = false;
    const executed = await t.next('warrant.executed');
    expect(executed.outcome.released).toEqual({ beadId, status: 'open' });
    await t.next('patrol.finished');
    expect(await t.model.reports.byIncident(`warrant-failed:${warrant.id}`)).toBeUndefined();
    expect(eventsOf(since(t, t.events.indexOf(step)), 'polecat.spawned')).toEqual([]);
    await t.stop();
  });

  it("a warrant against a molecule step's agent releases the step's bead; the molecule waits, and moves on once the bead is done", async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const molecule = await t.model.molecules.create({
      name: 'deploy',
      rig: 'api',
      steps: [{ name: 'build' }, { name: 'ship' }],
    });
    const dispatched = await t.next('molecule.dispatched', {
      where: (e) => e.moleculeId === molecule.id,
    });
    const spawned = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.beadId === dispatched.beadId,
    });
    await t.town.warrants.file({ target: spawned.agent, reason: 'the build hangs' });
    const executed = await t.next('warrant.executed');
    expect(executed.outcome.released).toEqual({ beadId: dispatched.beadId, status: 'open' });
    expect(await t.model.molecules.get(molecule.id)).toMatchObject({
      status: 'running',
      cursor: 0,
    });

    const mark = t.events.length;
    const again = await t.town.sling(dispatched.beadId, 'api');
    await waitFor(t, 'polecat.spawned', {
      since: mark,
      where: (e) => e.beadId === dispatched.beadId,
    });
    await t.town.done(again.agent, dispatched.beadId);
    expect(await t.model.molecules.get(molecule.id)).toMatchObject({
      status: 'running',
      cursor: 1,
    });
    await t.stop();
  });

  it('a warrant stored before warrants recorded their work (no rig, release or bead) is executed against the work on the hook', async () => {
    const { t, agent, beadId } = await running();
    await t.store.transaction((tx) =>
      tx.insert('warrants', {
        id: 'wr-legacy0001',
        target: agent,
        reason: 'filed by an older belfry',
        filedBy: 'operator',
        filedAt: t.clock.now(),
        status: 'pending',
      }),
    );
    const executed = await t.next('warrant.executed');
    expect(executed).toMatchObject({ warrantId: 'wr-legacy0001', rig: 'api' });
    expect(executed.outcome.released).toEqual({ beadId, status: 'open' });
    expect(await t.model.warrants.get('wr-legacy0001')).toMatchObject({
      status: 'executed',
      rig: 'api',
      release: 'open',
      beadId,
    });
    expect((await t.session(agent)).state).not.toBe('running');
    await t.stop();
  });

  it('a patrol molecule poured with the six steps of before resumes by its own step names; the next patrol has warrants', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const store = new MemoryStore();
    const seed = await createTestTown({ store, clock, start: false });
    const old = ['witnesses', 'gates', 'lifecycle', 'dispatch', 'convoys', 'report'];
    const created = await seed.model.molecules.create({
      name: PATROL,
      steps: old.map((name) => ({ name })),
    });
    const { epoch } = await seed.model.molecules.dispatch(created.id, { by: 'deacon' });
    for (const step of [0, 1, 2])
      await seed.model.molecules.completeStep(created.id, { step, epoch, result: { old: true } });

    const t = await createTestTown({ store, clock, timings: TIMINGS });
    const finished = await waitFor(t, 'patrol.finished', {
      where: (e) => e.moleculeId === created.id,
    });
    expect(eventsOf(t, 'patrol.started')[0]).toMatchObject({
      moleculeId: created.id,
      resumedAt: 3,
    });
    expect(stepsOf(t, created.id)).toEqual(['dispatch', 'convoys', 'report']);
    expect(Object.keys(finished.summary.steps)).toEqual(old);
    const next = await t.next('patrol.finished');
    expect(stepsOf(t, next.moleculeId)).toContain('warrants');
    await t.stop();
  });

  it('a stored patrol step this version does not know is recorded as skipped, not wedged', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const store = new MemoryStore();
    const seed = await createTestTown({ store, clock, start: false });
    const created = await seed.model.molecules.create({
      name: PATROL,
      steps: [{ name: 'witnesses' }, { name: 'constructor' }, { name: 'report' }],
    });
    const { epoch } = await seed.model.molecules.dispatch(created.id, { by: 'deacon' });
    await seed.model.molecules.completeStep(created.id, { step: 0, epoch, result: {} });
    const t = await createTestTown({ store, clock, timings: TIMINGS });
    const finished = await waitFor(t, 'patrol.finished', {
      where: (e) => e.moleculeId === created.id,
    });
    expect(finished.summary.steps.constructor).toEqual({
      skipped: 'this version has no patrol step "constructor"',
    });
    expect(stepsOf(t, created.id)).toEqual(['constructor', 'report']);
    await t.stop();
  });
});
