import { StoreError } from '@belfry/core';
import { createTestTown, SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { failure } from '../modelHelpers';
import { eventsOf, restartDaemon, TIMINGS, until } from './chainHelpers';
import {
  OPTIONS,
  RecordingDriver,
  START,
  StopNeverAnswers,
  sessionOf,
  spawnOf,
  town,
} from './recordingTown';

describe('town.done(agent, beadId) (Gas Town #909)', () => {
  it('a late done for a bead the polecat no longer holds is refused with CONFLICT and changes nothing', async () => {
    const t = await town();
    const a = await t.work('bead A');
    await spawnOf(t, a.beadId);
    await t.town.done(a.agent, a.beadId);

    // The idle polecat is reused for the next bead: same agent, same session name.
    const b = await t.work('bead B');
    expect(b.agent).toBe(a.agent);
    const spawnedB = await spawnOf(t, b.beadId);
    const hookB = await t.model.hooks.get(b.agent);
    const sessionB = await t.session(b.agent);
    expect(sessionB).toMatchObject({ state: 'running', epoch: spawnedB.epoch });
    const starts = t.driver.starts.length;
    const stops = t.driver.stops.length;
    const from = t.events.length;

    for (const options of [{}, { status: 'wontfix' }]) {
      const error = await failure(() => t.town.done(a.agent, a.beadId, options));
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'CONFLICT' });
      expect((error as Error).message).toContain(b.beadId);
    }

    // Nothing moved: B is still hooked on the same hook, its session untouched, A still done.
    expect(await t.model.hooks.get(b.agent)).toEqual(hookB);
    expect(await t.model.beads.require(b.beadId)).toMatchObject({
      status: 'hooked',
      assignee: b.agent,
    });
    expect((await t.model.beads.require(a.beadId)).status).toBe('done');
    expect(t.driver.stops.length).toBe(stops);
    expect(eventsOf(t, 'polecat.done', from)).toEqual([]);
    await t.advance(5 * 60_000);
    expect(await t.session(b.agent)).toMatchObject({
      state: 'running',
      epoch: spawnedB.epoch,
      labels: { bead: b.beadId },
    });
    expect(t.driver.starts.length).toBe(starts);
    expect(eventsOf(t, 'polecat.stopped', from)).toEqual([]);
    expect(eventsOf(t, 'polecat.spawned', from)).toEqual([]);
    expect(eventsOf(t, 'polecat.done').map((e) => e.beadId)).toEqual([a.beadId]);
    await t.stop();
  });

  it('done for an agent without work, or for no agent at all, is NOT_FOUND', async () => {
    const t = await town();
    const a = await t.work('the only bead');
    await spawnOf(t, a.beadId);
    await t.town.done(a.agent, a.beadId);

    for (const [agent, beadId] of [
      [a.agent, a.beadId], // the same done again: nothing on the hook any more
      [a.agent, 'bd-other'],
      ['api/ghost', a.beadId], // no such polecat
      ['nowhere/toast', a.beadId],
    ] as const) {
      const error = await failure(() => t.town.done(agent, beadId));
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'NOT_FOUND' });
    }
    expect(eventsOf(t, 'polecat.done')).toHaveLength(1);
    expect((await t.model.beads.require(a.beadId)).status).toBe('done');
    await t.stop();
  });

  it('two concurrent done calls for the same bead: exactly one is applied', async () => {
    const t = await town();
    const a = await t.work('finished twice at once');
    await spawnOf(t, a.beadId);
    const outcomes = await Promise.allSettled([
      t.town.done(a.agent, a.beadId, { status: 'done' }),
      t.town.done(a.agent, a.beadId, { status: 'wontfix' }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const rejected = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(StoreError);
    expect(['CONFLICT', 'NOT_FOUND']).toContain((rejected.reason as StoreError).code);

    const winner = outcomes[0]?.status === 'fulfilled' ? 'done' : 'wontfix';
    expect((await t.model.beads.require(a.beadId)).status).toBe(winner);
    expect(eventsOf(t, 'polecat.done')).toEqual([
      expect.objectContaining({ agent: a.agent, beadId: a.beadId, status: winner }),
    ]);
    expect(await t.model.hooks.get(a.agent)).toBeUndefined();
    expect((await t.session(a.agent)).state).toBe('exited');
    await t.stop();
  });

  it('concurrent done calls on a molecule step complete that step once; a late one cannot complete the next step', async () => {
    const t = await town();
    const molecule = await t.model.molecules.create({
      name: 'release',
      rig: 'api',
      steps: [{ name: 'build' }, { name: 'test' }, { name: 'ship' }],
    });
    const s0 = `${molecule.id}.s0.e1`;
    const s1 = `${molecule.id}.s1.e1`;
    const first = await spawnOf(t, s0);

    const outcomes = await Promise.allSettled([
      t.town.done(first.agent, s0),
      t.town.done(first.agent, s0),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    let m = await t.model.molecules.require(molecule.id);
    expect(m).toMatchObject({ status: 'running', cursor: 1 });
    expect(m.completed.map((c) => c.name)).toEqual(['build']);
    // The next step went to the same (now idle) polecat, in the same transaction.
    expect(await t.model.hooks.get(first.agent)).toMatchObject({ beadId: s1 });
    const second = await spawnOf(t, s1);
    expect(second.agent).toBe(first.agent);

    // A late, repeated done for step 0 must not finish step 1.
    const error = await failure(() => t.town.done(first.agent, s0));
    expect(error).toMatchObject({ code: 'CONFLICT' });
    m = await t.model.molecules.require(molecule.id);
    expect(m).toMatchObject({ status: 'running', cursor: 1 });
    expect(m.completed.map((c) => c.name)).toEqual(['build']);
    expect(await t.model.beads.get(`${molecule.id}.s2.e1`)).toBeUndefined();
    expect(await t.session(first.agent)).toMatchObject({
      state: 'running',
      epoch: second.epoch,
      labels: { bead: s1 },
    });
    await t.stop();
  });
});

describe('done across a daemon crash between the record and the stop', () => {
  async function doneCutOff() {
    const clock = new SimulatedClock(START);
    const driver = new RecordingDriver(clock);
    let wrapper: StopNeverAnswers | undefined;
    const t = await createTestTown({
      ...OPTIONS,
      clock,
      driver,
      wrapDriver: (d) => {
        wrapper = new StopNeverAnswers(d);
        return wrapper;
      },
    });
    const { agent, beadId } = await t.work('finished just before the crash');
    const spawned = await spawnOf(t, beadId);
    const pending = t.town.done(agent, beadId);
    pending.catch(() => {});
    await t.advance(0);
    // Recorded, and the stop was asked for, but it never answered: the daemon dies now.
    expect(wrapper?.stops).toEqual([sessionOf(agent)]);
    expect((await t.model.beads.require(beadId)).status).toBe('done');
    expect(await t.model.hooks.get(agent)).toBeUndefined();
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
    t.town.kill();
    return { t, driver, agent, beadId, spawned };
  }

  it('the new daemon stops the leftover session and never respawns the finished bead', async () => {
    const { t, driver, agent, beadId } = await doneCutOff();
    const starts = driver.starts.length;
    await t.advance(60_000);
    expect((await t.session(agent)).state).toBe('running');

    const t2 = await restartDaemon(t, OPTIONS);
    await until(t2, () => eventsOf(t2, 'polecat.stopped').length > 0, {
      withinMs: 2 * TIMINGS.surveyMs,
      what: 'the leftover session to be stopped',
    });
    await t2.advance(10 * 60_000);

    expect(eventsOf(t2, 'polecat.stopped')).toEqual([
      expect.objectContaining({
        agent,
        rig: 'api',
        reason: `its bead ${beadId} is no longer on the hook`,
      }),
    ]);
    expect(await t2.session(agent)).toMatchObject({ state: 'exited', signal: 'SIGTERM' });
    expect(eventsOf(t2, 'polecat.spawned')).toEqual([]);
    expect(eventsOf(t2, 'polecat.adopted')).toEqual([]);
    expect(driver.starts.length).toBe(starts);
    expect(await t2.model.respawns.count(beadId)).toBe(0);
    expect((await t2.model.beads.require(beadId)).status).toBe('done');
    expect(await t2.model.hooks.get(agent)).toBeUndefined();
    await t2.stop();
  });

  it('new work slung to the same polecat while the daemon was down gets a fresh session, not the leftover', async () => {
    const { t, driver, agent, beadId, spawned } = await doneCutOff();
    const b = await t.work('slung while the daemon was down');
    expect(b.agent).toBe(agent);

    const t2 = await restartDaemon(t, OPTIONS);
    const fresh = await spawnOf(t2, b.beadId);
    await t2.advance(5 * 60_000);

    expect(fresh).toMatchObject({ agent, respawn: false });
    expect(fresh.epoch).toBeGreaterThan(spawned.epoch);
    const stopped = eventsOf(t2, 'polecat.stopped');
    expect(stopped).toHaveLength(1);
    expect(stopped[0]?.reason).toContain(beadId);
    expect(await t2.session(agent)).toMatchObject({
      state: 'running',
      epoch: fresh.epoch,
      labels: { bead: b.beadId },
    });
    expect(eventsOf(t2, 'polecat.adopted')).toEqual([]);
    expect(driver.starts.map((s) => s.labels?.bead)).toEqual([beadId, b.beadId]);
    expect(await t2.model.respawns.count(beadId)).toBe(0);
    expect(await t2.model.respawns.count(b.beadId)).toBe(0);
    await t2.stop();
  });
});

describe('edge cases: work for other agents, rigs the town cannot name, long triage reasons', () => {
  it("a done naming another polecat's bead is refused and leaves that polecat's work alone", async () => {
    const t = await town();
    const a = await t.work('toast works on this');
    const b = await t.work('nux works on this');
    expect(a.agent).not.toBe(b.agent);
    const spawnedB = await spawnOf(t, b.beadId);
    await spawnOf(t, a.beadId);

    const conflict = await failure(() => t.town.done(a.agent, b.beadId));
    expect(conflict).toMatchObject({ code: 'CONFLICT' });
    await t.town.done(a.agent, a.beadId);
    const idle = await failure(() => t.town.done(a.agent, b.beadId));
    expect(idle).toMatchObject({ code: 'NOT_FOUND' });

    expect(await t.model.hooks.get(b.agent)).toMatchObject({ beadId: b.beadId });
    expect((await t.model.beads.require(b.beadId)).status).toBe('hooked');
    expect(await t.session(b.agent)).toMatchObject({ state: 'running', epoch: spawnedB.epoch });
    expect(eventsOf(t, 'polecat.done').map((e) => [e.agent, e.beadId])).toEqual([
      [a.agent, a.beadId],
    ]);
    await t.stop();
  });
});
