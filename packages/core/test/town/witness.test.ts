import type { MayorMessage, SupervisorEvent, TownTimings } from '@belfry/core';
import { createTestTown, SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  BUSY_AGENT,
  CountingDriver,
  eventsOf,
  recordSupervision,
  reportsTo,
  TIMINGS,
} from './chainHelpers';

// What a rig's Witness does for its polecats: restart-first, with a new epoch and the same hook;
// a respawn limit per bead; hang detection that never kills a fresh agent; and `done`.

async function witnessTown(
  options: {
    timings?: Partial<TownTimings>;
    launch?: () => { command: string[] };
    mayor?: MayorMessage[];
  } = {},
) {
  const clock = new SimulatedClock(1_700_000_000_000);
  const driver = new CountingDriver({ clock });
  const t = await createTestTown({
    clock,
    driver,
    timings: { ...TIMINGS, ...options.timings },
    agent: { launch: options.launch ?? BUSY_AGENT.launch },
    ...(options.mayor
      ? {
          mayor: (m: MayorMessage) => {
            options.mayor?.push(m);
          },
        }
      : {}),
  });
  return Object.assign(t, { driver });
}

describe('the Witness', () => {
  it('restarts a crashed polecat: new epoch, same hook, respawn count up, a new prime nudge', async () => {
    const t = await witnessTown();
    const { agent, beadId } = await t.work('fix the login bug');
    const first = await t.next('polecat.spawned');
    const hook = await t.model.hooks.get(agent);
    expect(t.driver.nudgesOf('api-toast')).toHaveLength(1);

    t.crash(agent);
    const second = await t.next('polecat.spawned', { withinMs: 60_000 });
    expect(second).toMatchObject({ agent, beadId, respawn: true });
    expect(second.epoch).toBeGreaterThan(first.epoch);
    // The same hook: same bead, same hook epoch, also in the new session's labels.
    expect(await t.model.hooks.get(agent)).toEqual(hook);
    expect(await t.session(agent)).toMatchObject({
      state: 'running',
      epoch: second.epoch,
      labels: { bead: beadId, hookEpoch: String(hook?.epoch) },
    });
    expect(await t.model.respawns.count(beadId)).toBe(1);
    const polecat = (await t.town.status()).rigs[0]?.polecats[0];
    expect(polecat).toMatchObject({ agent, beadId, respawns: 1, state: 'running' });
    // The new session is primed once, naming the bead.
    expect(t.driver.nudgesOf('api-toast')).toEqual([expect.stringContaining(beadId)]);
    expect(t.driver.startsOf('api-toast').map((s) => s.epoch)).toEqual([first.epoch, second.epoch]);
    await t.stop();
  });

  it('past maxRespawns respawns of one bead, takes it off the hook as blocked, escalates once and spawns no more', async () => {
    const mayor: MayorMessage[] = [];
    const t = await witnessTown({
      timings: { maxRespawns: 2 },
      launch: () => ({ command: ['doomed'] }),
      mayor,
    });
    // A bead that kills its agent every time: the session crashes 5 s after it starts.
    t.driver.program('doomed', (s) => s.after(5_000, () => s.crash()));
    const { agent, beadId } = await t.work('a poisoned bead');

    const escalated = await t.next('polecat.escalated', { withinMs: 10 * 60_000 });
    expect(escalated).toMatchObject({ agent, beadId, rig: 'api', respawns: 3 });
    const spawns = eventsOf(t, 'polecat.spawned');
    expect(spawns.map((e) => e.respawn)).toEqual([false, true, true]);
    expect(await t.model.hooks.get(agent)).toBeUndefined();
    expect((await t.model.beads.require(beadId)).status).toBe('blocked');

    const reports = eventsOf(t, 'report').filter((e) => e.report.incidentKey.startsWith('respawn'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      created: true,
      report: { severity: 'high', incidentKey: `respawn-limit:${beadId}` },
    });
    expect(reportsTo(mayor, 'respawn-limit:')).toHaveLength(1);

    // No further spawns for it, however long we wait.
    const starts = t.driver.starts.length;
    await t.advance(30 * 60_000);
    expect(t.driver.starts.length).toBe(starts);
    expect(eventsOf(t, 'polecat.spawned')).toHaveLength(3);
    expect(eventsOf(t, 'polecat.escalated')).toHaveLength(1);
    expect((await t.session(agent)).state).toBe('exited');
    expect((await t.town.status()).rigs[0]?.polecats[0]).toMatchObject({
      agent,
      beadId: undefined,
      state: undefined,
    });
    await t.stop();
  });

  it('stops and respawns a hung session once it has shown no activity for staleAfterMs', async () => {
    const t = await witnessTown();
    const { agent, beadId } = await t.work('gets stuck');
    const first = await t.next('polecat.spawned');
    await t.advance(60_000);
    t.hang(agent);
    const lastActivity = (await t.session(agent)).lastActivityAt as number;

    const stopped = await t.next('polecat.stopped', { withinMs: TIMINGS.staleAfterMs + 60_000 });
    expect(stopped).toMatchObject({ agent, reason: 'hung: no activity' });
    expect(stopped.at).toBeGreaterThanOrEqual(lastActivity + TIMINGS.staleAfterMs);
    // The replacement starts right after the stop, in the same survey.
    const respawned = eventsOf(t, 'polecat.spawned', t.events.indexOf(stopped))[0];
    expect(respawned).toMatchObject({ agent, beadId, respawn: true, at: stopped.at });
    expect(respawned?.epoch).toBeGreaterThan(first.epoch);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: respawned?.epoch });
    expect(await t.model.respawns.count(beadId)).toBe(1);
    await t.stop();
  });

  it('does not kill a freshly restarted agent for an old heartbeat: a silent respawn is left alone for spawnGraceMs', async () => {
    // A grace longer than the staleness limit, so only the grace can keep the new session alive.
    const timings = { spawnGraceMs: 300_000, staleAfterMs: 60_000 };
    let program = 'chatty';
    const t = await witnessTown({ timings, launch: () => ({ command: [program, '10000'] }) });
    const { agent } = await t.work('slow to warm up');
    await t.next('polecat.spawned');
    await t.advance(timings.spawnGraceMs + 60_000);
    // The agent hangs; long after, it is replaced by one that takes its time before any output.
    t.hang(agent);
    program = 'silent';
    const respawned = await t.next('polecat.spawned', { withinMs: 10 * 60_000 });
    const fresh = await t.session(agent);
    expect(fresh).toMatchObject({ state: 'running', epoch: respawned.epoch });
    const startedAt = fresh.startedAt as number;

    const since = t.events.indexOf(respawned) + 1;
    await t.advance(timings.spawnGraceMs - 2 * TIMINGS.surveyMs);
    expect(
      eventsOf(t, 'polecat.stopped', since),
      'the new session was stopped inside its spawn grace',
    ).toEqual([]);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: respawned.epoch });

    // After its grace it is judged by its own silence since its start: now it is hung.
    const stopped = await t.next('polecat.stopped', { withinMs: 120_000 });
    expect(stopped.at).toBeGreaterThanOrEqual(startedAt + timings.spawnGraceMs);
    await t.stop();
  });

  it('never restarts a polecat whose session is alive and active, across many surveys', async () => {
    const t = await witnessTown();
    const seen: SupervisorEvent[] = recordSupervision(t);
    const { agent, beadId } = await t.work('a long, busy job');
    const spawned = await t.next('polecat.spawned');
    await t.advance(2 * 60 * 60_000); // 720 surveys

    expect(eventsOf(t, 'polecat.spawned')).toHaveLength(1);
    expect(eventsOf(t, 'polecat.stopped')).toEqual([]);
    expect(t.driver.starts).toHaveLength(1);
    expect(
      seen.filter((e) => e.type === 'child.probeFailed' || e.type === 'child.restarting'),
    ).toEqual([]);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
    expect((await t.town.status()).rigs[0]?.polecats[0]).toMatchObject({
      restarts: 0,
      respawns: 0,
      beadId,
    });
    await t.stop();
  });

  it('done stops the session, moves the bead to done and frees the polecat for the next bead', async () => {
    const t = await witnessTown();
    const { agent, beadId } = await t.work('a small fix');
    const first = await t.next('polecat.spawned');

    await t.town.done(agent, beadId);
    expect((await t.session(agent)).state).toBe('exited');
    expect(await t.model.beads.require(beadId)).toMatchObject({ status: 'done' });
    expect(await t.model.hooks.get(agent)).toBeUndefined();
    expect(eventsOf(t, 'polecat.done')).toEqual([
      expect.objectContaining({ agent, beadId, status: 'done' }),
    ]);
    // Finished work is not restarted.
    await t.advance(10 * 60_000);
    expect(eventsOf(t, 'polecat.spawned')).toHaveLength(1);
    expect((await t.session(agent)).state).toBe('exited');
    expect((await t.town.status()).rigs[0]?.polecats[0]).toMatchObject({
      agent,
      beadId: undefined,
      state: undefined,
    });

    // The idle polecat takes the next bead of the rig.
    const next = await t.work('the next fix');
    expect(next.agent).toBe(agent);
    expect(await t.model.polecats.list('api')).toHaveLength(1);
    const second = await t.next('polecat.spawned');
    expect(second).toMatchObject({ agent, beadId: next.beadId, respawn: false });
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(await t.session(agent)).toMatchObject({
      state: 'running',
      labels: { bead: next.beadId },
    });
    expect(await t.model.respawns.count(next.beadId)).toBe(0);
    await t.stop();
  });
});
