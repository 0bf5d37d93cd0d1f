import {
  ConfigError,
  DriverError,
  type MayorMessage,
  MemoryStore,
  PATROL_STEPS,
  type Store,
  type StoreTx,
  type TownTimings,
} from '@belfry/core';
import type { SessionDriver } from '@belfry/core/driver';
import { createTestTown, type TestTown } from '@belfry/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { eventsOf, TIMINGS, timerEvaluator, until, waitFor } from './helpers';

/** Small limits: a call gets 5 s, a patrol 5 min (heartbeat 1 min). */
const BOUNDED: Partial<TownTimings> = {
  ...TIMINGS,
  callTimeoutMs: 5_000,
  patrolBudgetMs: 300_000,
};

const never = <T>() => new Promise<T>(() => {});

/** A driver in front of the memory driver whose named calls can be made to never settle. */
function hangable() {
  const hung = new Set<'list' | 'stop' | 'status'>();
  const calls = { list: 0, stop: 0, status: 0 };
  const wrapDriver = (inner: SessionDriver): SessionDriver => ({
    kind: inner.kind,
    start: (spec) => inner.start(spec),
    nudge: (name, text) => inner.nudge(name, text),
    capture: (name, options) => inner.capture(name, options),
    list: () => {
      calls.list++;
      return hung.has('list') ? never() : inner.list();
    },
    stop: (name, options) => {
      calls.stop++;
      return hung.has('stop') ? never() : inner.stop(name, options);
    },
    status: (name) => {
      calls.status++;
      return hung.has('status') ? never() : inner.status(name);
    },
  });
  return { hung, calls, wrapDriver };
}

/**
 * A store whose transactions hang while `hang` is set (the first one to arrive holds the store,
 * as a remote store that stopped answering mid-transaction would), until `release()`.
 */
function hangingStore(inner: Store) {
  let armed = false;
  let release: (() => void) | undefined;
  let hangingIndex: string | undefined;
  const store: Store & {
    hangNextFind(collection: string, index?: string): void;
    release(): void;
    hung: boolean;
  } = {
    hung: false,
    get schema() {
      return inner.schema;
    },
    hangNextFind(collection: string, index?: string) {
      armed = true;
      hanging = collection;
      hangingIndex = index;
    },
    release() {
      store.hung = false;
      release?.();
    },
    transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
      return inner.transaction((tx) =>
        fn({
          get: (c, id) => tx.get(c, id),
          insert: (c, r) => tx.insert(c, r),
          update: (c, r) => tx.update(c, r),
          delete: (c, id) => tx.delete(c, id),
          count: (c, i, q) => tx.count(c, i, q),
          nextSequence: (n) => tx.nextSequence(n),
          find: async (c, i, q) => {
            if (armed && c === hanging && (hangingIndex === undefined || i === hangingIndex)) {
              armed = false;
              store.hung = true;
              await new Promise<void>((resolve) => {
                release = resolve;
              });
            }
            return tx.find(c, i, q);
          },
        }),
      );
    },
    schemaVersion: () => inner.schemaVersion(),
    close: () => inner.close(),
  };
  let hanging = '';
  return store;
}

function deaconRestarts(t: TestTown): number[] {
  return restartsOf.get(t) ?? [];
}
const restartsOf = new WeakMap<TestTown, number[]>();
function watchDeacon(t: TestTown): void {
  const at: number[] = [];
  restartsOf.set(t, at);
  t.town.supervision.on('child.restarting', (e) => {
    if (e.supervisor === 'town' && e.childId === 'deacon') at.push(e.at);
  });
}

let errors: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  // The town logs every failure it survives; these tests make many on purpose.
  errors = vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  errors.mockRestore();
});

describe('the limits', () => {
  it('callTimeoutMs and patrolBudgetMs are whole milliseconds >= 1, refused otherwise with the option named', async () => {
    for (const [key, value] of [
      ['callTimeoutMs', 0],
      ['patrolBudgetMs', 1.5],
      ['patrolBudgetMs', '600000'],
    ] as const) {
      const made = createTestTown({ start: false, timings: { [key]: value } });
      await expect(made).rejects.toBeInstanceOf(ConfigError);
      await expect(made).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        path: `options.timings.${key}`,
      });
    }
  });
});

describe('the Mayor sink is bounded', () => {
  it('a sink that never answers: patrols keep finishing, gates keep closing, its failure is filed once and never sent to it', async () => {
    const received: MayorMessage[] = [];
    const t = await createTestTown({
      timings: BOUNDED,
      gates: [timerEvaluator()],
      mayor: (message) => {
        received.push(message);
        return never();
      },
    });
    watchDeacon(t);
    const gate = await t.town.gates.create({ type: 'timer', spec: { durationMs: 200_000 } });
    await t.advance(900_000);

    const finished = eventsOf(t, 'patrol.finished');
    // A patrol every heartbeat (1 min); the sink costs at most one wait of 5 s, ever.
    expect(finished.length).toBeGreaterThanOrEqual(14);
    expect((await t.model.gates.require(gate.id)).status).toBe('closed');
    expect(eventsOf(t, 'gate.closed', (e) => e.gateId === gate.id)).toHaveLength(1);
    // Every message still went to the sink, in order; nobody waited for it after the first.
    const summaries = received.filter((m) => m.kind === 'summary');
    expect(summaries.length).toBe(finished.length);
    expect(eventsOf(t, 'mayor.failed').length).toBeGreaterThanOrEqual(1);
    const incident = await t.model.reports.byIncident('mayor-sink');
    expect(incident?.title).toMatch(/the mayor sink did not answer within 5000 ms/);
    expect(
      eventsOf(t, 'report', (e) => e.report.incidentKey === 'mayor-sink' && e.created),
    ).toHaveLength(1);
    expect(received.some((m) => m.kind === 'report' && m.report.incidentKey === 'mayor-sink')).toBe(
      false,
    );
    // Nothing was stuck: the Deacon was never restarted.
    expect(deaconRestarts(t)).toEqual([]);
    expect(eventsOf(t, 'patrol.overdue')).toEqual([]);
    await t.stop();
  });

  it('a sink that throws is logged and filed once, and the incident is resolved when it answers again', async () => {
    let broken = true;
    const received: MayorMessage[] = [];
    const t = await createTestTown({
      timings: BOUNDED,
      mayor: (message) => {
        if (broken) throw new Error('the chat webhook is down');
        received.push(message);
      },
    });
    await t.advance(300_000);
    const failed = eventsOf(t, 'mayor.failed');
    expect(failed.length).toBeGreaterThanOrEqual(4);
    expect(failed[0]?.error.message).toBe('the chat webhook is down');
    expect(eventsOf(t, 'patrol.finished').length).toBeGreaterThanOrEqual(5);
    const open = await t.model.reports.byIncident('mayor-sink');
    expect(open?.title).toBe('the mayor sink failed on a summary: the chat webhook is down');
    expect(eventsOf(t, 'report', (e) => e.report.incidentKey === 'mayor-sink')).toHaveLength(
      failed.length,
    );
    expect(
      eventsOf(t, 'report', (e) => e.report.incidentKey === 'mayor-sink' && e.created),
    ).toHaveLength(1);

    broken = false;
    await t.next('patrol.finished');
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(await t.model.reports.byIncident('mayor-sink')).toBeUndefined();
    expect(received.some((m) => m.kind === 'report' && m.report.incidentKey === 'mayor-sink')).toBe(
      false,
    );
    await t.stop();
  });
});

/**
 * A driver call's limit long enough that a patrol failing on it again and again stays under the
 * Deacon's restart intensity (10 within a minute), so the Daemon's budget is what finds it.
 */
const SLOW_CALLS: Partial<TownTimings> = { ...BOUNDED, callTimeoutMs: 10_000 };

describe('driver calls are bounded', () => {
  it('list() never settles: town.status() answers with the sessions unknown, the hung survey gets the witness restarted, the patrol is retried', async () => {
    const d = hangable();
    const t = await createTestTown({ timings: SLOW_CALLS, wrapDriver: d.wrapDriver });
    const { agent } = await t.work('fix the login bug');
    await t.next('polecat.spawned');
    d.hung.add('list');
    const from = t.events.length;

    const status = await until(t, t.town.status(), { withinMs: 20_000 });
    expect(status.sessionsUnread).toMatch(
      /the sessions could not be read: the memory driver's list\(\) did not settle within 10000 ms/,
    );
    const polecat = status.rigs[0]?.polecats.find((p) => p.agent === agent);
    expect(polecat?.session).toMatchObject({ state: 'unknown', name: agent.replace('/', '-') });
    expect(polecat?.beadId).toBeDefined();

    // The Witness's surveys fail on the bounded list(); its pings show no finished survey, and
    // the Deacon restarts it.
    const restarted = await t.next('witness.restarted', { withinMs: 600_000, since: from });
    expect(restarted.rig).toBe('api');
    // Nothing waits on the hung call: the patrol, which needs the sessions too, fails its step
    // within the limit and is tried again (past its budget, the Deacon is restarted: below).
    expect(eventsOf({ events: t.events.slice(from) }, 'patrol.started').length).toBeGreaterThan(3);
    // The session itself was never touched.
    expect((await t.session(agent)).state).toBe('running');

    d.hung.delete('list');
    const healthy = await until(t, t.town.status());
    expect(healthy.sessionsUnread).toBeUndefined();
    expect(healthy.rigs[0]?.polecats[0]?.session.state).toBe('running');
    await t.stop();
  });

  it('stop() never settles: a dock fails naming the call and its limit, patrols go on, the sessions are left to the next patrol', async () => {
    const d = hangable();
    const t = await createTestTown({ timings: BOUNDED, wrapDriver: d.wrapDriver });
    const { agent } = await t.work('fix the login bug');
    await t.next('polecat.spawned');
    d.hung.add('stop');
    const from = t.events.length;

    const docking = until(t, t.town.rigs.dock('api', { immediate: true }), { withinMs: 120_000 });
    // The limit of a stop is the call's 5 s plus the 10 s grace it was given.
    await expect(docking).rejects.toThrow(
      `dock api failed: the memory driver's stop(${JSON.stringify(agent.replace('/', '-'))}) did not settle within 15000 ms`,
    );
    await t.advance(300_000);
    const later = eventsOf({ events: t.events.slice(from) }, 'patrol.finished');
    expect(later.length).toBeGreaterThanOrEqual(4);
    // Boot's stop-sessions on the docked rig failed the same way: reported, not stuck.
    const boot = await t.model.reports.byIncident('boot:docked-rig-with-sessions:api');
    expect(boot?.title).toMatch(/did not settle within 15000 ms/);
    expect(eventsOf(t, 'patrol.overdue')).toEqual([]);

    d.hung.delete('stop');
    await t.advance(180_000);
    expect((await t.session(agent)).state).not.toBe('running');
    await t.stop();
  });

  it('status() never settles: the polecat fails with a TIMEOUT DriverError and is retried, patrols go on', async () => {
    const d = hangable();
    const t = await createTestTown({ timings: BOUNDED, wrapDriver: d.wrapDriver });
    const failures: unknown[] = [];
    t.town.supervision.on('child.exited', (e) => {
      if (e.childId.startsWith('polecat-') && e.reason === 'error') failures.push(e.error);
    });
    d.hung.add('status');
    const { agent } = await t.work('fix the login bug');
    await t.advance(120_000);
    expect(failures.length).toBeGreaterThanOrEqual(2);
    const first = failures[0] as DriverError;
    expect(first).toBeInstanceOf(DriverError);
    expect(first.code).toBe('TIMEOUT');
    expect(first.message).toBe(
      `the memory driver's status(${JSON.stringify(agent.replace('/', '-'))}) did not settle within 5000 ms`,
    );
    expect(eventsOf(t, 'patrol.finished').length).toBeGreaterThanOrEqual(2);

    d.hung.delete('status');
    const spawned = await t.next('polecat.spawned', { withinMs: 120_000 });
    expect(spawned.agent).toBe(agent);
    await t.stop();
  });
});

describe('agent hooks are bounded', () => {
  it('a launch hook that never answers counts as a failed start; past maxRespawns the bead is escalated', async () => {
    const signals: AbortSignal[] = [];
    const t = await createTestTown({
      timings: { ...BOUNDED, maxRespawns: 1 },
      agent: {
        launch: (_context, { signal }) => {
          signals.push(signal);
          return never();
        },
      },
    });
    const { agent, beadId } = await t.work('fix the login bug');
    const escalated = await t.next('polecat.escalated', { withinMs: 120_000 });
    expect(escalated).toMatchObject({ agent, beadId, respawns: 2 });
    expect(signals).toHaveLength(2);
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect((await t.model.beads.require(beadId)).status).toBe('blocked');
    const report = await t.model.reports.byIncident(`respawn-limit:${beadId}`);
    expect(report?.title).toMatch(
      /cannot start its session: 1 tries failed \(last: the agent's launch hook did not answer within 5000 ms\)/,
    );
    expect((await t.session(agent)).state).toBe('missing');
    await t.stop();
  });

  it('a prime hook that never answers counts as a failed start; the unprimed session is stopped when the bead is escalated', async () => {
    const t = await createTestTown({
      timings: { ...BOUNDED, maxRespawns: 1 },
      agent: { prime: () => never() },
    });
    const { agent, beadId } = await t.work('fix the login bug');
    const escalated = await t.next('polecat.escalated', { withinMs: 120_000 });
    expect(escalated).toMatchObject({ agent, beadId });
    expect(eventsOf(t, 'polecat.spawned')).toEqual([]);
    const report = await t.model.reports.byIncident(`respawn-limit:${beadId}`);
    expect(report?.title).toMatch(/cannot prime its session: 1 tries failed/);
    expect(report?.title).toMatch(/the agent's prime hook did not answer within 5000 ms/);
    // The session that was started but never primed does not stay behind.
    await t.advance(60_000);
    expect((await t.session(agent)).state).not.toBe('running');
    await t.stop();
  });
});

describe('the Daemon watches the patrol', () => {
  it('a patrol cut off while Boot waits on a triage that never answers does nothing more: no assessment, no action, no report of it', async () => {
    const t = await createTestTown({
      timings: { ...BOUNDED, bootTimeoutMs: 3_600_000 },
      triage: () => never(),
    });
    watchDeacon(t);
    const { agent } = await t.work('fix the login bug');
    await t.next('polecat.spawned');
    await t.town.warrants.file({ target: agent, reason: 'stuck for hours' });
    const overdue = await t.next('patrol.overdue', { withinMs: 900_000 });
    expect(overdue.step).toBe('warrants');
    await t.advance(120_000);
    // The stopped Boot's end is not taken for an answer of the triage.
    expect(eventsOf(t, 'boot.assessed')).toEqual([]);
    expect(
      eventsOf(t, 'report').filter((e) => e.report.incidentKey.startsWith('warrant-held:')),
    ).toEqual([]);
    expect((await t.session(agent)).state).toBe('running');
    await t.stop();
  });

  it('a patrol stuck on a hung store call: the Deacon is restarted within the budget plus a heartbeat, the patrol resumes at its step, one report, resolved when a patrol finishes', async () => {
    const store = hangingStore(new MemoryStore());
    const received: MayorMessage[] = [];
    const t = await createTestTown({
      store,
      timings: BOUNDED,
      mayor: (m) => {
        received.push(m);
      },
    });
    watchDeacon(t);
    await t.next('patrol.finished', { since: 0 });
    // The next patrol hangs in its convoys step, on the store.
    // (The convoys a patrol closes: its `finished` index, not a step's lookup of the convoys
    // tracking the patrol molecule.)
    store.hangNextFind('convoys', 'finished');
    const stuck = await t.next('patrol.step', { where: (e) => e.step === 'dispatch' });
    expect(store.hung).toBe(true);
    const stuckAt = stuck.at;

    const overdue = await t.next('patrol.overdue', { withinMs: 600_000 });
    expect(overdue).toMatchObject({ moleculeId: stuck.moleculeId, step: 'convoys' });
    expect(overdue.runningMs).toBeGreaterThan(300_000);
    // Found on the Daemon's first look past the budget.
    expect(overdue.at - stuckAt).toBeLessThanOrEqual(300_000 + 60_000);
    expect(deaconRestarts(t)).toEqual([overdue.at]);

    // The store answers again: the stopped patrol does nothing more, the new Deacon resumes it.
    store.release();
    const resumed = await t.next('patrol.started', {
      where: (e) => e.moleculeId === stuck.moleculeId,
      since: t.events.indexOf(overdue),
      withinMs: 120_000,
    });
    expect(resumed.resumedAt).toBe(PATROL_STEPS.indexOf('convoys'));
    await waitFor(t, 'patrol.finished', {
      where: (e) => e.moleculeId === stuck.moleculeId,
      withinMs: 120_000,
    });
    const reports = received.filter(
      (m): m is Extract<MayorMessage, { kind: 'report' }> =>
        m.kind === 'report' && m.report.incidentKey === 'patrol-overdue',
    );
    expect(reports).toHaveLength(1);
    expect(reports[0]?.report.title).toMatch(
      new RegExp(
        `patrol ${stuck.moleculeId} was stuck on step convoys for \\d+ s \\(budget 300 s\\)`,
      ),
    );
    expect(await t.model.reports.byIncident('patrol-overdue')).toBeUndefined();
    // Each step was completed once, by one patrol.
    const steps = eventsOf(t, 'patrol.step', (e) => e.moleculeId === stuck.moleculeId);
    expect(steps.map((e) => e.step)).toEqual([...PATROL_STEPS]);
    const status = await t.town.status();
    expect(status.deacon.restarts).toBe(1);
    expect(status.deacon.patrol).toBeUndefined();
    await t.stop();
  });

  it('a patrol that keeps failing on a hung driver call is overdue once per budget: the Deacon is restarted each time, one report while it lasts', async () => {
    const d = hangable();
    const received: MayorMessage[] = [];
    const t = await createTestTown({
      timings: SLOW_CALLS,
      wrapDriver: d.wrapDriver,
      mayor: (m) => {
        received.push(m);
      },
    });
    watchDeacon(t);
    await t.work('fix the login bug');
    await t.next('polecat.spawned');
    // A docked rig whose sessions cannot be listed: every patrol fails in its witnesses step.
    d.hung.add('list');
    await expect(
      until(t, t.town.rigs.dock('api', { immediate: true }), { withinMs: 60_000 }),
    ).rejects.toThrow(/list\(\) did not settle within 10000 ms/);
    const from = t.events.length;
    await t.advance(1_000_000);
    const overdue = eventsOf({ events: t.events.slice(from) }, 'patrol.overdue');
    expect(overdue.length).toBeGreaterThanOrEqual(2);
    for (const o of overdue) expect(o.step).toBe('witnesses');
    expect(deaconRestarts(t).length).toBe(overdue.length);
    const status = await until(t, t.town.status());
    expect(status.deacon.restarts).toBe(overdue.length);
    expect(status.deacon.patrol).toMatchObject({ step: 'witnesses' });
    const reports = () =>
      received.filter((m) => m.kind === 'report' && m.report.incidentKey === 'patrol-overdue');
    expect(reports()).toHaveLength(1);

    d.hung.delete('list');
    const finished = await t.next('patrol.finished', { withinMs: 900_000 });
    expect(finished.summary.steps).toHaveProperty('witnesses');
    expect(await t.model.reports.byIncident('patrol-overdue')).toBeUndefined();
    expect(reports()).toHaveLength(1);
    await t.stop();
  });
});
