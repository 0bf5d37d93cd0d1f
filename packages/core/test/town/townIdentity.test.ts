import { ConfigError, DriverError, TOWN_LABEL, type TownEvent } from '@belfry/core';
import type { SessionDriver, SessionStatus, StopOptions } from '@belfry/core/driver';
import { createMemoryDriver, type MemoryDriver } from '@belfry/driver-memory';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { failure } from '../modelHelpers';
import { BUSY_AGENT, TIMINGS } from './chainHelpers';

/** What one town asked of the shared driver: each stop, with whose session it was at the time. */
interface Calls {
  stops: Array<{ session: string; owner: string | undefined; state: SessionStatus['state'] }>;
}

/**
 * The shared memory driver as one town is given it: every call goes through, and each `stop` is
 * recorded with the `town` label of the session it was asked for at that moment.
 */
function recorded(memory: MemoryDriver, calls: Calls): SessionDriver {
  return {
    kind: memory.kind,
    start: (spec) => memory.start(spec),
    status: (name) => memory.status(name),
    list: () => memory.list(),
    nudge: (name, text) => memory.nudge(name, text),
    capture: (name, options) => memory.capture(name, options),
    async stop(name: string, options?: StopOptions) {
      const s = await memory.status(name);
      calls.stops.push({ session: name, owner: s.labels?.[TOWN_LABEL], state: s.state });
      return memory.stop(name, options);
    },
  };
}

/** Two towns on one clock and one memory driver (one session space), with the given ids. */
async function twoTowns(ids: { a?: string; b?: string }) {
  const clock = new SimulatedClock(1_700_000_000_000);
  const memory = createMemoryDriver({ clock });
  const calls = { a: { stops: [] } as Calls, b: { stops: [] } as Calls };
  const make = (id: string | undefined, own: Calls, store?: TestTown['store']) =>
    createTestTown({
      ...(id === undefined ? {} : { id }),
      clock,
      driver: memory,
      wrapDriver: (m) => recorded(m, own),
      rigs: ['api'],
      // 30 s heartbeats: twenty of them in the ten minutes.
      timings: { ...TIMINGS, heartbeatMs: 30_000 },
      agent: BUSY_AGENT,
      ...(store === undefined ? {} : { store }),
    });
  // Same seed, same rig: the two towns name their beads, polecats and sessions alike.
  const a = await make(ids.a, calls.a);
  const b = await make(ids.b, calls.b);
  return {
    clock,
    memory,
    calls,
    a,
    b,
    restartB: (store: TestTown['store']) => make(ids.b, calls.b, store),
  };
}

const heartbeats = (t: TestTown) => t.events.filter((e) => e.type === 'heartbeat').length;
const ofType = <T extends TownEvent['type']>(t: TestTown, type: T) =>
  t.events.filter((e): e is Extract<TownEvent, { type: T }> => e.type === type);

describe('a town’s own identity (issue 14 §3): towns sharing a session space', () => {
  it('two towns with the same rig, polecat and bead names on one driver run for 10 minutes of simulated heartbeats with zero interference, and each town’s work finishes', async () => {
    const { memory, calls, a, b, restartB } = await twoTowns({ a: 'tw-a', b: 'tw-b' });
    const workA = [await a.work('build the api'), await a.work('test the api')];
    const workB = [await b.work('build the api'), await b.work('test the api')];
    // The same names in both towns: the worst case for a shared session space.
    expect(workB.map((w) => w.agent)).toEqual(workA.map((w) => w.agent));
    const sessions = workA.map((w) => w.agent.replace('/', '-'));

    // Minute 1: A's agents hold the session names; B's wait for them, touching nothing.
    await a.advance(60_000);
    for (const name of sessions)
      expect(await memory.status(name)).toMatchObject({
        state: 'running',
        labels: { [TOWN_LABEL]: 'tw-a', rig: 'api' },
      });
    const statusB = await b.town.status();
    for (const p of statusB.rigs[0]?.polecats ?? []) expect(p.session.state).not.toBe('running');
    const statusA = await a.town.status();
    expect(statusA.rigs[0]?.polecats.map((p) => p.session.state)).toEqual(['running', 'running']);
    // B cannot nudge or read A's agents through its own agent names.
    const nudge = await failure(() => b.town.nudge(workB[0]?.agent as string, 'hello'));
    expect(nudge).toBeInstanceOf(DriverError);
    expect(nudge).toMatchObject({ code: 'NOT_RUNNING' });
    expect(memory.nudgesOf(sessions[0] as string)).not.toContain('hello');

    // Minute 2: A's agents finish; B's sessions start in the names A freed.
    for (const w of workA) await a.town.done(w.agent, w.beadId);
    await a.advance(60_000);
    for (const name of sessions)
      expect(await memory.status(name)).toMatchObject({
        state: 'running',
        labels: { [TOWN_LABEL]: 'tw-b' },
      });

    // Minute 3: B's daemon restarts; the new town adopts B's sessions, never another town's.
    await b.stop();
    const b2 = await restartB(b.store);
    await b2.advance(60_000);
    const adopted = ofType(b2, 'polecat.adopted');
    expect(adopted.map((e) => e.agent).sort()).toEqual(workB.map((w) => w.agent).sort());
    for (const e of adopted)
      expect(await memory.status(e.agent.replace('/', '-'))).toMatchObject({
        epoch: e.epoch,
        labels: { [TOWN_LABEL]: 'tw-b' },
      });

    // Minute 6: B's agents finish. Then the towns run on to minute 10.
    await b2.advance(3 * 60_000);
    for (const w of workB) await b2.town.done(w.agent, w.beadId);
    await b2.advance(4 * 60_000);

    expect(heartbeats(a)).toBeGreaterThanOrEqual(19);
    expect(heartbeats(b) + heartbeats(b2)).toBeGreaterThanOrEqual(18);
    for (const w of workA) expect((await a.model.beads.require(w.beadId)).status).toBe('done');
    for (const w of workB) expect((await b2.model.beads.require(w.beadId)).status).toBe('done');
    // Zero interference: every stop either town asked for was of its own session (or of none).
    for (const s of calls.a.stops) expect(s.owner === undefined || s.owner === 'tw-a').toBe(true);
    for (const s of calls.b.stops) expect(s.owner === undefined || s.owner === 'tw-b').toBe(true);
    expect(calls.a.stops.filter((s) => s.owner === 'tw-a')).toHaveLength(2);
    expect(calls.b.stops.filter((s) => s.owner === 'tw-b')).toHaveLength(2);
    // No session was counted as a crash or a respawn in either town, nothing was escalated.
    for (const t of [a, b, b2]) {
      expect(ofType(t, 'polecat.escalated')).toEqual([]);
      expect(ofType(t, 'polecat.spawned').filter((e) => e.respawn)).toEqual([]);
      expect(ofType(t, 'polecat.stopped').map((e) => e.reason)).not.toContainEqual(
        expect.stringContaining('other work'),
      );
    }
    expect(ofType(a, 'polecat.adopted')).toEqual([]);
    expect(ofType(a, 'polecat.spawned')).toHaveLength(2);
    await a.stop();
    await b2.stop();
  });

  it('without ids (as before towns had them) both towns take one session for their own: what the ids prevent', async () => {
    const { memory, a, b } = await twoTowns({});
    const workA = await a.work('build the api');
    await b.work('build the api');
    await a.advance(60_000);
    // The same name and epoch: the driver's start is idempotent, so B "starts" A's session.
    const session = await memory.status(workA.agent.replace('/', '-'));
    expect(await memory.list()).toHaveLength(1);
    for (const t of [a, b])
      expect(ofType(t, 'polecat.spawned')).toEqual([
        expect.objectContaining({ agent: workA.agent, epoch: session.epoch }),
      ]);
    await a.stop();
    await b.stop();
  });

  it('a dock in one town stops only its own sessions', async () => {
    const { memory, calls, a, b } = await twoTowns({ a: 'tw-a', b: 'tw-b' });
    const workA = await a.work('build the api');
    await a.advance(30_000);
    const session = workA.agent.replace('/', '-');
    expect(await memory.status(session)).toMatchObject({ state: 'running' });
    await b.town.rigs.dock('api', { immediate: true });
    await b.advance(60_000);
    expect(await memory.status(session)).toMatchObject({
      state: 'running',
      labels: { [TOWN_LABEL]: 'tw-a' },
    });
    expect(calls.b.stops.filter((s) => s.owner !== undefined)).toEqual([]);
    await a.stop();
    await b.stop();
  });

  it('a town given an id adopts the sessions it started before it had one (no town label)', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const memory = createMemoryDriver({ clock });
    const options = { clock, driver: memory, timings: TIMINGS, agent: BUSY_AGENT };
    const before = await createTestTown(options);
    const work = await before.work('build the api');
    await before.next('polecat.spawned');
    const session = work.agent.replace('/', '-');
    const { epoch, labels } = await memory.status(session);
    expect(labels?.[TOWN_LABEL]).toBeUndefined();
    await before.stop();

    const after = await createTestTown({ ...options, id: 'tw-a', store: before.store });
    const adopted = await after.next('polecat.adopted', { since: 0 });
    expect(adopted).toMatchObject({ agent: work.agent, epoch });
    await after.advance(5 * 60_000);
    expect(await memory.status(session)).toMatchObject({ state: 'running', epoch });
    expect(ofType(after, 'polecat.stopped')).toEqual([]);
    expect(after.town.id).toBe('tw-a');
    await after.stop();
  });

  it('an id that is not 1 to 64 letters, digits, _ or - is refused, naming the option', async () => {
    for (const id of ['', 'a town', '-x', 'x'.repeat(65), 7]) {
      const error = await failure(() => createTestTown({ id: id as string, start: false }));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/options\.id.*a town id must be 1 to 64 letters/);
    }
  });
});
