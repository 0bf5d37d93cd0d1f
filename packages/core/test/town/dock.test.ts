import { ConfigError } from '@belfry/core';
import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, since, TIMINGS, until, waitFor } from './helpers';

const MINUTE = 60_000;
const DRAIN = 30 * MINUTE;

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

async function rigStatus(t: TestTown, name = 'api') {
  return (await t.town.status()).rigs.find((r) => r.name === name);
}

describe('graceful dock', () => {
  it('lets a session five minutes into a twenty-minute job finish: not stopped, its done at minute 20 ends the drain, nothing spawned meanwhile', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t, 'a twenty-minute job');
    if (!w) throw new Error('unreachable');
    await t.advance(5 * MINUTE);

    const askedAt = t.clock.now();
    const from = t.events.length;
    const request = await until(t, t.town.rigs.dock('api'));
    // The request itself is quick: the rig is docked and the deadline recorded.
    expect(request.status).toBe('done');
    expect(request.result).toEqual({
      state: 'docked',
      drainUntil: askedAt + DRAIN,
      draining: [w.agent],
    });
    expect(await t.model.rigs.require('api')).toMatchObject({
      state: 'docked',
      drainUntil: askedAt + DRAIN,
    });
    expect(await rigStatus(t)).toMatchObject({
      state: 'docked',
      drainUntil: askedAt + DRAIN,
      witness: { state: 'running' },
    });
    // New work is refused at once.
    const fresh = await t.model.beads.create({ title: 'new work', rig: 'api' });
    await expect(t.town.sling(fresh.id, 'api')).rejects.toThrow(/docked/);

    await t.advance(15 * MINUTE - (t.clock.now() - askedAt));
    expect(await t.session(w.agent)).toMatchObject({ state: 'running', epoch: w.epoch });
    expect(eventsOf(since(t, from), 'polecat.stopped')).toEqual([]);
    expect(eventsOf(since(t, from), 'rig.drained')).toEqual([]);

    await t.town.done(w.agent, w.beadId);
    expect(await t.model.beads.require(w.beadId)).toMatchObject({ status: 'done' });
    const drained = await waitFor(t, 'rig.drained', { since: from, withinMs: 5 * MINUTE });
    expect(drained).toMatchObject({ rig: 'api', stopped: [] });
    await waitFor(t, 'witness.stopped', {
      where: (e) => e.rig === 'api',
      since: from,
      withinMs: 5 * MINUTE,
    });
    expect(await t.model.rigs.require('api')).not.toHaveProperty('drainUntil');
    const status = await rigStatus(t);
    expect(status).toMatchObject({ state: 'docked', witness: undefined });
    expect(status).not.toHaveProperty('drainUntil');

    await t.advance(DRAIN);
    expect(eventsOf(since(t, from), 'polecat.spawned')).toEqual([]);
    expect(eventsOf(since(t, from), 'polecat.stopped')).toEqual([]);
    expect(eventsOf(since(t, from), 'witness.started')).toEqual([]);
    expect(eventsOf(t, 'polecat.spawned')).toHaveLength(1);
    await t.stop();
  });

  it('stops the work that never finishes at the drain limit (30 min by default), keeping the hooks; undock resumes it, not as a respawn', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const works = await busy(t, 'endless one', 'endless two');
    const hooksBefore = await t.model.hooks.list({ rig: 'api' });
    const askedAt = t.clock.now();
    const from = t.events.length;
    await until(t, t.town.rigs.dock('api'));

    await t.advance(DRAIN - (t.clock.now() - askedAt) - 1);
    for (const w of works) expect((await t.session(w.agent)).state).toBe('running');
    expect(eventsOf(since(t, from), 'polecat.stopped')).toEqual([]);

    const drained = await waitFor(t, 'rig.drained', { since: from, withinMs: 2 * MINUTE });
    expect(drained.at).toBeGreaterThanOrEqual(askedAt + DRAIN);
    expect(drained.at).toBeLessThanOrEqual(askedAt + DRAIN + (TIMINGS.surveyMs as number));
    expect([...drained.stopped].sort()).toEqual(works.map((w) => w.agent.replace('/', '-')).sort());
    for (const w of works) {
      expect(await t.session(w.agent)).toMatchObject({ state: 'exited', signal: 'SIGTERM' });
      expect(await t.model.polecats.get(w.agent)).toMatchObject({
        stoppedEpoch: w.epoch,
        stopReason: expect.stringContaining('drain limit'),
      });
    }
    const stopped = eventsOf(since(t, from), 'polecat.stopped');
    expect(stopped.map((e) => e.agent).sort()).toEqual(works.map((w) => w.agent).sort());
    expect(await t.model.hooks.list({ rig: 'api' })).toEqual(hooksBefore);
    await waitFor(t, 'witness.stopped', { where: (e) => e.rig === 'api', since: from });
    // The polecat actors were retired, not failed: no restarts counted under the Witness.
    expect(eventsOf(since(t, from), 'polecat.spawned')).toEqual([]);

    const undocked = t.events.length;
    await until(t, t.town.rigs.undock('api'));
    for (const w of works) {
      const again = await waitFor(t, 'polecat.spawned', {
        where: (e) => e.agent === w.agent,
        since: undocked,
        withinMs: 2 * MINUTE,
      });
      expect(again).toMatchObject({ beadId: w.beadId, respawn: false });
      expect(await t.model.respawns.count(w.beadId)).toBe(0);
    }
    await t.stop();
  });

  it('drainMs sets the drain limit', async () => {
    const t = await createTestTown({ timings: { ...TIMINGS, drainMs: 5 * MINUTE } });
    const [w] = await busy(t, 'slow');
    if (!w) throw new Error('unreachable');
    const askedAt = t.clock.now();
    const request = await until(t, t.town.rigs.dock('api'));
    expect(request.result).toMatchObject({ drainUntil: askedAt + 5 * MINUTE });
    const drained = await t.next('rig.drained', { withinMs: 10 * MINUTE });
    expect(drained.at).toBeGreaterThanOrEqual(askedAt + 5 * MINUTE);
    expect(drained.at).toBeLessThan(askedAt + 6 * MINUTE);
    expect((await t.session(w.agent)).state).toBe('exited');
    await t.stop();
  });

  it('an immediate dock stops the sessions at once, with no drain', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t, 'cut short');
    if (!w) throw new Error('unreachable');
    const request = await until(t, t.town.rigs.dock('api', { immediate: true }));
    expect(request.args).toEqual({ immediate: true });
    expect(request.result).toEqual({ state: 'docked', stopped: [w.agent.replace('/', '-')] });
    expect(await t.session(w.agent)).toMatchObject({ state: 'exited', signal: 'SIGTERM' });
    expect(await t.model.rigs.require('api')).not.toHaveProperty('drainUntil');
    expect(await rigStatus(t)).toMatchObject({ state: 'docked', witness: undefined });
    expect(await t.model.polecats.get(w.agent)).toMatchObject({
      stoppedEpoch: w.epoch,
      stopReason: 'rig api docked (immediate)',
    });
    await t.stop();
  });

  it('an immediate dock during a drain ends it at once', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t, 'draining');
    if (!w) throw new Error('unreachable');
    await until(t, t.town.rigs.dock('api'));
    await t.advance(2 * MINUTE);
    expect((await t.session(w.agent)).state).toBe('running');
    await until(t, t.town.rigs.dock('api', { immediate: true }));
    expect((await t.session(w.agent)).state).toBe('exited');
    expect(await t.model.rigs.require('api')).not.toHaveProperty('drainUntil');
    await t.stop();
  });

  it('a dock with nothing in flight is docked at once, with no drain and no Witness', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const request = await until(t, t.town.rigs.dock('api'));
    expect(request.result).toEqual({ state: 'docked', stopped: [] });
    expect(await rigStatus(t)).toMatchObject({ state: 'docked', witness: undefined });
    expect(await rigStatus(t)).not.toHaveProperty('drainUntil');
    await t.stop();
  });

  it('refuses bad dock options with a ConfigError, and a queued dock with bad args fails', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    await expect(t.town.rigs.dock('api', { immediate: 'yes' as never })).rejects.toThrow(
      ConfigError,
    );
    await expect(t.town.rigs.dock('api', { now: true } as never)).rejects.toThrow(
      /allowed: immediate/,
    );
    const queued = await t.model.lifecycle.request({
      action: 'dock',
      target: 'api',
      args: { immediate: 1 },
      requestedBy: 'script',
    });
    t.town.wake();
    const failed = await t.next('lifecycle.failed', {
      where: (e) => e.requestId === queued.id,
    });
    expect(failed.error).toMatch(/args.immediate must be true or false; got 1/);
    expect((await t.model.rigs.require('api')).state).toBe('operational');
    await t.stop();
  });

  it('undock during a drain cancels it: nothing is stopped, nothing respawned', async () => {
    // A busy agent: active all along, so nothing takes it for hung over the hour.
    const t = await createTestTown({
      timings: TIMINGS,
      agent: { launch: () => ({ command: ['chatty', '10000'] }) },
    });
    const [w] = await busy(t, 'keeps going');
    if (!w) throw new Error('unreachable');
    const from = t.events.length;
    await until(t, t.town.rigs.dock('api'));
    await t.advance(10 * MINUTE);
    await until(t, t.town.rigs.undock('api'));
    expect(await t.model.rigs.require('api')).toMatchObject({ state: 'operational' });
    expect(await t.model.rigs.require('api')).not.toHaveProperty('drainUntil');
    await t.advance(DRAIN + 5 * MINUTE);
    expect(await t.session(w.agent)).toMatchObject({ state: 'running', epoch: w.epoch });
    expect(eventsOf(since(t, from), 'polecat.stopped')).toEqual([]);
    expect(eventsOf(since(t, from), 'polecat.spawned')).toEqual([]);
    expect(eventsOf(since(t, from), 'rig.drained')).toEqual([]);
    expect(eventsOf(since(t, from), 'witness.stopped')).toEqual([]);
    await t.stop();
  });

  it('a crashed session of a draining rig is not respawned; the drain ends when nothing is left', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const [a, b] = await busy(t, 'crashes', 'finishes');
    if (!a || !b) throw new Error('unreachable');
    const from = t.events.length;
    await until(t, t.town.rigs.dock('api'));
    t.crash(a.agent);
    await t.advance(10 * MINUTE);
    expect(eventsOf(since(t, from), 'polecat.spawned')).toEqual([]);
    expect((await t.session(a.agent)).state).toBe('exited');
    expect((await t.session(b.agent)).state).toBe('running');
    expect(eventsOf(since(t, from), 'rig.drained')).toEqual([]);

    await t.town.done(b.agent, b.beadId);
    const drained = await waitFor(t, 'rig.drained', { since: from, withinMs: 5 * MINUTE });
    expect(drained.stopped).toEqual([]);
    // The crashed bead keeps its hook for the undock, and its crash still counts then.
    expect(await t.model.hooks.get(a.agent)).toMatchObject({ beadId: a.beadId });
    const undocked = t.events.length;
    await until(t, t.town.rigs.undock('api'));
    const again = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.agent === a.agent,
      since: undocked,
      withinMs: 2 * MINUTE,
    });
    expect(again.respawn).toBe(true);
    expect(await t.model.respawns.count(a.beadId)).toBe(1);
    await t.stop();
  });

  it('the drain deadline survives a town restart: a new town on the same store and driver keeps it', async () => {
    const t1 = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t1, 'outlives the daemon');
    if (!w) throw new Error('unreachable');
    const askedAt = t1.clock.now();
    await until(t1, t1.town.rigs.dock('api'));
    await t1.advance(20 * MINUTE);
    t1.town.kill();
    await t1.advance(5 * MINUTE);

    const t2 = await createTestTown({
      timings: TIMINGS,
      store: t1.store,
      driver: t1.driver,
      clock: t1.clock,
    });
    // Still draining with the same deadline, the in-flight session adopted, not stopped.
    expect(await rigStatus(t2)).toMatchObject({ state: 'docked', drainUntil: askedAt + DRAIN });
    await t2.advance(2 * MINUTE);
    expect(await t2.session(w.agent)).toMatchObject({ state: 'running', epoch: w.epoch });
    expect(await rigStatus(t2)).toMatchObject({ witness: { state: 'running' } });

    const drained = await t2.next('rig.drained', { withinMs: 10 * MINUTE });
    expect(drained.at).toBeGreaterThanOrEqual(askedAt + DRAIN);
    expect(drained.at).toBeLessThanOrEqual(askedAt + DRAIN + (TIMINGS.surveyMs as number));
    expect(drained.stopped).toEqual([w.agent.replace('/', '-')]);
    expect(eventsOf(t2, 'polecat.stopped')).toHaveLength(1);
    expect(await t2.model.hooks.get(w.agent)).toMatchObject({ beadId: w.beadId });
    await t2.stop();
  });

  it('a restarted town past the deadline stops the leftovers once', async () => {
    const t1 = await createTestTown({ timings: TIMINGS });
    const [w] = await busy(t1, 'left behind');
    if (!w) throw new Error('unreachable');
    await until(t1, t1.town.rigs.dock('api'));
    t1.town.kill();
    await t1.advance(DRAIN + 10 * MINUTE);
    expect((await t1.session(w.agent)).state).toBe('running');

    const t2 = await createTestTown({
      timings: TIMINGS,
      store: t1.store,
      driver: t1.driver,
      clock: t1.clock,
    });
    const drained = await t2.next('rig.drained', { since: 0, withinMs: 5 * MINUTE });
    expect(drained.stopped).toEqual([w.agent.replace('/', '-')]);
    await t2.advance(10 * MINUTE);
    expect(eventsOf(t2, 'polecat.stopped')).toHaveLength(1);
    expect(eventsOf(t2, 'rig.drained')).toHaveLength(1);
    expect(eventsOf(t2, 'boot.assessed')).toEqual([]);
    expect(await rigStatus(t2)).toMatchObject({ state: 'docked', witness: undefined });
    await t2.stop();
  });
});
