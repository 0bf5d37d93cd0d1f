import type { Poller } from '@belfry/core';
import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, mayorSink, sessionRequest, since, TIMINGS, until, waitFor } from './helpers';

const START = 1_700_000_000_000;

/** Works on the first rig, waiting until each has its session. */
async function busy(t: TestTown, ...titles: string[]) {
  const out: Array<{ agent: string; beadId: string; epoch: number }> = [];
  for (const title of titles) {
    const { agent, beadId } = await t.work(title);
    const spawned = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === beadId });
    out.push({ agent, beadId, epoch: spawned.epoch });
  }
  return out;
}

function sessionOf(agent: string): string {
  return agent.replace('/', '-');
}

describe('rig lifecycle requests', () => {
  it('park resolves once the Deacon carried it out', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const from = t.events.length;
    const request = await until(t, t.town.rigs.park('api'));
    expect(request).toMatchObject({
      action: 'park',
      target: 'api',
      status: 'done',
      requestedBy: 'operator',
      claim: { by: 'deacon' },
    });
    expect((await t.model.rigs.require('api')).state).toBe('parked');
    expect(eventsOf(t, 'lifecycle.done', (e) => e.requestId === request.id)).toHaveLength(1);
    // Carried out by a patrol's lifecycle step.
    const doneAt = t.events.findIndex(
      (e) => e.type === 'lifecycle.done' && e.requestId === request.id,
    );
    const stepAt = t.events.findIndex(
      (e) =>
        e.type === 'patrol.step' &&
        e.step === 'lifecycle' &&
        (e.result.done as string[]).includes(request.id),
    );
    expect(doneAt).toBeGreaterThanOrEqual(from);
    expect(stepAt).toBeGreaterThan(doneAt);
    expect(await t.model.lifecycle.pending()).toEqual([]);
    await t.stop();
  });

  it('a parked rig lets in-flight sessions run, does not restart a crashed polecat, refuses new work; unpark resumes', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [a, b] = await busy(t, 'first', 'second');
    if (!a || !b) throw new Error('unreachable');
    await until(t, t.town.rigs.park('api'));

    await t.advance(300_000);
    expect((await t.session(a.agent)).state).toBe('running');
    expect((await t.session(b.agent)).state).toBe('running');
    expect(eventsOf(t, 'polecat.stopped')).toEqual([]);

    const crashed = t.events.length;
    t.crash(a.agent);
    await t.advance(600_000);
    expect(eventsOf(since(t, crashed), 'polecat.spawned')).toEqual([]);
    expect((await t.session(a.agent)).state).toBe('exited');
    expect((await t.session(b.agent)).state).toBe('running');
    // The work stays on the hook for later.
    expect(await t.model.hooks.get(a.agent)).toMatchObject({ beadId: a.beadId });

    const fresh = await t.model.beads.create({ title: 'new work', rig: 'api' });
    await expect(t.town.sling(fresh.id, 'api')).rejects.toThrow(/parked/);
    expect(await t.model.hooks.byBead(fresh.id)).toBeUndefined();

    // Unpark: the hook whose session died gets a new session; the live one is left alone.
    const unparked = t.events.length;
    await until(t, t.town.rigs.unpark('api'));
    const respawned = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.agent === a.agent,
      withinMs: 120_000,
      since: unparked,
    });
    expect(respawned).toMatchObject({ beadId: a.beadId, respawn: true });
    expect(respawned.epoch).toBeGreaterThan(a.epoch);
    expect(await t.session(a.agent)).toMatchObject({ state: 'running', epoch: respawned.epoch });
    expect((await t.session(b.agent)).epoch).toBe(b.epoch);
    await t.town.sling(fresh.id, 'api');
    await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === fresh.id });
    await t.stop();
  });

  it('a parked rig leaves in-flight work alone even when it looks hung', async () => {
    const t = await createTestTown({ timings: { ...TIMINGS, staleAfterMs: 120_000 } });
    const [w] = await busy(t, 'slow thinker');
    if (!w) throw new Error('unreachable');
    await until(t, t.town.rigs.park('api'));
    t.hang(w.agent);
    const parked = t.events.length;
    await t.advance(900_000);
    expect(eventsOf(since(t, parked), 'polecat.stopped')).toEqual([]);
    expect(await t.session(w.agent)).toMatchObject({ state: 'running', epoch: w.epoch });
    await t.stop();
  });

  it('a rig request the model refuses rejects, and the rig keeps its state', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    await until(t, t.town.rigs.dock('api'));
    await expect(until(t, t.town.rigs.park('api'))).rejects.toThrow(/docked/);
    expect((await t.model.rigs.require('api')).state).toBe('docked');
    await expect(until(t, t.town.rigs.unpark('api'))).rejects.toThrow(/undock/);
    // An unknown rig is refused at once, naming the rigs there are: nothing is queued.
    await expect(t.town.rigs.park('nowhere')).rejects.toThrow(/unknown rig "nowhere"; known: api/);
    expect(eventsOf(t, 'lifecycle.failed')).toHaveLength(2);
    expect(await t.model.lifecycle.pending()).toEqual([]);
    await t.stop();
  });

  it('an immediate dock stops the Witness and the sessions at once, keeps the hooks, spawns nothing; undock respawns them', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const works = await busy(t, 'first', 'second');
    const hooksBefore = await t.model.hooks.list({ rig: 'api' });

    const request = await until(t, t.town.rigs.dock('api', { immediate: true }));
    expect(request.result).toMatchObject({
      stopped: expect.arrayContaining(works.map((w) => sessionOf(w.agent))),
    });
    expect(eventsOf(t, 'witness.stopped', (e) => e.rig === 'api')).toHaveLength(1);
    for (const w of works)
      expect(await t.session(w.agent)).toMatchObject({ state: 'exited', signal: 'SIGTERM' });
    expect(await t.model.hooks.list({ rig: 'api' })).toEqual(hooksBefore);
    const status = await t.town.status();
    expect(status.rigs.find((r) => r.name === 'api')).toMatchObject({
      state: 'docked',
      witness: undefined,
    });

    // Many surveys and patrols later: still nothing.
    const docked = t.events.length;
    await t.advance(900_000);
    expect(eventsOf(since(t, docked), 'polecat.spawned')).toEqual([]);
    expect(eventsOf(since(t, docked), 'witness.started')).toEqual([]);
    for (const w of works) expect((await t.session(w.agent)).state).toBe('exited');

    await until(t, t.town.rigs.undock('api'));
    expect(eventsOf(since(t, docked), 'witness.started', (e) => e.rig === 'api')).toHaveLength(1);
    for (const w of works) {
      const again = await waitFor(t, 'polecat.spawned', {
        where: (e) => e.agent === w.agent,
        withinMs: 120_000,
        since: docked,
      });
      expect(again.beadId).toBe(w.beadId);
      expect((await t.session(w.agent)).state).toBe('running');
    }
    expect(await t.model.hooks.list({ rig: 'api' })).toEqual(hooksBefore);
    await t.stop();
  });

  it('an immediate dock gives a session that ignores the stop its grace period, then kills it', async () => {
    const t = await createTestTown({
      timings: { ...TIMINGS, stopGraceMs: 10_000 },
      agent: { launch: () => ({ command: ['stubborn'] }) },
    });
    const [w] = await busy(t, 'stubborn work');
    if (!w) throw new Error('unreachable');
    const askedAt = t.clock.now();
    await until(t, t.town.rigs.dock('api', { immediate: true }));
    const session = await t.session(w.agent);
    expect(session).toMatchObject({ state: 'exited', signal: 'SIGKILL' });
    expect(session.state === 'exited' && session.exitedAt).toBe(askedAt + 10_000);
    await t.stop();
  });

  it('requests queued while the town is down are carried out when a town starts on the same store', async () => {
    const t1 = await createTestTown({ rigs: ['api', 'web'], timings: TIMINGS });
    const [w] = await busy(t1, 'long job');
    if (!w) throw new Error('unreachable');
    await t1.stop();

    const dock = await t1.model.lifecycle.request({
      action: 'dock',
      target: 'web',
      requestedBy: 'operator',
    });
    const restart = await t1.model.lifecycle.request({
      action: 'restart',
      target: w.agent,
      requestedBy: 'mayor',
    });
    await t1.advance(600_000);
    expect((await t1.model.lifecycle.pending()).map((r) => r.id)).toEqual([dock.id, restart.id]);

    const t2 = await createTestTown({
      rigs: ['api', 'web'],
      timings: TIMINGS,
      store: t1.store,
      driver: t1.driver,
      clock: t1.clock,
    });
    await waitFor(t2, 'lifecycle.done', { where: (e) => e.requestId === dock.id });
    await waitFor(t2, 'lifecycle.done', { where: (e) => e.requestId === restart.id });
    expect((await t2.model.rigs.require('web')).state).toBe('docked');
    const session = await t2.session(w.agent);
    expect(session.state).toBe('running');
    expect(session.epoch).toBeGreaterThan(w.epoch);
    expect(await t2.model.lifecycle.pending()).toEqual([]);
    await t2.stop();
  });
});

describe('session lifecycle requests (the Daemon)', () => {
  it('restart gives the agent a new session with a new epoch and one new prime nudge', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t, 'restart me');
    if (!w) throw new Error('unreachable');
    expect(t.driver.nudgesOf(sessionOf(w.agent))).toHaveLength(1);

    const { request, outcome } = await sessionRequest(t, 'restart', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    const session = await t.session(w.agent);
    expect(session.state).toBe('running');
    expect(session.epoch).toBeGreaterThan(w.epoch);
    expect(t.driver.nudgesOf(sessionOf(w.agent))).toEqual([expect.stringContaining(w.beadId)]);
    expect(await t.model.lifecycle.get(request.id)).toMatchObject({
      status: 'done',
      claim: { by: 'daemon' },
      result: { epoch: session.epoch },
    });
    expect(await t.model.hooks.get(w.agent)).toMatchObject({ beadId: w.beadId });

    // Exactly one new session: nobody restarts it again afterwards.
    await t.advance(300_000);
    expect((await t.session(w.agent)).epoch).toBe(session.epoch);
    expect(eventsOf(t, 'polecat.spawned', (e) => e.agent === w.agent)).toHaveLength(2);
    await t.stop();
  });

  it('stop stops the session and puts the bead back to open; nothing restarts it', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t, 'stop me');
    if (!w) throw new Error('unreachable');
    const { outcome } = await sessionRequest(t, 'stop', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    expect((await t.session(w.agent)).state).toBe('exited');
    expect(await t.model.hooks.get(w.agent)).toBeUndefined();
    const bead = await t.model.beads.require(w.beadId);
    expect(bead.status).toBe('open');
    expect(bead.assignee).toBeUndefined();
    const stopped = t.events.length;
    await t.advance(600_000);
    expect(eventsOf(since(t, stopped), 'polecat.spawned')).toEqual([]);
    expect((await t.session(w.agent)).state).toBe('exited');
    await t.stop();
  });

  it('start brings up the session of a hooked agent whose session is gone', async () => {
    const t = await createTestTown({ timings: { ...TIMINGS, surveyMs: 600_000 } });
    const [w] = await busy(t, 'start me');
    if (!w) throw new Error('unreachable');
    t.crash(w.agent);
    const { outcome } = await sessionRequest(t, 'start', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    const session = await t.session(w.agent);
    expect(session.state).toBe('running');
    expect(session.epoch).toBeGreaterThan(w.epoch);
    await t.stop();
  });

  it.each([
    ['start', 'parked'],
    ['restart', 'parked'],
    ['start', 'docked'],
    ['restart', 'docked'],
  ] as const)('%s of an agent in a %s rig fails and starts nothing', async (action, state) => {
    const t = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t, 'held');
    if (!w) throw new Error('unreachable');
    if (state === 'parked') {
      await until(t, t.town.rigs.park('api'));
      t.crash(w.agent);
    } else {
      await until(t, t.town.rigs.dock('api', { immediate: true }));
    }
    const { request, outcome } = await sessionRequest(t, action, w.agent);
    expect(outcome).toMatchObject({ type: 'lifecycle.failed', action, target: w.agent });
    expect(outcome.type === 'lifecycle.failed' && outcome.error).toContain(state);
    expect(await t.model.lifecycle.get(request.id)).toMatchObject({ status: 'failed' });
    await t.advance(300_000);
    expect((await t.session(w.agent)).state).toBe('exited');
    expect((await t.session(w.agent)).epoch).toBe(w.epoch);
    await t.stop();
  });

  it('two towns on the same store carry out a request once', async () => {
    const t1 = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t1, 'shared');
    if (!w) throw new Error('unreachable');
    const t2 = await createTestTown({
      timings: TIMINGS,
      store: t1.store,
      driver: t1.driver,
      clock: t1.clock,
    });
    await t1.advance(30_000);
    const request = await t1.model.lifecycle.request({
      action: 'restart',
      target: w.agent,
      requestedBy: 'mayor',
    });
    const since1 = t1.events.length;
    const since2 = t2.events.length;
    t1.town.wake();
    t2.town.wake();
    await t1.advance(120_000);

    const outcomes = [...t1.events.slice(since1), ...t2.events.slice(since2)].filter(
      (e) =>
        (e.type === 'lifecycle.done' || e.type === 'lifecycle.failed') &&
        e.requestId === request.id,
    );
    expect(outcomes.map((e) => e.type)).toEqual(['lifecycle.done']);
    expect(await t1.model.lifecycle.get(request.id)).toMatchObject({
      status: 'done',
      attempts: 1,
    });
    const spawns = [...t1.events.slice(since1), ...t2.events.slice(since2)].filter(
      (e) => e.type === 'polecat.spawned' && e.agent === w.agent,
    );
    expect(spawns).toHaveLength(1);
    const session = await t1.session(w.agent);
    expect(session).toMatchObject({ state: 'running' });
    expect(t1.driver.nudgesOf(sessionOf(w.agent))).toHaveLength(1);
    await t2.stop();
    await t1.stop();
  });
});

describe('user pollers', () => {
  it('run on their interval; perRig pollers skip parked and docked rigs', async () => {
    const once: number[] = [];
    const perRig: Array<{ at: number; rig: string | undefined }> = [];
    const pollers: Poller[] = [
      {
        name: 'inbox',
        intervalMs: 30_000,
        run: ({ now, signal }) => {
          expect(signal.aborted).toBe(false);
          once.push(now - START);
        },
      },
      {
        name: 'per-rig',
        intervalMs: 45_000,
        perRig: true,
        run: ({ now, rig }) => {
          perRig.push({ at: now - START, rig });
        },
      },
    ];
    const t = await createTestTown({ rigs: ['api', 'web', 'ops'], timings: TIMINGS, pollers });
    await t.advance(90_000);
    expect(once).toEqual([30_000, 60_000, 90_000]);
    expect(perRig).toEqual(
      [45_000, 90_000].flatMap((at) => ['api', 'ops', 'web'].map((rig) => ({ at, rig }))),
    );

    await until(t, t.town.rigs.park('web'));
    await until(t, t.town.rigs.dock('ops'));
    perRig.length = 0;
    const from = t.clock.now();
    await t.advance(180_000);
    expect(perRig.length).toBeGreaterThanOrEqual(3);
    expect(new Set(perRig.map((p) => p.rig))).toEqual(new Set(['api']));
    expect(once.filter((at) => at > from - START).length).toBe(6);

    await until(t, t.town.rigs.unpark('web'));
    perRig.length = 0;
    await t.advance(90_000);
    expect(new Set(perRig.map((p) => p.rig))).toEqual(new Set(['api', 'web']));
    await t.stop();
  });

  it('a throwing poller is reported once and does not stop the others', async () => {
    const sink = mayorSink();
    const good: number[] = [];
    let attempts = 0;
    const pollers: Poller[] = [
      {
        name: 'broken',
        intervalMs: 20_000,
        run: () => {
          attempts++;
          throw new Error('the webhook endpoint is gone');
        },
      },
      {
        name: 'rejecting',
        intervalMs: 25_000,
        perRig: true,
        run: async ({ rig }) => {
          if (rig === 'web') throw new Error('web inbox unreachable');
        },
      },
      { name: 'fine', intervalMs: 30_000, run: ({ now }) => void good.push(now) },
    ];
    const t = await createTestTown({
      rigs: ['api', 'web'],
      timings: TIMINGS,
      pollers,
      mayor: sink.mayor,
    });
    await t.advance(600_000);
    expect(attempts).toBe(30);
    expect(good).toHaveLength(20);
    const failed = eventsOf(t, 'poller.failed', (e) => e.poller === 'broken');
    expect(failed).toHaveLength(30);
    expect(failed[0]?.error.message).toBe('the webhook endpoint is gone');
    expect(sink.reports('poller:broken')).toHaveLength(1);
    expect(sink.reports('poller:broken')[0]?.title).toContain('the webhook endpoint is gone');
    expect(eventsOf(t, 'poller.failed', (e) => e.poller === 'rejecting').map((e) => e.rig)).toEqual(
      Array(24).fill('web'),
    );
    expect(sink.reports('poller:rejecting')).toEqual([
      expect.objectContaining({ incidentKey: 'poller:rejecting:web' }),
    ]);
    await t.stop();
  });

  it('a poller that recovers and fails again later is a new incident for the mayor', async () => {
    const sink = mayorSink();
    let failing = true;
    const pollers: Poller[] = [
      {
        name: 'discord',
        intervalMs: 30_000,
        run: () => {
          if (failing) throw new Error('discord rate limit');
        },
      },
    ];
    const t = await createTestTown({ timings: TIMINGS, pollers, mayor: sink.mayor });
    await t.advance(120_000);
    expect(sink.reports('poller:discord')).toHaveLength(1);
    failing = false;
    await t.advance(600_000);
    failing = true;
    await t.advance(120_000);
    expect(eventsOf(t, 'poller.failed').length).toBe(8);
    expect(sink.reports('poller:discord')).toHaveLength(2);
    await t.stop();
  });
});
