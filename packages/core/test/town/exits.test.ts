import { DriverError, type TownEvent, terminateChild } from '@belfry/core';
import type { SessionDriver, SessionSpec } from '@belfry/core/driver';
import type { MemoryDriver } from '@belfry/driver-memory';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import type { AnyActorRef } from 'xstate';
import { eventsOf, sessionRequest, since, TIMINGS, until, waitFor } from './helpers';

const SURVEY_MS = TIMINGS.surveyMs as number;

function sessionOf(agent: string): string {
  return agent.replace('/', '-');
}

/**
 * The memory driver behind a recorder of every start (who started which epoch) that can also
 * make a session vanish, as when its tmux server dies: no status, no output, nothing to stop.
 */
function recordingDriver(
  slowStart?: { clock: SimulatedClock; ms: number; from: number },
  /** A stopped session is gone altogether, as tmux's kill-session leaves it. */
  goneOnStop = false,
) {
  const starts: SessionSpec[] = [];
  const gone = new Set<string>();
  let inner: MemoryDriver | undefined;
  const wrap = (memory: MemoryDriver): SessionDriver => {
    inner = memory;
    return {
      kind: memory.kind,
      async start(spec) {
        starts.push(spec);
        // From the `from`-th start on, a start takes `ms` of the clock (a slow agent boot).
        if (slowStart && starts.length >= slowStart.from)
          await new Promise<void>((resolve) => slowStart.clock.setTimeout(resolve, slowStart.ms));
        gone.delete(spec.name);
        return memory.start(spec);
      },
      // Vanished from a host that still runs (someone ran `tmux kill-session`): the host says so.
      status: async (name) =>
        gone.has(name) ? { name, state: 'missing', host: memory.host } : memory.status(name),
      list: async () => (await memory.list()).filter((s) => !gone.has(s.name)),
      nudge: (name, text) => memory.nudge(name, text),
      async capture(name, options) {
        if (gone.has(name))
          throw new DriverError({ code: 'NOT_RUNNING', message: `session ${name} is missing` });
        return memory.capture(name, options);
      },
      async stop(name, options) {
        if (gone.has(name)) return;
        await memory.stop(name, options);
        if (goneOnStop) gone.add(name);
      },
    };
  };
  return {
    starts,
    wrap,
    /** Makes a session vanish without an exit status. */
    vanish(name: string) {
      inner?.crash(name, 'SIGKILL');
      gone.add(name);
    },
    /** The number of starts of each epoch of `name`. */
    startsPerEpoch(name: string): Map<number, number> {
      const counts = new Map<number, number>();
      for (const s of starts)
        if (s.name === name) counts.set(s.epoch, (counts.get(s.epoch) ?? 0) + 1);
      return counts;
    },
  };
}

/** Works on the rig and waits for its first session. */
async function working(t: TestTown, title = 'long job') {
  const { agent, beadId } = await t.work(title);
  const spawned = await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === beadId });
  return { agent, beadId, epoch: spawned.epoch, session: sessionOf(agent) };
}

describe('a crash you can see: polecat.exited', () => {
  it.each([
    ['an exit code', 'exit'],
    ['a signal', 'signal'],
  ] as const)(
    'a session that ends with %s: one polecat.exited with how it ended and its last output, before the respawn',
    async (_what, how) => {
      const t = await createTestTown({ timings: TIMINGS });
      const w = await working(t);
      t.driver.write(w.session, 'compiling');
      t.driver.write(w.session, 'Error: out of memory');
      const before = t.events.length;
      const endedAt = t.clock.now();
      if (how === 'exit') t.driver.exit(w.session, 3);
      else t.crash(w.agent, 'SIGSEGV');
      const respawned = await t.next('polecat.spawned', {
        where: (e) => e.agent === w.agent,
        withinMs: 120_000,
      });
      expect(respawned).toMatchObject({ respawn: true, beadId: w.beadId });
      const exits = eventsOf(since(t, before), 'polecat.exited');
      expect(exits).toHaveLength(1);
      const exited = exits[0];
      expect(exited).toMatchObject({
        agent: w.agent,
        rig: 'api',
        beadId: w.beadId,
        epoch: w.epoch,
        reason: 'exited',
        exitCode: how === 'exit' ? 3 : null,
        signal: how === 'exit' ? null : 'SIGSEGV',
        exitedAt: endedAt,
      });
      // The last lines, oldest first, the prime's echo included.
      expect(exited?.lastOutput.slice(-2)).toEqual(['compiling', 'Error: out of memory']);
      expect(exited?.lastOutput[0]).toContain(w.beadId);
      expect(t.events.indexOf(exited as TownEvent)).toBeLessThan(t.events.indexOf(respawned));
      await t.stop();
    },
  );

  it('records when it ended per the driver, and keeps it on the polecat record and in status', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    for (let i = 1; i <= 8; i++) t.driver.write(w.session, `line ${i}`);
    const crashedAt = t.clock.now();
    t.crash(w.agent, 'SIGKILL');
    const exited = await t.next('polecat.exited', { withinMs: 60_000 });
    expect(exited.exitedAt).toBe(crashedAt);
    expect(exited.at).toBeGreaterThanOrEqual(crashedAt);
    const respawned = await t.next('polecat.spawned', { withinMs: 120_000 });

    const record = await t.model.polecats.get(w.agent);
    expect(record?.lastExit).toEqual({
      epoch: w.epoch,
      beadId: w.beadId,
      reason: 'exited',
      exitCode: null,
      signal: 'SIGKILL',
      at: crashedAt,
      lastOutput: exited.lastOutput,
    });
    const status = await t.town.status();
    const polecat = status.rigs[0]?.polecats.find((p) => p.agent === w.agent);
    expect(polecat?.session).toMatchObject({ state: 'running', epoch: respawned.epoch });
    expect(polecat?.lastExit).toEqual({
      epoch: w.epoch,
      beadId: w.beadId,
      reason: 'exited',
      exitCode: null,
      signal: 'SIGKILL',
      at: crashedAt,
      lastOutput: ['line 4', 'line 5', 'line 6', 'line 7', 'line 8'],
    });
    await t.stop();
  });

  it('a polecat whose session never ended shows no last exit', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    await t.advance(60_000);
    const status = await t.town.status();
    expect(status.rigs[0]?.polecats.find((p) => p.agent === w.agent)?.lastExit).toBeUndefined();
    expect(eventsOf(t, 'polecat.exited')).toEqual([]);
    await t.stop();
  });

  it('a session that vanished (missing): exitCode and signal null, reason missing, no output; then respawned', async () => {
    const driver = recordingDriver();
    const t = await createTestTown({ timings: TIMINGS, wrapDriver: driver.wrap });
    const w = await working(t);
    t.driver.write(w.session, 'about to vanish');
    const before = t.events.length;
    driver.vanish(w.session);
    const respawned = await t.next('polecat.spawned', { withinMs: 120_000 });
    const exits = eventsOf(since(t, before), 'polecat.exited');
    expect(exits).toEqual([
      expect.objectContaining({
        agent: w.agent,
        epoch: w.epoch,
        beadId: w.beadId,
        reason: 'missing',
        exitCode: null,
        signal: null,
        lastOutput: [],
      }),
    ]);
    expect(t.events.indexOf(exits[0] as TownEvent)).toBeLessThan(t.events.indexOf(respawned));
    expect(respawned).toMatchObject({ respawn: true });
    await t.stop();
  });

  it('exactly once per epoch: the probe and the survey both see the dead session of a parked rig, one event', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    await until(t, t.town.rigs.park('api'));
    const before = t.events.length;
    t.driver.exit(w.session, 1);
    // Many surveys and probes later: nothing restarts it (parked), and one event says so.
    await t.advance(10 * SURVEY_MS);
    expect(eventsOf(since(t, before), 'polecat.spawned')).toEqual([]);
    expect(eventsOf(since(t, before), 'polecat.exited')).toEqual([
      expect.objectContaining({ agent: w.agent, epoch: w.epoch, exitCode: 1, reason: 'exited' }),
    ]);
    // Unparked, it is respawned, and the exit is not announced again.
    await until(t, t.town.rigs.unpark('api'));
    await waitFor(t, 'polecat.spawned', { where: (e) => e.agent === w.agent, since: before });
    await t.advance(60_000);
    expect(eventsOf(since(t, before), 'polecat.exited')).toHaveLength(1);
    await t.stop();
  });

  it('a dock stops the sessions on purpose: recorded as stopped at the dock, with their output; the undock announces nothing again', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    t.driver.write(w.session, 'in the middle of it');
    const before = t.events.length;
    await until(t, t.town.rigs.dock('api', { immediate: true }));
    const exits = eventsOf(since(t, before), 'polecat.exited');
    expect(exits).toEqual([
      expect.objectContaining({
        agent: w.agent,
        epoch: w.epoch,
        reason: 'stopped',
        exitCode: null,
        signal: 'SIGTERM',
      }),
    ]);
    expect(exits[0]?.lastOutput.at(-1)).toBe('in the middle of it');
    await until(t, t.town.rigs.undock('api'));
    const respawned = await waitFor(t, 'polecat.spawned', { since: before });
    expect(respawned).toMatchObject({ agent: w.agent, respawn: false });
    await t.advance(60_000);
    expect(eventsOf(since(t, before), 'polecat.exited')).toHaveLength(1);
    await t.stop();
  });

  it('each crash of the same bead is its own exit (one per epoch)', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    t.crash(w.agent, 'SIGKILL');
    const second = await t.next('polecat.spawned', { withinMs: 120_000 });
    t.driver.exit(w.session, 2);
    await t.next('polecat.spawned', { withinMs: 120_000 });
    expect(
      eventsOf(t, 'polecat.exited').map((e) => [e.epoch, e.exitCode, e.signal] as const),
    ).toEqual([
      [w.epoch, null, 'SIGKILL'],
      [second.epoch, 2, null],
    ]);
    expect((await t.model.polecats.get(w.agent))?.lastExit?.epoch).toBe(second.epoch);
    await t.stop();
  });

  it('a long output is kept bounded: the newest lines, each cut to 200 characters, 2,000 in all', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    for (let i = 0; i < 30; i++) t.driver.write(w.session, `${i}:${'x'.repeat(500)}`);
    t.crash(w.agent);
    const exited = await t.next('polecat.exited', { withinMs: 60_000 });
    expect(exited.lastOutput).toHaveLength(10);
    expect(exited.lastOutput[0]?.startsWith('20:')).toBe(true);
    for (const line of exited.lastOutput) {
      expect(line).toHaveLength(200);
      expect(line.endsWith('…')).toBe(true);
    }
    await t.stop();
  });

  it.each(['done', 'a stop request'])(
    'a session stopped with its work (%s) is no crash: no polecat.exited',
    async (how) => {
      const t = await createTestTown({ timings: TIMINGS });
      const w = await working(t);
      if (how === 'done') await t.town.done(w.agent, w.beadId);
      else expect((await sessionRequest(t, 'stop', w.agent)).outcome.type).toBe('lifecycle.done');
      await t.advance(60_000);
      expect((await t.session(w.agent)).state).toBe('exited');
      expect(eventsOf(t, 'polecat.exited')).toEqual([]);
      expect((await t.model.polecats.get(w.agent))?.lastExit).toBeUndefined();
      await t.stop();
    },
  );
});

describe('one owner restarts a session: the polecat actor', () => {
  it('a restart request stops the session on purpose (recorded) and the polecat actor starts exactly one new one', async () => {
    const driver = recordingDriver();
    const t = await createTestTown({ timings: TIMINGS, wrapDriver: driver.wrap });
    const w = await working(t);
    t.driver.write(w.session, 'half way');
    const before = t.events.length;
    const { outcome, request } = await sessionRequest(t, 'restart', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    const session = await t.session(w.agent);
    expect(session.state).toBe('running');
    expect(request.result).toEqual({
      session: w.session,
      outcome: 'running',
      epoch: session.epoch,
    });
    const exited = eventsOf(since(t, before), 'polecat.exited');
    expect(exited).toEqual([
      expect.objectContaining({
        epoch: w.epoch,
        reason: 'stopped',
        exitCode: null,
        signal: 'SIGTERM',
      }),
    ]);
    expect(exited[0]?.lastOutput.at(-1)).toBe('half way');
    // Stopped first (recorded), then the new session: in that order on the bus.
    const spawned = eventsOf(since(t, before), 'polecat.spawned');
    expect(spawned).toEqual([expect.objectContaining({ epoch: session.epoch, respawn: false })]);
    expect(t.events.indexOf(exited[0] as TownEvent)).toBeLessThan(
      t.events.indexOf(spawned[0] as TownEvent),
    );
    await t.advance(300_000);
    expect([...driver.startsPerEpoch(w.session)]).toEqual([
      [w.epoch, 1],
      [session.epoch, 1],
    ]);
    // An operator's restart does not count against the bead's respawn limit.
    expect(await t.model.respawns.count(w.beadId)).toBe(0);
    await t.stop();
  });

  it('a start request of a crashed session: the owner records the exit, then starts one session', async () => {
    const driver = recordingDriver();
    // Surveys and probes far apart: only the request can bring the session back in time.
    const t = await createTestTown({
      timings: { ...TIMINGS, surveyMs: 600_000 },
      wrapDriver: driver.wrap,
    });
    const w = await working(t);
    const before = t.events.length;
    t.driver.exit(w.session, 137);
    const { outcome, request } = await sessionRequest(t, 'start', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    const session = await t.session(w.agent);
    expect(session).toMatchObject({ state: 'running' });
    expect(request.result).toMatchObject({ epoch: session.epoch });
    const types = since(t, before)
      .events.filter((e) => e.type === 'polecat.exited' || e.type === 'polecat.spawned')
      .map((e) => e.type);
    expect(types).toEqual(['polecat.exited', 'polecat.spawned']);
    expect(eventsOf(since(t, before), 'polecat.exited')[0]).toMatchObject({ exitCode: 137 });
    expect([...driver.startsPerEpoch(w.session).values()]).toEqual([1, 1]);
    await t.stop();
  });

  it.each([0, 5_000, 10_000, 15_000, 20_000, 21_000, 25_000, 40_000])(
    'a restart request racing the probe’s respawn (request %i ms after the crash): every epoch started once, one exit per epoch',
    async (offset) => {
      const driver = recordingDriver();
      const t = await createTestTown({ timings: TIMINGS, wrapDriver: driver.wrap });
      const w = await working(t);
      const before = t.events.length;
      t.crash(w.agent, 'SIGKILL');
      await t.advance(offset);
      const { outcome, request } = await sessionRequest(t, 'restart', w.agent);
      expect(outcome.type).toBe('lifecycle.done');
      await t.advance(120_000);
      const session = await t.session(w.agent);
      expect(session.state).toBe('running');
      expect(request.result).toMatchObject({ epoch: session.epoch });
      const perEpoch = driver.startsPerEpoch(w.session);
      for (const [epoch, count] of perEpoch) expect({ epoch, count }).toEqual({ epoch, count: 1 });
      // At most the probe's respawn and the operator's replacement of it.
      const started = eventsOf(since(t, before), 'polecat.spawned').map((e) => e.epoch);
      expect(started.length).toBeGreaterThanOrEqual(1);
      expect(started.length).toBeLessThanOrEqual(2);
      expect(started.at(-1)).toBe(session.epoch);
      expect(perEpoch.size).toBe(1 + started.length);
      // The crash is announced once, as a crash (SIGKILL), whoever noticed it first.
      const exits = eventsOf(since(t, before), 'polecat.exited');
      expect(exits[0]).toMatchObject({ epoch: w.epoch, reason: 'exited', signal: 'SIGKILL' });
      expect(new Set(exits.map((e) => e.epoch)).size).toBe(exits.length);
      expect(exits).toHaveLength(started.length);
      await t.stop();
    },
  );

  it.each([
    ['within the spawn grace: the probe leaves the owner’s step alone', 25_000],
    ['past the spawn grace: the restarted actor waits for the step it replaces', 80_000],
  ])('a slow start after a restart request, %s; one start per epoch', async (_what, ms) => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const driver = recordingDriver({ clock, ms, from: 2 });
    const t = await createTestTown({
      clock,
      // A start slower than the spawn grace, but within the limit of one driver call.
      timings: { ...TIMINGS, leaseMs: 600_000, callTimeoutMs: 120_000 },
      wrapDriver: driver.wrap,
    });
    const w = await working(t);
    const restartsOf = async () =>
      (await t.town.status()).rigs[0]?.polecats.find((p) => p.agent === w.agent)?.restarts;
    const restartsBefore = await restartsOf();
    const before = t.events.length;
    const { outcome, request } = await sessionRequest(t, 'restart', w.agent);
    expect(outcome.type).toBe('lifecycle.done');
    // Within the grace the probe does not judge the session its owner is starting: the
    // polecat actor is not restarted for it.
    if (ms < (TIMINGS.spawnGraceMs as number)) expect(await restartsOf()).toBe(restartsBefore);
    await t.advance(300_000);
    const session = await t.session(w.agent);
    expect(session.state).toBe('running');
    expect(request.result).toMatchObject({ epoch: session.epoch });
    expect([...driver.startsPerEpoch(w.session)]).toEqual([
      [w.epoch, 1],
      [session.epoch, 1],
    ]);
    expect(eventsOf(since(t, before), 'polecat.spawned').map((e) => e.epoch)).toEqual([
      session.epoch,
    ]);
    expect(eventsOf(since(t, before), 'polecat.exited')).toEqual([
      expect.objectContaining({ epoch: w.epoch, reason: 'stopped' }),
    ]);
    await t.stop();
  });

  it('a restart request waits while the rig’s Witness is not running, starting nothing; the Witness carries it out once it is back', async () => {
    const driver = recordingDriver();
    const t = await createTestTown({
      timings: { ...TIMINGS, heartbeatMs: 600_000, patrolIntervalMs: 600_000 },
      wrapDriver: driver.wrap,
    });
    const w = await working(t);
    const root = (
      t.town as unknown as { root: { actor: { system: { get(id: string): unknown } } } }
    ).root;
    const deacon = root.actor.system.get('deacon') as AnyActorRef;
    await until(t, terminateChild(deacon, 'witness-api'));
    const starts = driver.starts.length;
    const request = await t.model.lifecycle.request({
      action: 'restart',
      target: w.agent,
      requestedBy: 'mayor',
    });
    // Woken directly: town.wake() would also run a patrol, which restarts the Witness first.
    (root.actor.system.get('lifecycle') as AnyActorRef).send({ type: 'WAKE' });
    await t.advance(30_000);
    const waitedUntil = t.clock.now();
    // Not failed: it waits, first in line, and nothing was started meanwhile.
    expect(await t.model.lifecycle.get(request.id)).toMatchObject({ status: 'requested' });
    expect(eventsOf(t, 'lifecycle.failed')).toEqual([]);
    expect(driver.starts.length).toBe(starts);
    expect(await t.session(w.agent)).toMatchObject({ state: 'running', epoch: w.epoch });
    // The next patrol restarts the Witness, which wakes the worker: the request is carried out.
    const done = await waitFor(t, 'lifecycle.done', {
      where: (e) => e.requestId === request.id,
      withinMs: 700_000,
    });
    const session = await t.session(w.agent);
    expect(session.epoch).toBeGreaterThan(w.epoch);
    expect((await t.model.lifecycle.get(request.id))?.result).toMatchObject({
      epoch: session.epoch,
    });
    expect(done.at).toBeGreaterThan(waitedUntil);
    await t.stop();
  });
});

describe('exits the outside probe found recorded wrongly', () => {
  it('a session the town stops on purpose that the driver then reports missing (tmux kills it) is recorded as stopped, not missing', async () => {
    const driver = recordingDriver(undefined, true);
    const t = await createTestTown({ timings: TIMINGS, wrapDriver: driver.wrap });
    const w = await working(t);
    const before = t.events.length;
    await until(t, t.town.rigs.dock('api', { immediate: true }));
    const exited = eventsOf(since(t, before), 'polecat.exited');
    expect(exited).toEqual([
      expect.objectContaining({ epoch: w.epoch, reason: 'stopped', exitCode: null, signal: null }),
    ]);
    await t.stop();
  });

  it('a session that crashes during a graceful dock is recorded at once, not when the rig is undocked', async () => {
    const t = await createTestTown({ timings: TIMINGS });
    const w = await working(t);
    await until(t, t.town.rigs.dock('api'));
    expect((await t.model.rigs.require('api')).drainUntil).toBeDefined();
    const before = t.events.length;
    t.crash(w.agent, 'SIGTERM');
    const exited = await t.next('polecat.exited', { withinMs: 2 * (TIMINGS.surveyMs as number) });
    expect(exited).toMatchObject({ epoch: w.epoch, reason: 'exited', signal: 'SIGTERM' });
    // The drain is over (nothing runs), and nothing was respawned in the docked rig.
    await waitFor(t, 'rig.drained', { since: before });
    expect(eventsOf(since(t, before), 'polecat.spawned')).toEqual([]);
    await t.stop();
  });
});
