import {
  ConfigError,
  createTown,
  DriverError,
  type MayorMessage,
  StoreError,
  type TownEvent,
  type TownOptions,
} from '@belfry/core';
import type { SessionDriver, SessionSpec, SessionStatus, StopOptions } from '@belfry/core/driver';
import type { Gate, GateDecision, GateEvaluator } from '@belfry/core/gate';
import { createMemoryDriver } from '@belfry/driver-memory';
import {
  createTestTown,
  SimulatedClock,
  type TestTown,
  type TestTownOptions,
} from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { failure } from '../modelHelpers';
import {
  BUSY_AGENT,
  CountingDriver,
  eventsOf,
  recordSupervision,
  reportsTo,
  restartDaemon,
  settleOn,
  TIMINGS,
  until,
} from './chainHelpers';

// Scenarios for the behaviours added in review: `done` bound to a bead (Gas Town #909) and safe
// across a crash, failed starts counted against the respawn limit, parking mid-spawn, session
// name rules, gates closed by hand mid-evaluation, one incident per gate / convoy stall, poller
// time limits, and `nudge`. Everything runs on simulated time.

const START = 1_700_000_000_000;
const OPTIONS = { timings: TIMINGS, agent: BUSY_AGENT } satisfies Partial<TownOptions>;

/** A CountingDriver that also records each `stop` call with the clock time it was asked at. */
class RecordingDriver extends CountingDriver {
  readonly stops: Array<{ name: string; at: number }> = [];

  constructor(private readonly simClock: SimulatedClock) {
    super({ clock: simClock });
  }

  override async stop(name: string, options?: StopOptions): Promise<void> {
    this.stops.push({ name, at: this.simClock.now() });
    return super.stop(name, options);
  }

  stopsOf(name: string): Array<{ name: string; at: number }> {
    return this.stops.filter((s) => s.name === name);
  }
}

/**
 * One daemon process's driver handle whose `stop` never answers (the process dies while it
 * waits): everything else goes to the shared driver.
 */
class StopNeverAnswers implements SessionDriver {
  readonly kind: string;
  readonly stops: string[] = [];

  constructor(private readonly inner: SessionDriver) {
    this.kind = inner.kind;
  }

  start(spec: SessionSpec): Promise<SessionStatus> {
    return this.inner.start(spec);
  }
  status(name: string): Promise<SessionStatus> {
    return this.inner.status(name);
  }
  list(): Promise<SessionStatus[]> {
    return this.inner.list();
  }
  nudge(name: string, text: string): Promise<void> {
    return this.inner.nudge(name, text);
  }
  capture(name: string, options?: { lines?: number }): Promise<string[]> {
    return this.inner.capture(name, options);
  }
  stop(name: string): Promise<void> {
    this.stops.push(name);
    return new Promise<void>(() => {});
  }
}

type Extra = Omit<TestTownOptions, 'clock' | 'driver'>;

/** A started test town on a recording driver, with a Mayor sink and the supervision events. */
async function town(extra: Extra = {}) {
  const clock = new SimulatedClock(START);
  const driver = new RecordingDriver(clock);
  const mayor: MayorMessage[] = [];
  const t = await createTestTown({
    ...OPTIONS,
    mayor: (m) => {
      mayor.push(m);
    },
    ...extra,
    clock,
    driver,
  });
  return Object.assign(t, { driver, mayor, seen: recordSupervision(t) });
}

/** Waits until the bead's session was spawned, and returns that event. */
async function spawnOf(t: TestTown, beadId: string, from = 0) {
  await until(t, () => eventsOf(t, 'polecat.spawned', from).some((e) => e.beadId === beadId), {
    what: `the spawn for ${beadId}`,
  });
  return eventsOf(t, 'polecat.spawned', from).find((e) => e.beadId === beadId) as Extract<
    TownEvent,
    { type: 'polecat.spawned' }
  >;
}

function sessionOf(agent: string): string {
  return agent.replace('/', '-');
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

// ------------------------------------------------------------------ 1. done is bound to a bead

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

// ------------------------------------------------------------------ 2. done survives a crash

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

// ------------------------------------------------------------------ 10. nudge

describe('town.nudge', () => {
  it("delivers to the agent's session, refuses an unknown agent, and fails for a session that is not running", async () => {
    const t = await town({ agent: { launch: () => ({ command: ['agent'] }) } });
    const { agent, beadId } = await t.work('listen to me');
    await spawnOf(t, beadId);
    const session = sessionOf(agent);
    expect(t.driver.nudgesOf(session)).toEqual([expect.stringContaining(beadId)]);

    await t.town.nudge(agent, 'please rebase on main');
    expect(t.driver.nudgesOf(session)).toEqual([
      expect.stringContaining(beadId),
      'please rebase on main',
    ]);
    // The memory driver's agent echoes what it got: it reached the session.
    expect(await t.driver.capture(session)).toContain('> please rebase on main');

    for (const unknown of ['api/ghost', 'web/toast']) {
      const error = await failure(() => t.town.nudge(unknown, 'hello?'));
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'NOT_FOUND' });
    }

    // Its session gone (done): the polecat exists, its session does not run.
    await t.town.done(agent, beadId);
    const error = await failure(() => t.town.nudge(agent, 'still there?'));
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: 'NOT_RUNNING' });
    expect(t.driver.nudgesOf(session)).toHaveLength(2);
    await t.stop();
  });

  it('fails with NOT_RUNNING for a hooked polecat whose session crashed in a parked rig', async () => {
    const t = await town();
    const { agent, beadId } = await t.work('crashes while parked');
    await spawnOf(t, beadId);
    await settleOn(t, t.town.rigs.park('api'));
    t.crash(agent);
    await t.advance(60_000);
    expect(await t.model.hooks.get(agent)).toMatchObject({ beadId });
    const error = await failure(() => t.town.nudge(agent, 'wake up'));
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: 'NOT_RUNNING' });
    await t.stop();
  });
});

// ------------------------------------------------------------------ 3. failed starts

describe('a session that never starts', () => {
  it('is escalated after maxRespawns + 1 failed starts: blocked, one report, no more starts; re-slinging it resolves the report at the next patrol', async () => {
    const t = await town({
      timings: { ...TIMINGS, maxRespawns: 2 },
      agent: { launch: () => ({ command: ['broken'] }) },
    });
    t.driver.program('broken', () => {}, { failStart: 'boom' });
    const { agent, beadId } = await t.work('needs a tool that is not installed');
    const session = sessionOf(agent);

    const escalated = await t.next('polecat.escalated', { withinMs: 10 * 60_000 });
    expect(escalated).toMatchObject({ agent, rig: 'api', beadId, respawns: 3 });
    expect(t.driver.startsOf(session)).toHaveLength(3);
    expect(await t.model.hooks.get(agent)).toBeUndefined();
    expect((await t.model.beads.require(beadId)).status).toBe('blocked');
    expect(await t.model.respawns.count(beadId)).toBe(3);
    const reports = reportsTo(t.mayor, 'respawn-limit:');
    expect(reports).toEqual([
      expect.objectContaining({
        incidentKey: `respawn-limit:${beadId}`,
        severity: 'high',
        status: 'open',
        title: expect.stringContaining('cannot start its session'),
      }),
    ]);

    // However long we wait: no more starts, no second escalation or report.
    const starts = t.driver.starts.length;
    await t.advance(30 * 60_000);
    expect(t.driver.starts.length).toBe(starts);
    expect(eventsOf(t, 'polecat.escalated')).toHaveLength(1);
    expect(eventsOf(t, 'polecat.spawned')).toEqual([]);
    expect(reportsTo(t.mayor, 'respawn-limit:')).toHaveLength(1);
    expect((await t.session(agent)).state).toBe('exited');
    const open = await t.model.reports.byIncident(`respawn-limit:${beadId}`);
    expect(open).toMatchObject({ id: reports[0]?.id, count: 1 });

    // The operator installs the tool and puts the bead back to work.
    t.driver.program('broken', (s) => s.after(10_000, () => s.write('working')));
    await t.model.beads.setStatus(beadId, 'open');
    const from = t.events.length;
    const again = await t.town.sling(beadId, 'api');
    expect(again.agent).toBe(agent);
    // Not yet resolved: the patrol does that.
    expect(await t.model.reports.byIncident(`respawn-limit:${beadId}`)).toBeDefined();
    const spawned = await spawnOf(t, beadId, from);
    expect(spawned).toMatchObject({ agent, respawn: false });
    await t.next('patrol.finished', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(await t.model.reports.byIncident(`respawn-limit:${beadId}`)).toBeUndefined();
    expect(await t.model.reports.get(reports[0]?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(reportsTo(t.mayor, 'respawn-limit:')).toHaveLength(1);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
    await t.stop();
  });
});

// ------------------------------------------------------------------ 4. parking mid-spawn

describe('parking while a hung session is being stopped', () => {
  it('no new session is started after the stop; unpark spawns it again', async () => {
    const stopGraceMs = 90_000;
    const t = await town({
      timings: { ...TIMINGS, stopGraceMs },
      // Ignores the stop (a stop waits the whole grace) and goes quiet after its prime.
      agent: { launch: () => ({ command: ['stubborn'] }) },
    });
    const { agent, beadId } = await t.work('hangs, then ignores the stop');
    const first = await spawnOf(t, beadId);
    const session = sessionOf(agent);

    await until(t, () => t.driver.stopsOf(session).length > 0, {
      withinMs: TIMINGS.staleAfterMs + 5 * TIMINGS.surveyMs,
      what: 'the stop of the hung session',
    });
    const stopAt = t.driver.stopsOf(session)[0]?.at as number;
    const starts = t.driver.starts.length;
    const from = t.events.length;

    await settleOn(t, t.town.rigs.park('api'));
    expect((await t.model.rigs.require('api')).state).toBe('parked');
    // Parked while the stop still waits on the grace: the spawn that would follow is in flight.
    expect(t.clock.now()).toBeLessThan(stopAt + stopGraceMs);
    expect((await t.session(agent)).state).toBe('running');

    await until(t, async () => (await t.session(agent)).state === 'exited', {
      what: 'the hung session to be killed',
    });
    await t.advance(10 * 60_000);

    const dead = await t.session(agent);
    expect(dead).toMatchObject({ state: 'exited', signal: 'SIGKILL', epoch: first.epoch });
    expect(dead.state === 'exited' && dead.exitedAt).toBe(stopAt + stopGraceMs);
    expect(eventsOf(t, 'polecat.stopped', from).map((e) => e.reason)).toContain(
      'hung: no activity',
    );
    expect(eventsOf(t, 'polecat.spawned', from)).toEqual([]);
    expect(t.driver.starts.length).toBe(starts);
    expect(await t.model.hooks.get(agent)).toMatchObject({ beadId });

    await settleOn(t, t.town.rigs.unpark('api'));
    const again = await spawnOf(t, beadId, from);
    expect(again).toMatchObject({ agent, respawn: true });
    expect(again.epoch).toBeGreaterThan(first.epoch);
    expect(t.driver.starts.length).toBe(starts + 1);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: again.epoch });
    await t.stop();
  });
});

// ------------------------------------------------------------------ 5. session names

describe('session names never collide', () => {
  it("polecat names with '-' are refused by the model's sling, and nothing is written", async () => {
    const t = await town();
    const bead = await t.model.beads.create({ title: 'would be api-b-c', rig: 'api' });
    for (const names of [['b-c'], ['ok', 'b-c'], ['Upper'], ['x'.repeat(32)]]) {
      const error = await failure(() => t.model.polecats.sling(bead.id, 'api', { names }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION' });
    }
    expect(await t.model.polecats.list('api')).toEqual([]);
    expect(await t.model.hooks.byBead(bead.id)).toBeUndefined();
    expect((await t.model.beads.require(bead.id)).status).toBe('open');
    await t.stop();
  });

  it.each([
    [['b-c'], 'options.polecatNames[0]'],
    [['ok', 'a-b'], 'options.polecatNames[1]'],
    [['x'.repeat(32)], 'options.polecatNames[0]'],
  ])('createTown refuses polecatNames %j (%s)', (names, path) => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(START) });
    let error: unknown;
    try {
      createTown({ driver, polecatNames: names });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path });
  });

  it('rig names longer than 32 characters are refused by createTown and town.rigs.create', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(START) });
    let error: unknown;
    try {
      createTown({ driver, rigs: ['api', 'r'.repeat(33)] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.rigs[1]' });
    expect(() => createTown({ driver, rigs: ['r'.repeat(32)] })).not.toThrow();

    const t = await town();
    const refused = await failure(() => t.town.rigs.create('r'.repeat(33)));
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused).toMatchObject({ code: 'INVALID_OPTION', path: 'name' });
    expect((await t.town.rigs.list()).map((r) => r.id)).toEqual(['api']);
    await t.stop();
  });

  it('the longest names allowed (a 32-character rig, a 31-character polecat) make a 64-character session that runs', async () => {
    const rig = `r${'a'.repeat(31)}`;
    const name = `p${'b'.repeat(30)}`;
    const t = await town({ rigs: [rig], polecatNames: [name] });
    const { agent, beadId } = await t.work('long names', rig);
    expect(agent).toBe(`${rig}/${name}`);
    const spawned = await spawnOf(t, beadId);
    const session = `${rig}-${name}`;
    expect(session).toHaveLength(64);
    expect(await t.driver.status(session)).toMatchObject({
      state: 'running',
      epoch: spawned.epoch,
      labels: { rig, agent, bead: beadId },
    });
    await t.stop();
  });
});

// ------------------------------------------------------------------ 6. gates closed by hand

/** An evaluator of type `slow` that waits for `release()` before it answers `decision`. */
function slowEvaluator(decision: unknown) {
  const evaluator = {
    type: 'slow',
    calls: 0,
    release: deferred(),
    validate: (spec: unknown) => ({ ...((spec ?? {}) as Record<string, never>) }),
    async evaluate(gates: readonly Gate[]): Promise<ReadonlyMap<string, GateDecision>> {
      evaluator.calls++;
      await evaluator.release.promise;
      return new Map(gates.map((g) => [g.id, decision as GateDecision]));
    },
  };
  return evaluator;
}

describe('a gate closed by hand while its evaluator is evaluating', () => {
  it.each<[string, unknown]>([
    ['close', { kind: 'close', result: { by: 'evaluator' } }],
    ['pending', { kind: 'pending' }],
    ['escalate', { kind: 'escalate', reason: 'the run failed' }],
    ['something that is not a decision', { kind: 'maybe' }],
  ])(
    'an answer of %s does not fail the patrol; the hand result stands',
    async (_what, decision) => {
      const slow = slowEvaluator(decision);
      const t = await town({ gates: [slow], timings: { ...TIMINGS, gateTimeoutMs: 60_000 } });
      const molecule = await t.model.molecules.create({
        name: 'approve-then-ship',
        rig: 'api',
        steps: [{ name: 'ship', gate: { type: 'slow', spec: {} } }],
      });
      const gateId = molecule.waitingOn as string;
      t.town.wake();
      await until(t, () => slow.calls > 0, { stepMs: 100, what: 'the evaluation to begin' });
      const from = t.events.length;
      const seenFrom = t.seen.length;

      const closed = await t.town.gates.resolve(gateId, { approvedBy: 'ada' });
      expect(closed).toMatchObject({ status: 'closed', result: { approvedBy: 'ada' } });
      slow.release.resolve();

      const finished = await t.next('patrol.finished', { since: from, withinMs: 30_000 });
      const gatesStep = eventsOf(t, 'patrol.step', from).find(
        (e) => e.moleculeId === finished.moleculeId && e.step === 'gates',
      );
      expect(gatesStep?.result).toEqual({
        evaluated: 1,
        closed: 0,
        escalated: 0,
        overdue: 0,
        failed: [],
      });
      const patrolExits = t.seen
        .slice(seenFrom)
        .filter(
          (e) =>
            (e.type === 'child.exited' || e.type === 'child.restarting') &&
            e.supervisor === 'town/deacon' &&
            e.childId === 'patrol',
        );
      expect(patrolExits).toEqual([]);
      expect(await t.model.gates.require(gateId)).toMatchObject({
        status: 'closed',
        result: { approvedBy: 'ada' },
        escalations: [],
      });
      // One gate.closed: the hand close's; the evaluator's late answer adds none.
      expect(eventsOf(t, 'gate.closed').map((e) => e.gateId)).toEqual([gateId]);
      expect(eventsOf(t, 'gate.escalated')).toEqual([]);
      expect(eventsOf(t, 'gate.evaluatorFailed')).toEqual([]);
      expect(reportsTo(t.mayor, 'gate')).toEqual([]);

      // The molecule the hand close released goes out once.
      await t.advance(5 * 60_000);
      expect(
        eventsOf(t, 'molecule.dispatched').filter((e) => e.moleculeId === molecule.id),
      ).toHaveLength(1);
      expect(slow.calls).toBe(1);
      await t.stop();
    },
  );
});

// ------------------------------------------------------------------ 7. gate incidents

/** An evaluator of type `flip`: escalates with a new reason on each call, or answers pending. */
function flipEvaluator() {
  const evaluator = {
    type: 'flip',
    mode: 'escalate' as 'escalate' | 'pending',
    calls: 0,
    escalations: 0,
    validate: (spec: unknown) => ({ ...((spec ?? {}) as Record<string, never>) }),
    async evaluate(gates: readonly Gate[]): Promise<ReadonlyMap<string, GateDecision>> {
      evaluator.calls++;
      const out = new Map<string, GateDecision>();
      for (const g of gates) {
        if (evaluator.mode === 'pending') out.set(g.id, { kind: 'pending' });
        else {
          evaluator.escalations++;
          out.set(g.id, { kind: 'escalate', reason: `attempt ${evaluator.calls}: the run failed` });
        }
      }
      return out;
    },
  };
  return evaluator satisfies GateEvaluator;
}

describe('gate incidents', () => {
  it('an evaluator escalating with a new reason each patrol: one report, counted, showing the latest; at most 20 escalations on the gate', async () => {
    const flip = flipEvaluator();
    const t = await town({ gates: [flip], timings: { ...TIMINGS, gateIntervalMs: 30_000 } });
    const gate = await t.town.gates.create({ type: 'flip', spec: {} });
    const key = `gate:${gate.id}:escalated`;

    await t.advance(30 * TIMINGS.heartbeatMs);
    expect(flip.calls).toBeGreaterThanOrEqual(25);
    expect(reportsTo(t.mayor, 'gate')).toEqual([
      expect.objectContaining({ incidentKey: key, count: 1 }),
    ]);
    const open = await t.model.reports.byIncident(key);
    expect(open).toMatchObject({
      count: flip.escalations,
      title: expect.stringContaining(`attempt ${flip.calls}: the run failed`),
    });
    const escalations = (await t.model.gates.require(gate.id)).escalations;
    expect(escalations).toHaveLength(20);
    // The newest twenty are kept.
    expect(escalations.map((e) => e.reason).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `attempt ${flip.calls - 19 + i}: the run failed`).sort(),
    );

    // It answers pending: the incident is over.
    flip.mode = 'pending';
    const calls = flip.calls;
    await until(t, () => flip.calls > calls, { what: 'an evaluation answering pending' });
    await t.advance(0);
    expect(await t.model.reports.byIncident(key)).toBeUndefined();
    expect(await t.model.reports.get(open?.id as string)).toMatchObject({ status: 'resolved' });
    await t.advance(5 * TIMINGS.heartbeatMs);
    expect(reportsTo(t.mayor, 'gate')).toHaveLength(1);

    // A later escalation is a new incident: the Mayor hears again.
    flip.mode = 'escalate';
    const again = flip.calls;
    await until(t, () => flip.calls > again, { what: 'an escalating evaluation' });
    await t.advance(0);
    const second = reportsTo(t.mayor, 'gate');
    expect(second).toHaveLength(2);
    expect(second[1]).toMatchObject({ incidentKey: key, count: 1 });
    expect(second[1]?.id).not.toBe(open?.id);
    expect((await t.model.gates.require(gate.id)).escalations.length).toBeLessThanOrEqual(20);
    await t.stop();
  });

  it('closing a gate by hand resolves its open escalation and timeout reports at once', async () => {
    const flip = flipEvaluator();
    const t = await town({ gates: [flip], timings: { ...TIMINGS, gateIntervalMs: 30_000 } });
    const gate = await t.town.gates.create({ type: 'flip', spec: {}, timeoutMs: 3 * 60_000 });
    await t.advance(5 * TIMINGS.heartbeatMs);
    const escalated = await t.model.reports.byIncident(`gate:${gate.id}:escalated`);
    const timedOut = await t.model.reports.byIncident(`gate-timeout:${gate.id}`);
    expect(escalated).toBeDefined();
    expect(timedOut).toBeDefined();

    await t.town.gates.resolve(gate.id, { approvedBy: 'ada' });
    // Right away, not at the next patrol.
    expect(await t.model.reports.byIncident(`gate:${gate.id}:escalated`)).toBeUndefined();
    expect(await t.model.reports.byIncident(`gate-timeout:${gate.id}`)).toBeUndefined();
    expect(await t.model.reports.get(escalated?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(await t.model.reports.get(timedOut?.id as string)).toMatchObject({
      status: 'resolved',
    });
    const calls = flip.calls;
    await t.advance(10 * TIMINGS.heartbeatMs);
    expect(flip.calls).toBe(calls);
    expect(await t.model.reports.open()).toEqual([]);
    expect(
      reportsTo(t.mayor, 'gate')
        .map((r) => r.incidentKey)
        .sort(),
    ).toEqual([`gate-timeout:${gate.id}`, `gate:${gate.id}:escalated`].sort());
    await t.stop();
  });

  it('an overdue gate is escalated as overdue once, even while its evaluator escalates with ever new reasons', async () => {
    const flip = flipEvaluator();
    const t = await town({ gates: [flip], timings: { ...TIMINGS, gateIntervalMs: 30_000 } });
    const gate = await t.town.gates.create({ type: 'flip', spec: {}, timeoutMs: 2 * 60_000 });
    await t.advance(50 * TIMINGS.heartbeatMs);
    expect(flip.calls).toBeGreaterThan(45);

    const overdue = eventsOf(t, 'gate.escalated').filter(
      (e) => e.gateId === gate.id && e.reason === 'past its timeout with no result',
    );
    expect(reportsTo(t.mayor, `gate-timeout:${gate.id}`)).toHaveLength(1);
    expect(
      overdue.map((e) => e.at - START),
      'the gate was escalated as overdue again each time its overdue entry fell out of the 20 kept escalations',
    ).toHaveLength(1);
    expect(await t.model.reports.byIncident(`gate-timeout:${gate.id}`)).toMatchObject({
      count: 1,
    });
    await t.stop();
  });
});

// ------------------------------------------------------------------ 8. convoy incidents

describe('convoy incidents', () => {
  it('a stall is reported once, resolved at the next patrol after progress, and a new stall is a new report; landing is news, resolved at once', async () => {
    const convoyStallMs = 5 * 60_000;
    const t = await town({ timings: { ...TIMINGS, convoyStallMs } });
    const a = await t.model.beads.create({ title: 'part a', rig: 'api' });
    const b = await t.model.beads.create({ title: 'part b', rig: 'api' });
    const convoy = await t.town.convoys.create({ title: 'release 2.0', beadIds: [a.id, b.id] });
    const key = `convoy-stalled:${convoy.id}`;

    const stalled = await t.next('convoy.stalled', { withinMs: convoyStallMs + 3 * 60_000 });
    expect(stalled.convoyId).toBe(convoy.id);
    expect(stalled.sinceMs).toBeGreaterThanOrEqual(convoyStallMs);
    await t.advance(15 * 60_000);
    expect(eventsOf(t, 'convoy.stalled')).toHaveLength(1);
    const first = reportsTo(t.mayor, 'convoy');
    expect(first).toEqual([expect.objectContaining({ incidentKey: key, severity: 'medium' })]);
    expect((await t.model.reports.byIncident(key))?.count).toBe(1);

    // Progress: one bead changes status. Open until the next patrol, resolved by it.
    await t.model.beads.setStatus(a.id, 'in_progress');
    expect(await t.model.reports.byIncident(key)).toBeDefined();
    const from = t.events.length;
    await t.next('patrol.finished', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(await t.model.reports.byIncident(key)).toBeUndefined();
    expect(await t.model.reports.get(first[0]?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(eventsOf(t, 'convoy.stalled', from)).toEqual([]);

    // No progress again for a stall period: a new incident.
    const again = await t.next('convoy.stalled', { withinMs: convoyStallMs + 3 * 60_000 });
    expect(again.convoyId).toBe(convoy.id);
    const second = reportsTo(t.mayor, 'convoy-stalled');
    expect(second).toHaveLength(2);
    expect(second[1]?.id).not.toBe(second[0]?.id);

    // It lands: one info report, resolved at once, and the stall is over too.
    await t.model.beads.setStatus(a.id, 'done');
    await t.model.beads.setStatus(b.id, 'done');
    await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
    await t.next('patrol.finished');
    const landed = reportsTo(t.mayor, 'convoy-landed');
    expect(landed).toEqual([
      expect.objectContaining({ incidentKey: `convoy-landed:${convoy.id}`, severity: 'info' }),
    ]);
    expect(await t.model.reports.byIncident(`convoy-landed:${convoy.id}`)).toBeUndefined();
    expect(await t.model.reports.get(landed[0]?.id as string)).toMatchObject({
      status: 'resolved',
    });
    expect(await t.model.reports.byIncident(key)).toBeUndefined();
    await t.advance(20 * 60_000);
    expect(reportsTo(t.mayor, 'convoy')).toHaveLength(3);
    expect(await t.model.reports.open()).toEqual([]);
    await t.stop();
  });
});

// ------------------------------------------------------------------ 9. pollers

/** A poller whose runs never finish by themselves; each rejects once its signal is aborted. */
function stuckPoller(options: { intervalMs: number; timeoutMs?: number }) {
  const runs: Array<{ at: number; signal: AbortSignal; abortedAt?: number }> = [];
  return {
    runs,
    poller: {
      name: 'inbox',
      ...options,
      run: ({ now, signal }: { now: number; signal: AbortSignal }) =>
        new Promise<void>((_, reject) => {
          const run: { at: number; signal: AbortSignal; abortedAt?: number } = { at: now, signal };
          runs.push(run);
          signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
    },
  };
}

describe('pollers', () => {
  it('a run that never finishes is aborted after its interval (the default time limit), reported once, and the poller keeps running', async () => {
    const { runs, poller } = stuckPoller({ intervalMs: 60_000 });
    const t = await town({ pollers: [poller] });

    await t.advance(60_000);
    expect(runs.map((r) => r.at - START)).toEqual([60_000]);
    await t.advance(59_999);
    expect(runs[0]?.signal.aborted).toBe(false);
    expect(eventsOf(t, 'poller.failed')).toEqual([]);
    await t.advance(1);
    expect(runs[0]?.signal.aborted).toBe(true);
    const failed = eventsOf(t, 'poller.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ poller: 'inbox', at: START + 120_000 });
    expect(failed[0]?.error.message).toContain('did not finish within 60000 ms');
    expect(reportsTo(t.mayor, 'poller:')).toEqual([
      expect.objectContaining({ incidentKey: 'poller:inbox', severity: 'low' }),
    ]);

    await t.advance(10 * 60_000);
    // One run per interval after the last one ended: each is aborted in turn.
    expect(runs.map((r) => r.at - START)).toEqual([
      60_000, 180_000, 300_000, 420_000, 540_000, 660_000,
    ]);
    // The sixth run reached its limit just now (at 720 s).
    expect(runs.every((r) => r.signal.aborted)).toBe(true);
    expect(eventsOf(t, 'poller.failed').map((e) => e.at - START)).toEqual([
      120_000, 240_000, 360_000, 480_000, 600_000, 720_000,
    ]);
    expect(reportsTo(t.mayor, 'poller:')).toHaveLength(1);
    expect(await t.model.reports.byIncident('poller:inbox')).toMatchObject({ count: 6 });
    await t.stop();
  });

  it('an explicit timeoutMs shorter than the interval applies', async () => {
    const { runs, poller } = stuckPoller({ intervalMs: 60_000, timeoutMs: 5_000 });
    const t = await town({ pollers: [poller] });
    await t.advance(64_999);
    expect(runs[0]?.signal.aborted).toBe(false);
    await t.advance(1);
    expect(runs[0]?.signal.aborted).toBe(true);
    expect(eventsOf(t, 'poller.failed').map((e) => e.at - START)).toEqual([65_000]);
    await t.advance(60_000);
    expect(runs.map((r) => r.at - START)).toEqual([60_000, 125_000]);
    await t.stop();
  });

  it('stopping the town aborts the signal of a run in flight and files no report', async () => {
    const { runs, poller } = stuckPoller({ intervalMs: 60_000 });
    const t = await town({ pollers: [poller] });
    await t.advance(90_000);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.signal.aborted).toBe(false);

    await t.town.stop();
    expect(runs[0]?.signal.aborted).toBe(true);
    // Past the time limit of the run that was cut off: still nothing.
    await t.advance(5 * 60_000);
    expect(runs).toHaveLength(1);
    expect(eventsOf(t, 'poller.failed')).toEqual([]);
    expect(reportsTo(t.mayor, 'poller:')).toEqual([]);
    expect(await t.model.reports.byIncident('poller:inbox')).toBeUndefined();
  });
});

// ------------------------------------------------------------------ edge cases of the same

describe('edge cases: hand-closed gates, long reasons and messages', () => {
  /** The Deacon's patrol child exits and restarts since `from`, with the error of each exit. */
  function patrolFailures(t: Awaited<ReturnType<typeof town>>, from: number): string[] {
    return t.seen
      .slice(from)
      .flatMap((e) =>
        (e.type === 'child.exited' || e.type === 'child.restarting') &&
        e.supervisor === 'town/deacon' &&
        e.childId === 'patrol'
          ? [
              e.type === 'child.exited'
                ? `exited: ${e.error instanceof Error ? e.error.message : e.reason}`
                : 'restarting',
            ]
          : [],
      );
  }

  it.each([
    ['throws', 'throw'],
    ['hangs past gateTimeoutMs', 'hang'],
  ] as const)(
    'a gate closed by hand while its evaluator runs, which then %s, does not fail the patrol',
    async (_what, how) => {
      const release = deferred();
      let calls = 0;
      const evaluator: GateEvaluator = {
        type: 'slow',
        validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
        async evaluate() {
          calls++;
          if (how === 'hang') return new Promise<never>(() => {});
          await release.promise;
          throw new Error('the CI API is down');
        },
      };
      const t = await town({ gates: [evaluator], timings: { ...TIMINGS, gateTimeoutMs: 20_000 } });
      const gate = await t.town.gates.create({ type: 'slow', spec: {} });
      t.town.wake();
      await until(t, () => calls > 0, { stepMs: 100, what: 'the evaluation to begin' });
      const from = t.events.length;
      const seenFrom = t.seen.length;
      await t.town.gates.resolve(gate.id, { approvedBy: 'ada' });
      release.resolve();

      await t.next('patrol.finished', { since: from, withinMs: 60_000 });
      const failures = patrolFailures(t, seenFrom);
      expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
      expect(await t.model.gates.require(gate.id)).toMatchObject({
        status: 'closed',
        result: { approvedBy: 'ada' },
      });
      await t.stop();
    },
  );

  it('a gate closed by hand mid-evaluation does not keep the rest of its batch from closing', async () => {
    const release = deferred();
    let calls = 0;
    const evaluator: GateEvaluator = {
      type: 'slow',
      validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
      async evaluate(gates) {
        calls++;
        await release.promise;
        return new Map(gates.map((g) => [g.id, { kind: 'close', result: { by: 'ci' } }]));
      },
    };
    const t = await town({ gates: [evaluator], timings: { ...TIMINGS, gateTimeoutMs: 60_000 } });
    const byHand = await t.town.gates.create({ type: 'slow', spec: { n: 1 } });
    await t.advance(1);
    const byCi = await t.town.gates.create({ type: 'slow', spec: { n: 2 } });
    t.town.wake();
    await until(t, () => calls > 0, { stepMs: 100, what: 'the evaluation to begin' });
    await t.town.gates.resolve(byHand.id, { approvedBy: 'ada' });
    release.resolve();
    const closed = await t.next('gate.closed', { where: (e) => e.gateId === byCi.id });
    expect(closed.gateType).toBe('slow');
    expect(await t.model.gates.require(byCi.id)).toMatchObject({ result: { by: 'ci' } });
    expect(await t.model.gates.require(byHand.id)).toMatchObject({ result: { approvedBy: 'ada' } });
    // Each closed once: by hand first, then by its evaluator.
    expect(eventsOf(t, 'gate.closed').map((e) => e.gateId)).toEqual([byHand.id, byCi.id]);
    await t.stop();
  });

  it('an evaluator escalating with a long reason (a log excerpt) is reported once and does not fail the patrol', async () => {
    const reason = `the run failed: ${'x'.repeat(600)}`;
    const evaluator: GateEvaluator = {
      type: 'ci',
      validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
      async evaluate(gates) {
        return new Map(gates.map((g) => [g.id, { kind: 'escalate', reason }]));
      },
    };
    const t = await town({ gates: [evaluator] });
    const seenFrom = t.seen.length;
    const gate = await t.town.gates.create({ type: 'ci', spec: {} });
    await t.advance(5 * TIMINGS.heartbeatMs);
    const failures = patrolFailures(t, seenFrom);
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(reportsTo(t.mayor, `gate:${gate.id}:escalated`)).toHaveLength(1);
    expect((await t.model.gates.require(gate.id)).status).toBe('open');
    await t.stop();
  });

  it('a poller failing with a long error message (an HTTP error body) is still reported once', async () => {
    const t = await town({
      pollers: [
        {
          name: 'discord',
          intervalMs: 60_000,
          run: () => {
            throw new Error(`HTTP 502: ${'<html>'.repeat(100)}`);
          },
        },
      ],
    });
    await t.advance(5 * 60_000);
    expect(eventsOf(t, 'poller.failed')).toHaveLength(5);
    expect(
      reportsTo(t.mayor, 'poller:discord'),
      'the report (its title carries the whole message) was refused, and nobody was told',
    ).toHaveLength(1);
    await t.stop();
  });

  it('an evaluator that throws an error with a long message affects only its own gates: reported once, the patrol carries on', async () => {
    const evaluator: GateEvaluator = {
      type: 'ci',
      validate: (spec) => ({ ...((spec ?? {}) as Record<string, never>) }),
      evaluate() {
        throw new Error(`HTTP 503: ${'<p>unavailable</p>'.repeat(40)}`);
      },
    };
    const t = await town({ gates: [evaluator] });
    const seenFrom = t.seen.length;
    await t.town.gates.create({ type: 'ci', spec: {} });
    await t.advance(5 * TIMINGS.heartbeatMs);
    const failures = patrolFailures(t, seenFrom);
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(eventsOf(t, 'gate.evaluatorFailed').length).toBeGreaterThanOrEqual(5);
    expect(reportsTo(t.mayor, 'gate-evaluator:ci:')).toHaveLength(1);
    await t.stop();
  });

  it('a convoy with a title of the longest length the model accepts is reported once when it stalls, and the patrol carries on', async () => {
    const t = await town({ timings: { ...TIMINGS, convoyStallMs: 5 * 60_000 } });
    const bead = await t.model.beads.create({ title: 'waits', rig: 'api' });
    const convoy = await t.town.convoys.create({ title: 'q'.repeat(500), beadIds: [bead.id] });
    const seenFrom = t.seen.length;
    await t.advance(15 * 60_000);
    const failures = patrolFailures(t, seenFrom);
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(reportsTo(t.mayor, `convoy-stalled:${convoy.id}`)).toHaveLength(1);
    await t.stop();
  });

  it('a per-rig poller that times out is reported per rig, and a run that succeeds again resolves it', async () => {
    let hang = true;
    const signals: Array<{ rig: string | undefined; signal: AbortSignal }> = [];
    const t = await town({
      rigs: ['api', 'web'],
      pollers: [
        {
          name: 'inbox',
          intervalMs: 60_000,
          timeoutMs: 10_000,
          perRig: true,
          run: ({ rig, signal }) => {
            signals.push({ rig, signal });
            return rig === 'web' && hang ? new Promise<void>(() => {}) : undefined;
          },
        },
      ],
    });
    await t.advance(70_000);
    expect(signals.map((s) => [s.rig, s.signal.aborted])).toEqual([
      ['api', false],
      ['web', true],
    ]);
    expect(eventsOf(t, 'poller.failed')).toEqual([
      expect.objectContaining({ poller: 'inbox', rig: 'web', at: START + 70_000 }),
    ]);
    expect(reportsTo(t.mayor, 'poller:')).toEqual([
      expect.objectContaining({ incidentKey: 'poller:inbox:web' }),
    ]);
    hang = false;
    await t.advance(60_000);
    expect(await t.model.reports.byIncident('poller:inbox:web')).toBeUndefined();
    expect(eventsOf(t, 'poller.failed')).toHaveLength(1);
    await t.stop();
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

  it.each([
    ['too long for a session name', 'r'.repeat(60)],
    ["with a '.' (not allowed in session names)", 'web.v2'],
  ])(
    'work for a rig the model created with a name %s is refused or escalated, never retried silently',
    async (_what, rig) => {
      const t = await town();
      // The model takes wider names than the town (`town.rigs.create` would refuse these).
      await t.model.rigs.create({ name: rig });
      const bead = await t.model.beads.create({ title: 'unreachable work', rig });
      const outcome = await t.town.sling(bead.id, rig).then(
        () => 'accepted' as const,
        (error: unknown) => error,
      );
      const polecatEvents = () =>
        t.seen.filter((e) => 'childId' in e && e.childId === 'polecat-toast');
      if (outcome === 'accepted') {
        await t.advance(30 * 60_000);
        expect(
          {
            reports: reportsTo(t.mayor).map((r) => r.incidentKey),
            bead: (await t.model.beads.require(bead.id)).status,
          },
          `the bead stays hooked and its polecat fails over and over (${polecatEvents().length} supervisor events), with nobody told`,
        ).toEqual({ reports: [`respawn-limit:${bead.id}`], bead: 'blocked' });
      } else {
        expect(outcome).toBeInstanceOf(ConfigError);
        expect(await t.model.hooks.byBead(bead.id)).toBeUndefined();
      }
      await t.stop();
    },
  );

  it("a Boot escalation with a long reason (an LLM triage's explanation) is reported, and the patrol carries on", async () => {
    const reason = `sessions are still running in a docked rig: ${'because '.repeat(80)}`;
    const t = await town({ triage: () => ({ action: 'escalate', reason }) });
    await settleOn(t, t.town.rigs.dock('api'));
    // A session of the rig started behind the town's back.
    await t.driver.start({
      name: 'api-rogue',
      epoch: 1,
      command: ['agent'],
      labels: { rig: 'api' },
    });
    const seenFrom = t.seen.length;
    const from = t.events.length;
    await t.advance(3 * TIMINGS.heartbeatMs);

    expect(eventsOf(t, 'boot.assessed', from).length).toBeGreaterThan(0);
    const failures = t.seen
      .slice(seenFrom)
      .filter(
        (e) =>
          e.type === 'child.exited' && e.supervisor === 'town/deacon' && e.childId === 'patrol',
      )
      .map((e) => (e.type === 'child.exited' && e.error instanceof Error ? e.error.message : ''));
    expect(failures, `the patrol failed: ${failures[0]}`).toEqual([]);
    expect(reportsTo(t.mayor, 'boot:docked-rig-with-sessions:api')).toHaveLength(1);
    await t.stop();
  });
});
