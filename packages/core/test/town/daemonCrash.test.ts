import { MemoryStore } from '@belfry/core';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  CountingDriver,
  eventsOf,
  TWO_RIGS as OPTIONS,
  ProcessDriver,
  ProcessStore,
  restartDaemon,
  runningSessions,
  TIMINGS,
  until,
} from './chainHelpers';

// The seed's "When the Daemon Crashes" table, row by row. The crash is `town.kill()` (the tree
// stops at once, as a killed process would); the restart is a new town on the same store, memory
// driver and clock, as systemd restarting the daemon.

async function startTown(): Promise<TestTown & { driver: CountingDriver }> {
  const clock = new SimulatedClock(1_700_000_000_000);
  const driver = new CountingDriver({ clock });
  const t = await createTestTown({ ...OPTIONS, clock, driver });
  return Object.assign(t, { driver });
}

/** Slings work and waits until each agent's session was spawned. */
async function spawnWork(t: TestTown, work: Array<[string, string]>) {
  const slung: Array<{ agent: string; beadId: string }> = [];
  for (const [title, rig] of work) slung.push(await t.work(title, rig));
  await until(
    t,
    () =>
      slung.every(({ agent }) =>
        t.events.some((e) => e.type === 'polecat.spawned' && e.agent === agent),
      ),
    { what: 'the spawns' },
  );
  return slung;
}

describe('a daemon crash, row by row of the impact table', () => {
  it('running polecats: none; they keep working and the restarted daemon adopts them (same epoch, no new prime)', async () => {
    const t = await startTown();
    const slung = await spawnWork(t, [
      ['fix the login bug', 'api'],
      ['add rate limits', 'api'],
      ['restyle the header', 'web'],
    ]);
    const before = await Promise.all(slung.map(({ agent }) => t.session(agent)));
    const nudgesBefore = before.map((s) => [...t.driver.nudgesOf(s.name)]);
    const startsBefore = t.driver.starts.length;

    t.town.kill();
    await t.advance(10 * 60_000);
    // Down for ten minutes: the agents did not notice; they kept running and working.
    for (const [i, { agent }] of slung.entries()) {
      const now = await t.session(agent);
      expect(now).toMatchObject({ state: 'running', epoch: before[i]?.epoch });
      expect(now.lastActivityAt).toBeGreaterThan(before[i]?.lastActivityAt as number);
    }

    const t2 = await restartDaemon(t, OPTIONS);
    await until(
      t2,
      () =>
        slung.every(({ agent }) =>
          t2.events.some((e) => e.type === 'polecat.adopted' && e.agent === agent),
        ),
      { what: 'the adoption of every running polecat' },
    );
    await t2.advance(5 * 60_000);

    for (const [i, { agent, beadId }] of slung.entries()) {
      const adopted = eventsOf(t2, 'polecat.adopted').filter((e) => e.agent === agent);
      expect(adopted[0]).toMatchObject({ beadId, epoch: before[i]?.epoch });
      expect(await t2.session(agent)).toMatchObject({
        state: 'running',
        epoch: before[i]?.epoch,
        startedAt: before[i]?.startedAt,
      });
      // No second prime: the agent is mid-work, it is not told to start over.
      expect(t2.driver.nudgesOf(before[i]?.name as string)).toEqual(nudgesBefore[i]);
      expect((await t2.model.polecats.get(agent))?.spawnEpoch).toBe(before[i]?.epoch);
      expect(await t2.model.respawns.count(beadId)).toBe(0);
    }
    expect(eventsOf(t2, 'polecat.spawned')).toEqual([]);
    expect(eventsOf(t2, 'polecat.stopped')).toEqual([]);
    expect(t.driver.starts.length).toBe(startsBefore);
    const status = await t2.town.status();
    expect(status.rigs.flatMap((r) => r.polecats.map((p) => p.state))).toEqual([
      'running',
      'running',
      'running',
    ]);
    await t2.stop();
  });

  it('heartbeat chain: broken while the daemon is down (no ticks, the count freezes), resumed after the restart', async () => {
    const t = await startTown();
    await t.advance(3 * TIMINGS.heartbeatMs + 1_000);
    const before = await t.town.status();
    expect(before.daemon).toMatchObject({ running: true, heartbeatCount: 3 });

    t.town.kill();
    const killedAt = t.events.length;
    await t.advance(10 * TIMINGS.heartbeatMs);
    const down = await t.town.status();
    expect(down.daemon).toMatchObject({
      running: false,
      heartbeatCount: 3,
      lastHeartbeat: before.daemon.lastHeartbeat,
    });
    // Nothing of the crashed tree acts any more: no tick, no patrol, no survey.
    expect(t.events.slice(killedAt)).toEqual([]);

    const restartAt = t.clock.now();
    const t2 = await restartDaemon(t, OPTIONS);
    const beat = await t2.next('heartbeat', { withinMs: TIMINGS.heartbeatMs + 1_000 });
    expect(beat.at).toBe(restartAt + TIMINGS.heartbeatMs);
    // The tick reaches the Deacon again: a patrol follows the heartbeat.
    await until(t2, () => eventsOf(t2, 'patrol.finished').some((e) => e.at >= beat.at), {
      withinMs: 5_000,
      what: 'a patrol after the heartbeat',
    });
    await t2.advance(2 * TIMINGS.heartbeatMs);
    const up = await t2.town.status();
    expect(up.daemon.running).toBe(true);
    expect(up.daemon.heartbeatCount).toBe(3);
    expect(up.daemon.lastHeartbeat).toBe(restartAt + 3 * TIMINGS.heartbeatMs);
    expect(up.deacon.lastPatrolAt).toBeGreaterThanOrEqual(restartAt + 3 * TIMINGS.heartbeatMs);
    await t2.stop();
  });

  it('new agent spawns: blocked while the daemon is down; work slung meanwhile gets its session after the restart', async () => {
    const t = await startTown();
    t.town.kill();
    await t.advance(60_000);
    // Slinging only writes the hook (the store is there); nobody is up to start a session.
    const { agent, beadId } = await t.work('written while the daemon was down', 'api');
    await t.advance(10 * 60_000);
    expect((await t.session(agent)).state).toBe('missing');
    expect(t.driver.starts).toEqual([]);
    expect(await t.model.hooks.get(agent)).toMatchObject({ beadId });

    const restartAt = t.clock.now();
    const t2 = await restartDaemon(t, OPTIONS);
    await until(t2, () => eventsOf(t2, 'polecat.spawned').length > 0, {
      withinMs: 2 * TIMINGS.surveyMs,
      what: 'the spawn of the waiting work',
    });
    const [spawned] = eventsOf(t2, 'polecat.spawned');
    expect(spawned).toMatchObject({ agent, beadId, respawn: false });
    expect(spawned?.at).toBeGreaterThanOrEqual(restartAt);
    expect(await t2.session(agent)).toMatchObject({
      state: 'running',
      epoch: spawned?.epoch,
      labels: { bead: beadId },
    });
    expect(t2.driver.nudgesOf('api-toast')).toEqual([expect.stringContaining(beadId)]);
    await t2.stop();
  });

  it('the restart resumes everything: the patrol, a Witness per rig, queued requests, and crash recovery', async () => {
    const t = await startTown();
    const [api, web] = await spawnWork(t, [
      ['api work', 'api'],
      ['web work', 'web'],
    ]);
    t.town.kill();
    await t.advance(5 * 60_000);
    // An operator request made while the daemon is down waits in the durable queue.
    const parkWeb = await t.model.lifecycle.request({
      action: 'park',
      target: 'web',
      requestedBy: 'operator',
    });

    const t2 = await restartDaemon(t, OPTIONS);
    await until(t2, () => eventsOf(t2, 'patrol.finished').length > 0, { what: 'a patrol' });
    expect(
      eventsOf(t2, 'witness.started')
        .map((e) => e.rig)
        .sort(),
    ).toEqual(['api', 'web']);
    const status = await t2.town.status();
    expect(status.daemon.running).toBe(true);
    expect(status.deacon.state).toBe('running');
    expect(status.rigs.map((r) => [r.name, r.witness?.state])).toEqual([
      ['api', 'running'],
      ['web', 'running'],
    ]);
    expect(await t2.model.lifecycle.get(parkWeb.id)).toMatchObject({ status: 'done' });
    expect((await t2.model.rigs.require('web')).state).toBe('parked');
    // Parked: web's in-flight session is left to finish.
    expect((await t2.session(web?.agent as string)).state).toBe('running');

    // The chain works again below the restarted daemon: a crashed polecat is respawned.
    const before = await t2.session(api?.agent as string);
    t2.crash(api?.agent as string);
    const again = await t2.next('polecat.spawned', {
      where: (e) => e.agent === api?.agent,
      withinMs: 120_000,
    });
    expect(again).toMatchObject({ respawn: true, beadId: api?.beadId });
    expect(again.epoch).toBeGreaterThan(before.epoch as number);
    await t2.stop();
  });

  it('a daemon restart never spawns a second session for an agent whose session is running', async () => {
    const t = await startTown();
    const slung = await spawnWork(t, [
      ['one', 'api'],
      ['two', 'api'],
      ['three', 'web'],
    ]);
    const epochs = await Promise.all(
      slung.map(async ({ agent }) => (await t.session(agent)).epoch),
    );
    expect(t.driver.starts).toHaveLength(3);

    // Restarted again and again, including a crash right after a start, before any survey ran.
    let current: TestTown = t;
    for (const downMs of [30_000, 0, 1_000, 4 * 60_000]) {
      await current.advance(downMs);
      current = await restartDaemon(current, OPTIONS);
    }
    await current.advance(10 * 60_000);

    expect(t.driver.starts).toHaveLength(3);
    const running = await runningSessions(t.driver);
    expect(running.map((s) => s.name).sort()).toEqual(['api-nux', 'api-toast', 'web-toast']);
    for (const [i, { agent }] of slung.entries()) {
      expect((await current.session(agent)).epoch).toBe(epochs[i]);
      expect((await current.model.polecats.get(agent))?.spawnEpoch).toBe(epochs[i]);
    }
    expect(eventsOf(current, 'polecat.spawned')).toEqual([]);
    await current.stop();
  });

  describe('a daemon that dies while a session is starting', () => {
    // The session exists at once but its start takes 20 s to answer; the daemon process dies 5 s
    // in, so it never records the start nor primes the agent.
    async function dieMidStart() {
      const clock = new SimulatedClock(1_700_000_000_000);
      const driver = new CountingDriver({ clock });
      driver.program(
        'slow',
        (s) => {
          const tick = () => {
            s.write('working');
            s.after(5_000, tick);
          };
          s.after(5_000, tick);
        },
        { startDelayMs: 20_000 },
      );
      const options = { ...OPTIONS, agent: { launch: () => ({ command: ['slow'] }) } };
      const store = new ProcessStore(new MemoryStore());
      const process = new ProcessDriver(driver);
      const t = await createTestTown({
        ...options,
        clock,
        driver,
        wrapDriver: () => process,
        store,
      });
      const { agent, beadId } = await t.work('slow to start', 'api');
      await until(t, () => driver.starts.length === 1, { what: 'the start call' });
      await t.advance(5_000);
      t.town.kill();
      store.sever();
      process.sever();
      await t.advance(60_000);
      expect(eventsOf(t, 'polecat.spawned')).toEqual([]);
      expect(driver.nudgesOf('api-toast')).toEqual([]);
      const t2 = await createTestTown({
        ...options,
        clock,
        driver,
        store: new ProcessStore(store.inner),
      });
      return { t2, driver, agent, beadId };
    }

    it('the restarted daemon adopts that session instead of starting a second one', async () => {
      const { t2, driver, agent, beadId } = await dieMidStart();
      await t2.advance(2 * 60_000);
      expect(driver.starts).toHaveLength(1);
      const session = await t2.session(agent);
      expect(session).toMatchObject({ state: 'running', epoch: driver.starts[0]?.epoch });
      expect(eventsOf(t2, 'polecat.adopted').filter((e) => e.agent === agent)[0]).toMatchObject({
        beadId,
        epoch: session.epoch,
      });
      expect((await t2.model.polecats.get(agent))?.spawnEpoch).toBe(session.epoch);
      expect(await t2.model.respawns.count(beadId)).toBe(0);
      await t2.stop();
    });

    it('the restarted daemon finishes that spawn: the agent gets its prime nudge, once', async () => {
      const { t2, driver, beadId } = await dieMidStart();
      await t2.advance(2 * 60_000);
      expect(
        driver.nudgesOf('api-toast'),
        'the adopted session was never told which bead it holds',
      ).toEqual([expect.stringContaining(beadId)]);
      await t2.advance(10 * 60_000);
      expect(driver.nudgesOf('api-toast')).toHaveLength(1);
      expect(driver.starts).toHaveLength(1);
      await t2.stop();
    });

    it('the adopted session counts as started: its next crash is a respawn of the bead', async () => {
      const { t2, agent, beadId } = await dieMidStart();
      await t2.advance(2 * 60_000);
      t2.crash(agent);
      const again = await t2.next('polecat.spawned', { withinMs: 120_000 });
      expect(again).toMatchObject({ agent, beadId });
      expect(
        { respawn: again.respawn, respawns: await t2.model.respawns.count(beadId) },
        'the respawn limit did not count this respawn',
      ).toEqual({ respawn: true, respawns: 1 });
      await t2.stop();
    });
  });
});
