import type { MayorMessage, StoreError, SupervisorEvent, TownOptions } from '@belfry/core';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  CountingDriver,
  eventsOf,
  FaultyStore,
  TWO_RIGS as OPTIONS,
  recordSupervision,
  reportsTo,
  restartDaemon,
  runningSessions,
  settleOn,
  TIMINGS,
  until,
} from './chainHelpers';

// What Gas Town's users ran into (research/gastown.md, "What users ask for"), as scenarios.

async function town(extra: Partial<TownOptions> = {}, store = new FaultyStore()) {
  const clock = new SimulatedClock(1_700_000_000_000);
  const driver = new CountingDriver({ clock });
  const t = await createTestTown({ ...OPTIONS, ...extra, clock, driver, store });
  return Object.assign(t, { driver, store, seen: recordSupervision(t) });
}

function spawnedAgents(t: TestTown): string[] {
  return eventsOf(t, 'polecat.spawned').map((e) => e.agent);
}

/** Makes the Deacon fail (its patrol cannot read its molecule) until the Daemon restarted it. */
async function restartDeacon(t: TestTown, store: FaultyStore, seen: SupervisorEvent[]) {
  const restarts = () =>
    seen.filter(
      (e) => e.type === 'child.restarting' && e.supervisor === 'town' && e.childId === 'deacon',
    ).length;
  const before = restarts();
  store.failMolecules = true;
  t.town.wake();
  await until(t, () => restarts() > before, { what: 'a Deacon restart' });
  store.failMolecules = false;
  await until(t, async () => (await t.town.status()).deacon.state === 'running', {
    what: 'the Deacon to come back',
  });
  await t.advance(TIMINGS.patrolIntervalMs);
}

/** Makes a rig's Witness stop answering until the Deacon restarted it. */
async function restartWitness(t: TestTown, store: FaultyStore, rig: string) {
  const before = eventsOf(t, 'witness.restarted').length;
  store.hangRig(rig);
  await until(t, () => eventsOf(t, 'witness.restarted').length > before, {
    withinMs: 4 * TIMINGS.patrolIntervalMs,
    what: `a restart of the ${rig} Witness`,
  });
  store.releaseRig(rig);
  await t.advance(TIMINGS.patrolIntervalMs);
}

describe("what Gas Town's users ran into", () => {
  describe('spawn races (#1752, #4329, #1973)', () => {
    it('many concurrent slings: distinct agents, exactly one session each', async () => {
      const t = await town();
      const slung = await Promise.all(
        Array.from({ length: 8 }, (_, i) => t.work(`job ${i}`, i % 2 === 0 ? 'api' : 'web')),
      );
      expect(new Set(slung.map((s) => s.agent)).size).toBe(8);
      await until(t, () => spawnedAgents(t).length >= 8, { what: 'eight spawns' });
      await t.advance(10 * 60_000);

      expect(spawnedAgents(t).sort()).toEqual(slung.map((s) => s.agent).sort());
      const startsPerSession = new Map<string, number>();
      for (const s of t.driver.starts)
        startsPerSession.set(s.name, (startsPerSession.get(s.name) ?? 0) + 1);
      expect([...startsPerSession.values()]).toEqual(Array(8).fill(1));
      expect(await runningSessions(t.driver)).toHaveLength(8);
      await t.stop();
    });

    it('the same bead slung twice at once: one hook, one polecat, one session', async () => {
      const t = await town();
      const bead = await t.model.beads.create({ title: 'hot bead', rig: 'api' });
      const [a, b] = await Promise.all([
        t.town.sling(bead.id, 'api'),
        t.town.sling(bead.id, 'api'),
      ]);
      expect(a.agent).toBe(b.agent);
      expect([a.created, b.created].sort()).toEqual([false, true]);
      // Slung to two rigs at once: one wins, the other is refused.
      const other = await t.model.beads.create({ title: 'contested bead', rig: 'api' });
      const outcomes = await Promise.allSettled([
        t.town.sling(other.id, 'api'),
        t.town.sling(other.id, 'web'),
      ]);
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);

      await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
      await t.advance(10 * 60_000);
      expect(await t.model.hooks.list({ rig: 'api' })).toHaveLength(2);
      expect(await t.model.hooks.list({ rig: 'web' })).toHaveLength(0);
      expect((await t.model.hooks.byBead(bead.id))?.id).toBe(a.agent);
      expect(t.driver.starts.map((s) => s.labels?.bead).sort()).toEqual([bead.id, other.id].sort());
      expect(await t.model.polecats.list('web')).toEqual([]);
      await t.stop();
    });
  });

  describe('the supervisor fights the operator (#1152, #1761, #3331)', () => {
    it('a parked rig is never restarted: not by its Witness, a restarted Witness, a restarted Deacon or a restarted daemon', async () => {
      const t = await town();
      const { agent, beadId } = await t.work('in flight when parked', 'api');
      const slow = await t.work('in flight and quiet when parked', 'api');
      await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
      const slowSession = await t.session(slow.agent);
      await settleOn(t, t.town.rigs.park('api'));
      expect((await t.model.rigs.require('api')).state).toBe('parked');

      t.crash(agent);
      // Parked means in-flight work is left to finish, even when it looks stuck.
      t.hang(slow.agent);
      const starts = t.driver.starts.length;
      await t.advance(5 * 60_000); // the Witness's own surveys
      await restartWitness(t, t.store, 'api');
      await restartDeacon(t, t.store, t.seen);
      const t2 = await restartDaemon(t, OPTIONS);
      await t2.advance(10 * 60_000);

      expect(t.driver.starts.length).toBe(starts);
      expect((await t2.session(agent)).state).toBe('exited');
      expect(eventsOf(t2, 'polecat.spawned')).toEqual([]);
      expect(eventsOf(t, 'polecat.spawned')).toHaveLength(2);
      expect(eventsOf(t, 'polecat.stopped')).toEqual([]);
      expect(eventsOf(t2, 'polecat.stopped')).toEqual([]);
      expect(await t2.session(slow.agent)).toMatchObject({
        state: 'running',
        epoch: slowSession.epoch,
      });
      // The work waits on its hook for the operator.
      expect(await t2.model.hooks.get(agent)).toMatchObject({ beadId });

      // Unparked, the same work gets its session back.
      await settleOn(t2, t2.town.rigs.unpark('api'));
      await until(t2, () => spawnedAgents(t2).includes(agent), {
        withinMs: 120_000,
        what: 'the spawn after unpark',
      });
      expect(eventsOf(t2, 'polecat.spawned').find((e) => e.agent === agent)).toMatchObject({
        beadId,
        respawn: true,
      });
      await t2.stop();
    });

    it('a docked rig has no Witness and no sessions, even after the Deacon and the daemon restart', async () => {
      const t = await town();
      const one = await t.work('docked work', 'api');
      const two = await t.work('more docked work', 'api');
      await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
      await settleOn(t, t.town.rigs.dock('api', { immediate: true }));
      expect((await runningSessions(t.driver)).filter((s) => s.name.startsWith('api-'))).toEqual(
        [],
      );
      const starts = t.driver.starts.length;

      const docked = async (x: TestTown) => {
        const rig = (await x.town.status()).rigs.find((r) => r.name === 'api');
        expect(rig).toMatchObject({ state: 'docked', witness: undefined });
        expect(rig?.polecats.map((p) => p.session.state)).toEqual(['exited', 'exited']);
        expect(t.driver.starts.length).toBe(starts);
      };
      await t.advance(10 * 60_000);
      await docked(t);
      await restartDeacon(t, t.store, t.seen);
      await t.advance(5 * 60_000);
      await docked(t);
      const t2 = await restartDaemon(t, OPTIONS);
      await t2.advance(10 * 60_000);
      await docked(t2);
      expect(eventsOf(t2, 'witness.started').map((e) => e.rig)).toEqual(['web']);

      // Undocked, the hooks (kept through the dock) get their sessions again.
      await settleOn(t2, t2.town.rigs.undock('api'));
      await until(t2, () => spawnedAgents(t2).length >= 2, { what: 'the spawns after undock' });
      expect(spawnedAgents(t2).sort()).toEqual([one.agent, two.agent].sort());
      await t2.stop();
    });
  });

  it('a freshly restarted agent is not killed for a heartbeat older than its start (#590, #2036)', async () => {
    // Grace longer than the staleness limit: only the grace keeps a new, quiet session alive.
    const timings = { ...TIMINGS, spawnGraceMs: 300_000, staleAfterMs: 60_000 };
    let program = 'chatty';
    const launch = () => ({ command: [program, '10000'] });
    const t = await town({ timings, agent: { launch } });
    const { agent } = await t.work('hangs while the daemon is down', 'api');
    await until(t, () => spawnedAgents(t).includes(agent), { what: 'the spawn' });
    t.town.kill();
    t.hang(agent);
    await t.advance(30 * 60_000);

    // The restarted daemon finds a session silent for 30 min: it replaces it by a new one that is
    // quiet while it warms up. The old session's silence must not count against the new one.
    program = 'silent';
    const t2 = await restartDaemon(t, { ...OPTIONS, timings, agent: { launch } });
    await until(t2, () => spawnedAgents(t2).includes(agent), { what: 'the replacement' });
    const replaced = eventsOf(t2, 'polecat.spawned')[0];
    const fresh = await t2.session(agent);
    expect(fresh).toMatchObject({ state: 'running', epoch: replaced?.epoch });
    const since = t2.events.indexOf(replaced as never) + 1;

    await t2.advance(timings.spawnGraceMs - 2 * TIMINGS.surveyMs);
    expect(eventsOf(t2, 'polecat.stopped', since)).toEqual([]);
    expect(await t2.session(agent)).toMatchObject({ state: 'running', epoch: replaced?.epoch });
    // Past its own grace, its own silence counts: it is replaced in turn.
    const stopped = await t2.next('polecat.stopped', { withinMs: 120_000 });
    expect(stopped.at).toBeGreaterThanOrEqual((fresh.startedAt as number) + timings.spawnGraceMs);
    await t2.stop();
  });

  it('the crash-loop state expires (#4462): after a quiet period a new crash loop is a new incident', async () => {
    const mayor: MayorMessage[] = [];
    const t = await town({
      mayor: (m) => {
        mayor.push(m);
      },
    });
    const loops = async () => {
      await restartDeacon(t, t.store, t.seen);
      t.store.failMolecules = true;
      await until(t, async () => (await t.town.status()).deacon.crashLoop, {
        what: 'a crash loop',
      });
      await t.advance(2 * TIMINGS.heartbeatMs);
      t.store.failMolecules = false;
      await until(t, async () => (await t.town.status()).deacon.state === 'running', {
        what: 'the Deacon to come back',
      });
    };
    await loops();
    expect(reportsTo(mayor, 'deacon-crash-loop')).toHaveLength(1);

    // The Deacon stays up: 31 min later (past the crash-loop window, and past the 30 min after
    // which its restart backoff starts over) the state is gone and the incident resolved.
    await t.advance(31 * 60_000);
    expect((await t.town.status()).deacon).toMatchObject({ state: 'running', crashLoop: false });
    expect(await t.model.reports.byIncident('deacon-crash-loop')).toBeUndefined();

    await loops();
    expect(reportsTo(mayor, 'deacon-crash-loop')).toHaveLength(2);
    await t.stop();
  });

  describe('no re-dispatch onto a closed bead (#4698, #2203)', () => {
    it('slinging a done or wontfix bead is refused, and nothing is spawned for it', async () => {
      const t = await town();
      const done = await t.model.beads.create({ title: 'shipped', rig: 'api', status: 'done' });
      const wontfix = await t.model.beads.create({
        title: 'not doing it',
        rig: 'api',
        status: 'wontfix',
      });
      for (const bead of [done, wontfix]) {
        await expect(t.town.sling(bead.id, 'api')).rejects.toMatchObject({
          code: 'INVALID_TRANSITION',
        } satisfies Partial<StoreError>);
      }
      await t.advance(5 * 60_000);
      expect(await t.model.polecats.list('api')).toEqual([]);
      expect(t.driver.starts).toEqual([]);

      // Reopened, it can be slung again.
      await t.model.beads.setStatus(done.id, 'open');
      const { agent } = await t.town.sling(done.id, 'api');
      await until(t, () => spawnedAgents(t).includes(agent), { what: 'the spawn' });
      await t.stop();
    });

    it('a bead finished with done() never gets a session again: not after a daemon crash and restart, nor on a start request', async () => {
      const t = await town();
      const first = await t.work('finished before the crash', 'api');
      const second = await t.work('finished while the daemon is down', 'api');
      await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
      await t.town.done(first.agent, first.beadId);
      t.town.kill();
      // The agent reports done while the daemon is down (done needs only the store and driver).
      await t.town.done(second.agent, second.beadId, { status: 'wontfix' });
      await t.advance(60_000);

      const t2 = await restartDaemon(t, OPTIONS);
      await t2.advance(10 * 60_000);
      // The polecat records still name the closed beads as their last spawns...
      expect((await t2.model.polecats.get(first.agent))?.spawnBeadId).toBe(first.beadId);
      // ...but neither is given a session again.
      const request = await t2.model.lifecycle.request({
        action: 'start',
        target: first.agent,
        requestedBy: 'operator',
      });
      t2.town.wake();
      const failed = await t2.next('lifecycle.failed', { withinMs: 60_000 });
      expect(failed).toMatchObject({ requestId: request.id });
      await t2.advance(10 * 60_000);
      expect(t.driver.starts.map((s) => s.labels?.bead)).toEqual([first.beadId, second.beadId]);
      expect(await runningSessions(t.driver)).toEqual([]);
      expect(eventsOf(t2, 'polecat.spawned')).toEqual([]);
      expect((await t2.model.beads.require(first.beadId)).status).toBe('done');
      expect((await t2.model.beads.require(second.beadId)).status).toBe('wontfix');
      await t2.stop();
    });
  });

  describe('one alert per incident, not one per tick (#2795, #2041)', () => {
    it('an overdue gate and a stalled convoy, persisting over 20 patrols: one Mayor report each', async () => {
      const mayor: MayorMessage[] = [];
      const t = await town({
        timings: { ...TIMINGS, convoyStallMs: 5 * 60_000 },
        mayor: (m) => {
          mayor.push(m);
        },
      });
      const gate = await t.town.gates.create({
        type: 'human',
        spec: { prompt: 'approve the release' },
        timeoutMs: 2 * 60_000,
      });
      const waiting = await t.model.beads.create({ title: 'never picked up', rig: 'api' });
      const convoy = await t.town.convoys.create({ title: 'release 1.2', beadIds: [waiting.id] });

      const patrolsBefore = eventsOf(t, 'patrol.finished').length;
      await t.advance(25 * TIMINGS.heartbeatMs);
      expect(eventsOf(t, 'patrol.finished').length - patrolsBefore).toBeGreaterThanOrEqual(20);

      expect(reportsTo(mayor, `gate-timeout:${gate.id}`)).toHaveLength(1);
      expect(reportsTo(mayor, `convoy-stalled:${convoy.id}`)).toHaveLength(1);
      expect(reportsTo(mayor)).toHaveLength(2);
      expect(eventsOf(t, 'gate.escalated')).toHaveLength(1);
      expect(eventsOf(t, 'convoy.stalled')).toHaveLength(1);
      // Both are still what they were: the gate open, the convoy open.
      expect((await t.model.gates.require(gate.id)).status).toBe('open');
      expect((await t.town.convoys.status(convoy.id)).status).toBe('open');
      await t.stop();
    });

    it('a poller that fails on every run for 20 intervals: one Mayor report', async () => {
      const mayor: MayorMessage[] = [];
      let runs = 0;
      const t = await town({
        pollers: [
          {
            name: 'discord',
            intervalMs: TIMINGS.heartbeatMs,
            run: () => {
              runs++;
              throw new Error('discord is unreachable');
            },
          },
        ],
        mayor: (m) => {
          mayor.push(m);
        },
      });
      await t.advance(20 * TIMINGS.heartbeatMs);
      expect(runs).toBe(20);
      expect(eventsOf(t, 'poller.failed')).toHaveLength(20);
      expect(reportsTo(mayor, 'poller:discord')).toHaveLength(1);
      expect(reportsTo(mayor)).toHaveLength(1);
      await t.stop();
    });

    it('a Witness that stays unresponsive for 20 patrols: one Mayor report, not one per restart', async () => {
      const mayor: MayorMessage[] = [];
      const t = await town({
        mayor: (m) => {
          mayor.push(m);
        },
      });
      const { agent } = await t.work('keeps running', 'api');
      await until(t, () => spawnedAgents(t).includes(agent), { what: 'the spawn' });
      t.store.hangRig('api'); // every survey of this Witness, before and after restarts, hangs
      await t.advance(20 * TIMINGS.patrolIntervalMs);

      const restarts = eventsOf(t, 'witness.restarted').length;
      expect(restarts).toBeGreaterThanOrEqual(2);
      expect(
        reportsTo(mayor, 'witness-unresponsive:api').map((r) => r.firstAt),
        `the Mayor was alerted anew for each of ${restarts} restarts of a Witness that never recovered`,
      ).toHaveLength(1);
      // Its agent was never touched meanwhile.
      expect(t.driver.starts).toHaveLength(1);
      await t.stop();
    });
  });

  it('a convoy reopens when one of its beads reopens, and closes again when it is done (gascity #6045)', async () => {
    const mayor: MayorMessage[] = [];
    const t = await town({
      mayor: (m) => {
        mayor.push(m);
      },
    });
    const a = await t.work('part a', 'api');
    const b = await t.work('part b', 'web');
    const convoy = await t.town.convoys.create({ title: 'feature', beadIds: [a.beadId, b.beadId] });
    await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
    await t.town.done(a.agent, a.beadId);
    await t.town.done(b.agent, b.beadId);
    await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    expect((await t.town.convoys.status(convoy.id)).status).toBe('closed');

    await t.model.beads.setStatus(a.beadId, 'open');
    expect(await t.town.convoys.status(convoy.id)).toMatchObject({ status: 'open', openCount: 1 });
    expect((await t.town.status()).convoys.open).toBe(1);
    await t.advance(5 * TIMINGS.heartbeatMs);
    expect(eventsOf(t, 'convoy.closed')).toHaveLength(1);

    const again = await t.town.sling(a.beadId, 'api');
    await until(t, () => spawnedAgents(t).filter((x) => x === again.agent).length >= 2, {
      what: 'the reopened bead to be picked up',
    });
    await t.town.done(again.agent, again.beadId);
    await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    expect((await t.town.convoys.status(convoy.id)).status).toBe('closed');
    // Each landing is news for the Mayor.
    expect(reportsTo(mayor, `convoy-landed:${convoy.id}`)).toHaveLength(2);
    await t.stop();
  });
});
