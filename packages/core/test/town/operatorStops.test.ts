import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { recordSupervision } from './chainHelpers';
import { eventsOf, sessionRequest, since, TIMINGS, until, waitFor } from './helpers';

// Operator actions are never crashes: a session the town stops on purpose (a dock, a restart or
// stop request, `done`) is recorded on its polecat, so its bead's next spawn is not a respawn,
// and its polecat actor is retired rather than failed. Four dock/undock cycles used to leave the
// bead blocked and escalated ("respawns=4").

const MINUTE = 60_000;

/** A busy agent (active all along), so nothing takes it for hung. */
const CHATTY = { launch: () => ({ command: ['chatty', '10000'] }) };

async function hooked(t: TestTown) {
  const { agent, beadId } = await t.work('long job');
  const spawned = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === beadId });
  return { agent, beadId, epoch: spawned.epoch };
}

/** The bead is still at work: hooked, never blocked, no respawn counted, no escalation. */
async function expectUncounted(t: TestTown, w: { agent: string; beadId: string }) {
  expect(await t.model.hooks.get(w.agent)).toMatchObject({ beadId: w.beadId });
  expect((await t.model.beads.require(w.beadId)).status).toBe('hooked');
  expect(await t.model.respawns.count(w.beadId)).toBe(0);
  expect(eventsOf(t, 'polecat.escalated')).toEqual([]);
  expect(await t.model.reports.byIncident(`respawn-limit:${w.beadId}`)).toBeUndefined();
  const polecat = (await t.town.status()).rigs[0]?.polecats.find((p) => p.agent === w.agent);
  expect(polecat).toMatchObject({ respawns: 0 });
}

/** No polecat or Witness was failed, restarted or found unhealthy by a probe. */
function expectNoFailures(seen: ReturnType<typeof recordSupervision>) {
  expect(
    seen.filter(
      (e) =>
        e.type === 'child.probeFailed' ||
        e.type === 'child.restarting' ||
        e.type === 'child.unhealthy' ||
        e.type === 'supervisor.gaveUp',
    ),
  ).toEqual([]);
}

describe('operator actions are never crashes', () => {
  it('four immediate dock/undock cycles leave the bead hooked with respawn count 0, never blocked', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const seen = recordSupervision(t);
    const w = await hooked(t);
    for (let cycle = 0; cycle < 4; cycle++) {
      const from = t.events.length;
      await until(t, t.town.rigs.dock('api', { immediate: true }));
      expect((await t.session(w.agent)).state).toBe('exited');
      await until(t, t.town.rigs.undock('api'));
      const again = await waitFor(t, 'polecat.spawned', {
        where: (e) => e.agent === w.agent,
        since: from,
        withinMs: 2 * MINUTE,
      });
      expect(again.respawn).toBe(false);
      await t.advance(2 * MINUTE);
    }
    await expectUncounted(t, w);
    expect((await t.session(w.agent)).state).toBe('running');
    expectNoFailures(seen);
    await t.stop();
  });

  it('four graceful docks that each reach the drain limit, then undock, count nothing either', async () => {
    const t = await createTestTown({
      timings: { ...TIMINGS, drainMs: 5 * MINUTE },
      agent: CHATTY,
    });
    const seen = recordSupervision(t);
    const w = await hooked(t);
    for (let cycle = 0; cycle < 4; cycle++) {
      const from = t.events.length;
      await until(t, t.town.rigs.dock('api'));
      const drained = await waitFor(t, 'rig.drained', { since: from, withinMs: 10 * MINUTE });
      expect(drained.stopped).toEqual([w.agent.replace('/', '-')]);
      await until(t, t.town.rigs.undock('api'));
      const again = await waitFor(t, 'polecat.spawned', {
        where: (e) => e.agent === w.agent,
        since: from,
        withinMs: 2 * MINUTE,
      });
      expect(again.respawn).toBe(false);
    }
    await expectUncounted(t, w);
    expectNoFailures(seen);
    await t.stop();
  });

  it('four park/unpark cycles count nothing', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const w = await hooked(t);
    for (let cycle = 0; cycle < 4; cycle++) {
      await until(t, t.town.rigs.park('api'));
      await t.advance(5 * MINUTE);
      await until(t, t.town.rigs.unpark('api'));
      await t.advance(5 * MINUTE);
    }
    await expectUncounted(t, w);
    expect(await t.session(w.agent)).toMatchObject({ state: 'running', epoch: w.epoch });
    await t.stop();
  });

  it('four restart requests give four new sessions and count nothing; the polecat actor is retired, not failed', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const seen = recordSupervision(t);
    const w = await hooked(t);
    let epoch = w.epoch;
    for (let i = 0; i < 4; i++) {
      const { outcome } = await sessionRequest(t, 'restart', w.agent);
      expect(outcome.type).toBe('lifecycle.done');
      const session = await t.session(w.agent);
      expect(session.state).toBe('running');
      expect(session.epoch).toBeGreaterThan(epoch);
      epoch = session.epoch as number;
      await t.advance(2 * MINUTE);
      expect((await t.session(w.agent)).epoch).toBe(epoch);
    }
    await expectUncounted(t, w);
    expect(
      eventsOf(t, 'polecat.spawned', (e) => e.agent === w.agent).every((e) => !e.respawn),
    ).toBe(true);
    expectNoFailures(seen);
    await t.stop();
  });

  it('a stop request records why; the bead goes back to open, uncounted', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const w = await hooked(t);
    const { outcome } = await sessionRequest(t, 'stop', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    expect(await t.model.polecats.get(w.agent)).toMatchObject({
      stoppedEpoch: w.epoch,
      stopReason: expect.stringContaining('stop'),
      stoppedAt: t.clock.now(),
    });
    expect(await t.model.beads.require(w.beadId)).toMatchObject({ status: 'open' });
    expect(await t.model.respawns.count(w.beadId)).toBe(0);
    await t.stop();
  });

  it('four real crashes still escalate: the bead leaves the hook as blocked', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const w = await hooked(t);
    for (let crash = 1; crash <= 3; crash++) {
      const from = t.events.length;
      t.crash(w.agent);
      const again = await waitFor(t, 'polecat.spawned', {
        where: (e) => e.agent === w.agent,
        since: from,
        withinMs: 5 * MINUTE,
      });
      expect(again.respawn).toBe(true);
      expect(await t.model.respawns.count(w.beadId)).toBe(crash);
    }
    t.crash(w.agent);
    const escalated = await t.next('polecat.escalated', { withinMs: 5 * MINUTE });
    expect(escalated).toMatchObject({ agent: w.agent, beadId: w.beadId, respawns: 4 });
    expect((await t.model.beads.require(w.beadId)).status).toBe('blocked');
    expect(await t.model.hooks.get(w.agent)).toBeUndefined();
    await t.stop();
  });

  it('operator stops between crashes do not hide the crashes: each crash still counts', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const w = await hooked(t);
    // dock/undock, crash, restart, crash: two crashes, two counted.
    await until(t, t.town.rigs.dock('api', { immediate: true }));
    await until(t, t.town.rigs.undock('api'));
    await waitFor(t, 'polecat.spawned', {
      where: (e) => e.agent === w.agent && !e.respawn,
      since: 0,
    });
    await t.advance(MINUTE);
    let from = t.events.length;
    t.crash(w.agent);
    await waitFor(t, 'polecat.spawned', {
      where: (e) => e.respawn,
      since: from,
      withinMs: 5 * MINUTE,
    });
    await sessionRequest(t, 'restart', w.agent);
    await t.advance(MINUTE);
    from = t.events.length;
    t.crash(w.agent);
    await waitFor(t, 'polecat.spawned', {
      where: (e) => e.respawn,
      since: from,
      withinMs: 5 * MINUTE,
    });
    expect(await t.model.respawns.count(w.beadId)).toBe(2);
    expect(eventsOf(since(t, 0), 'polecat.escalated')).toEqual([]);
    await t.stop();
  });
});
