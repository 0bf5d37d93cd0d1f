import {
  type Assessment,
  DriverError,
  mechanicalTriage,
  type Situation,
  type TownEvent,
} from '@belfry/core';
import type { SessionDriver } from '@belfry/core/driver';
import type { MemoryDriver } from '@belfry/driver-memory';
import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { FaultyStore, recordSupervision, TIMINGS } from './chainHelpers';
import { eventsOf, mayorSink, since, until, waitFor } from './helpers';

// Boot: the Deacon's triage of a situation it cannot judge by rule. Boot runs `triage` within
// `bootTimeoutMs`; anything but a valid assessment is an escalation; the Deacon acts on it.

const GHOST = 'api-ghost';
const DOCKED_KEY = 'boot:docked-rig-with-sessions:api';

type TriageAnswer = (situation: Situation, signal: AbortSignal) => unknown;

/** A triage answering with `answer`, recording each situation, signal and call time. */
function scriptedTriage(t: () => TestTown | undefined, answer: TriageAnswer) {
  const calls: Array<{ situation: Situation; signal: AbortSignal; at: number }> = [];
  return {
    calls,
    triage: (situation: Situation, { signal }: { signal: AbortSignal }) => {
      calls.push({ situation, signal, at: t()?.clock.now() ?? Number.NaN });
      return answer(situation, signal) as Assessment | Promise<Assessment>;
    },
  };
}

/**
 * A town whose rig `api` is docked but still has a running session labelled with it (as a
 * session started by hand, or one a crashed dock left behind): the `docked-rig-with-sessions`
 * situation at the next patrol.
 */
async function dockedRigWithGhost(
  answer: TriageAnswer | undefined,
  extra: { bootTimeoutMs?: number; wrapDriver?: (d: MemoryDriver) => SessionDriver } = {},
) {
  let town: TestTown | undefined;
  const scripted = answer ? scriptedTriage(() => town, answer) : undefined;
  const sink = mayorSink();
  const t = await createTestTown({
    timings: {
      ...TIMINGS,
      ...(extra.bootTimeoutMs === undefined ? {} : { bootTimeoutMs: extra.bootTimeoutMs }),
    },
    mayor: sink.mayor,
    ...(scripted ? { triage: scripted.triage } : {}),
    ...(extra.wrapDriver ? { wrapDriver: extra.wrapDriver } : {}),
  });
  town = t;
  const seen = recordSupervision(t);
  await until(t, t.town.rigs.dock('api'));
  await startGhost(t, 1);
  return { t, sink, seen, calls: scripted?.calls ?? [] };
}

async function startGhost(t: TestTown, epoch: number) {
  await t.driver.start({
    name: GHOST,
    epoch,
    command: ['agent'],
    labels: { rig: 'api', agent: 'api/ghost', bead: 'b-ghost' },
  });
}

function dockedSituation(): Situation {
  return { kind: 'docked-rig-with-sessions', rig: 'api', sessions: [GHOST] };
}

/** The patrol that contains event `e` (the last patrol.started before it). */
function patrolOf(t: TestTown, e: TownEvent): string {
  const index = t.events.indexOf(e);
  const started = t.events
    .slice(0, index)
    .filter((x): x is Extract<TownEvent, { type: 'patrol.started' }> => x.type === 'patrol.started')
    .at(-1);
  if (!started) throw new Error('no patrol started before the event');
  return started.moleculeId;
}

/** Waits for the patrol containing `e` to finish and returns its patrol.finished event. */
function finishOf(t: TestTown, e: TownEvent) {
  const id = patrolOf(t, e);
  return waitFor(t, 'patrol.finished', {
    where: (f) => f.moleculeId === id,
    since: t.events.indexOf(e),
    withinMs: 300_000,
  });
}

/** A driver whose `stop` of the ghost session fails, as a tmux server that went away. */
function failingStopOfGhost(inner: MemoryDriver): SessionDriver {
  return {
    kind: inner.kind,
    start: (spec) => inner.start(spec),
    status: (name) => inner.status(name),
    list: () => inner.list(),
    nudge: (name, text) => inner.nudge(name, text),
    capture: (name, options) => inner.capture(name, options),
    stop: async (name, options) => {
      if (name === GHOST)
        throw new DriverError({ code: 'UNAVAILABLE', message: 'the tmux server went away' });
      return inner.stop(name, options);
    },
  };
}

describe('mechanicalTriage (the default)', () => {
  it('stops a docked rig’s sessions, restarts the Witness of hooks without sessions, and needs nothing after a Witness restart', () => {
    expect(
      mechanicalTriage({ kind: 'docked-rig-with-sessions', rig: 'api', sessions: ['a', 'b'] }),
    ).toEqual({ action: 'stop-sessions', reason: 'rig api is docked but 2 session(s) still run' });
    expect(
      mechanicalTriage({ kind: 'hooks-without-sessions', rig: 'web', agents: ['web/x'] }),
    ).toEqual({
      action: 'restart-witness',
      reason: 'rig web has hooked work but no running session',
    });
    expect(
      mechanicalTriage({ kind: 'witness-restarted', rig: 'ops', error: 'probe failed' }),
    ).toEqual({
      action: 'none',
      reason: "the new witness adopts rig ops's running sessions (probe failed)",
    });
  });
});

describe('Boot: the Deacon carries out the assessment', () => {
  it('stop-sessions: the docked rig’s leftover session is stopped, and the situation is gone', async () => {
    const { t, sink, seen, calls } = await dockedRigWithGhost(() => ({
      action: 'stop-sessions',
      reason: 'docked means docked',
    }));
    const assessed = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(assessed.situation).toEqual(dockedSituation());
    expect(assessed.assessment).toEqual({ action: 'stop-sessions', reason: 'docked means docked' });
    expect(calls.map((c) => c.situation)).toEqual([dockedSituation()]);
    // Boot is a short-lived child of the Deacon: started for the assessment, ended with it.
    const boot = seen.filter(
      (e) => e.supervisor === 'town/deacon' && 'childId' in e && e.childId.startsWith('boot-'),
    );
    expect(boot.map((e) => [e.type, e.at])).toEqual([
      ['child.started', assessed.at],
      ['child.exited', assessed.at],
    ]);
    expect(boot[1]).toMatchObject({ reason: 'normal', willRestart: false });
    const finished = await finishOf(t, assessed);
    expect(finished.summary.steps.witnesses).toMatchObject({
      triaged: [{ rig: 'api', kind: 'docked-rig-with-sessions', action: 'stop-sessions' }],
    });
    expect(await t.driver.status(GHOST)).toMatchObject({ state: 'exited', signal: 'SIGTERM' });

    // Later patrols find nothing: no new assessment, no report.
    const after = t.events.length;
    await t.advance(4 * TIMINGS.heartbeatMs);
    expect(eventsOf(since(t, after), 'patrol.finished').length).toBeGreaterThanOrEqual(3);
    expect(eventsOf(since(t, after), 'boot.assessed')).toEqual([]);
    expect(calls).toHaveLength(1);
    expect(sink.reports('boot:')).toEqual([]);
    expect((await t.town.status()).deacon.restarts).toBe(0);
    await t.stop();
  });

  it('restart-witness: hooked work whose sessions never run gets its Witness restarted', async () => {
    let town: TestTown | undefined;
    const { calls, triage } = scriptedTriage(
      () => town,
      (s) =>
        s.kind === 'hooks-without-sessions'
          ? { action: 'restart-witness', reason: 'kick the witness' }
          : { action: 'none', reason: 'nothing to do' },
    );
    const t = await createTestTown({
      timings: { ...TIMINGS, maxRespawns: 1_000 },
      agent: { launch: () => ({ command: ['down'] }) },
      triage,
    });
    town = t;
    // Every start of this program fails: the hook's session is never running.
    t.driver.program('down', () => {}, { failStart: 'no license' });
    const seen = recordSupervision(t);
    const { agent } = await t.work('never starts');

    const assessed = await t.next('boot.assessed', {
      where: (e) => e.situation.kind === 'hooks-without-sessions',
      withinMs: 5 * TIMINGS.heartbeatMs,
    });
    expect(assessed.situation).toEqual({
      kind: 'hooks-without-sessions',
      rig: 'api',
      agents: [agent],
    });
    expect(assessed.assessment).toEqual({ action: 'restart-witness', reason: 'kick the witness' });
    // Only after the Witness has been up longer than the spawn grace.
    const witnessStarted = eventsOf(t, 'witness.started', (e) => e.rig === 'api')[0];
    expect(assessed.at - (witnessStarted?.at as number)).toBeGreaterThan(TIMINGS.spawnGraceMs);
    await finishOf(t, assessed);

    // The Deacon stopped the Witness and started it again, right then.
    const witnessEvents = seen.filter(
      (e) =>
        e.supervisor === 'town/deacon' &&
        'childId' in e &&
        e.childId === 'witness-api' &&
        e.at === assessed.at,
    );
    expect(witnessEvents.map((e) => e.type)).toEqual(
      expect.arrayContaining(['child.exited', 'child.started']),
    );
    expect(witnessEvents.find((e) => e.type === 'child.exited')).toMatchObject({
      initiatedBy: 'supervisor',
    });
    const status = await t.town.status();
    expect(status.rigs[0]?.witness?.state).toBe('running');
    expect(status.deacon.restarts).toBe(0);
    expect(calls.filter((c) => c.situation.kind === 'hooks-without-sessions').length).toBe(1);
    expect(await t.model.reports.byIncident('boot:hooks-without-sessions:api')).toBeUndefined();
    await t.stop();
  });

  it('restart-witness is not asked again within the spawn grace of the restarted Witness', async () => {
    let town: TestTown | undefined;
    const { calls, triage } = scriptedTriage(
      () => town,
      (s) => mechanicalTriage(s),
    );
    const t = await createTestTown({
      timings: { ...TIMINGS, maxRespawns: 1_000, heartbeatMs: 20_000, patrolIntervalMs: 20_000 },
      agent: { launch: () => ({ command: ['down'] }) },
      triage,
    });
    town = t;
    t.driver.program('down', () => {}, { failStart: 'no license' });
    await t.work('never starts');
    await t.advance(300_000);
    const at = calls.filter((c) => c.situation.kind === 'hooks-without-sessions').map((c) => c.at);
    expect(at.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < at.length; i++)
      expect((at[i] as number) - (at[i - 1] as number)).toBeGreaterThan(TIMINGS.spawnGraceMs);
    await t.stop();
  });

  it('escalate: one high report boot:<kind>:<rig> to the Mayor naming the reason; the session is left alone', async () => {
    const { t, sink } = await dockedRigWithGhost(() => ({
      action: 'escalate',
      reason: 'someone is still working in a docked rig',
    }));
    const assessed = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(assessed.assessment).toEqual({
      action: 'escalate',
      reason: 'someone is still working in a docked rig',
    });
    await finishOf(t, assessed);
    const reports = sink.reports('boot:');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      incidentKey: DOCKED_KEY,
      severity: 'high',
      status: 'open',
      source: 'boot',
      title: 'rig api: someone is still working in a docked rig',
      details: dockedSituation(),
    });
    expect((await t.driver.status(GHOST)).state).toBe('running');
    expect((await t.town.status()).deacon.restarts).toBe(0);
    await t.stop();
  });

  it('none: nothing is done and nothing reported; Boot is asked again each patrol while the situation lasts', async () => {
    const { t, sink, calls } = await dockedRigWithGhost(() => ({
      action: 'none',
      reason: 'it is finishing on its own',
    }));
    const first = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(first.assessment).toEqual({ action: 'none', reason: 'it is finishing on its own' });
    const from = t.events.indexOf(first);
    await t.advance(3 * TIMINGS.heartbeatMs);
    const finished = eventsOf(since(t, from), 'patrol.finished');
    const assessed = eventsOf(since(t, from), 'boot.assessed');
    expect(finished.length).toBeGreaterThanOrEqual(3);
    // One assessment per patrol.
    expect(assessed.length).toBe(finished.length);
    expect(calls).toHaveLength(assessed.length);
    for (const e of assessed) expect(e.situation).toEqual(dockedSituation());
    expect((await t.driver.status(GHOST)).state).toBe('running');
    expect(sink.reports()).toEqual([]);
    expect(await t.model.reports.open()).toEqual([]);
    await t.stop();
  });
});

describe('Boot: a triage that misbehaves counts as escalate', () => {
  it.each([
    [
      'throws',
      () => {
        throw new Error('the model is offline');
      },
    ],
    ['rejects', () => Promise.reject(new Error('the model is offline'))],
  ])('a triage that %s: escalated with its error, the patrol finishes', async (_how, answer) => {
    const { t, sink } = await dockedRigWithGhost(answer);
    const assessed = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(assessed.assessment).toEqual({
      action: 'escalate',
      reason: 'boot could not assess it: the model is offline',
    });
    await finishOf(t, assessed);
    const reports = sink.reports('boot:');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      incidentKey: DOCKED_KEY,
      severity: 'high',
      title: 'rig api: boot could not assess it: the model is offline',
    });
    expect((await t.driver.status(GHOST)).state).toBe('running');
    const status = await t.town.status();
    expect(status.deacon).toMatchObject({ state: 'running', restarts: 0 });
    await t.stop();
  });

  it('a triage that never answers: escalated after bootTimeoutMs, its signal aborted then, and the patrol still finishes', async () => {
    const bootTimeoutMs = 20_000;
    let abortedAt: number | undefined;
    let town: TestTown | undefined;
    const { t, sink, seen, calls } = await dockedRigWithGhost(
      (_s, signal) => {
        signal.addEventListener('abort', () => {
          abortedAt ??= town?.clock.now();
        });
        return new Promise<never>(() => {});
      },
      { bootTimeoutMs },
    );
    town = t;
    const assessed = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    const call = calls[0];
    if (!call) throw new Error('the triage was not called');
    expect(assessed.at - call.at).toBe(bootTimeoutMs);
    expect(abortedAt).toBe(call.at + bootTimeoutMs);
    expect(call.signal.aborted).toBe(true);
    // The Boot actor failed at the deadline and, temporary, was not restarted.
    const boot = seen.filter(
      (e) =>
        e.supervisor === 'town/deacon' &&
        'childId' in e &&
        e.childId.startsWith('boot-') &&
        e.at <= assessed.at,
    );
    expect(boot.map((e) => [e.type, e.at])).toEqual([
      ['child.started', call.at],
      ['child.exited', assessed.at],
    ]);
    expect(boot[1]).toMatchObject({ reason: 'error', willRestart: false });
    expect(assessed.assessment).toEqual({
      action: 'escalate',
      reason: `boot could not assess it: boot: triage did not answer within ${bootTimeoutMs} ms`,
    });
    const finished = await finishOf(t, assessed);
    expect(finished.at).toBe(assessed.at);
    expect(finished.summary.steps.witnesses).toMatchObject({
      triaged: [{ rig: 'api', kind: 'docked-rig-with-sessions', action: 'escalate' }],
    });
    expect(sink.reports('boot:').map((r) => r.incidentKey)).toEqual([DOCKED_KEY]);
    expect((await t.driver.status(GHOST)).state).toBe('running');
    // It keeps happening patrol after patrol; the Deacon is never restarted for it.
    const from = t.events.indexOf(finished);
    await t.advance(4 * TIMINGS.heartbeatMs);
    expect(eventsOf(since(t, from), 'patrol.finished').length).toBeGreaterThanOrEqual(2);
    expect(sink.reports('boot:')).toHaveLength(1);
    expect((await t.town.status()).deacon).toMatchObject({ state: 'running', restarts: 0 });
    await t.stop();
  });

  it('a triage that answers in time sees a signal that is not aborted', async () => {
    const { t, calls } = await dockedRigWithGhost(() => ({ action: 'none', reason: 'fine' }));
    await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    await t.advance(2 * 60_000 + 1);
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) expect(c.signal.aborted).toBe(false);
    await t.stop();
  });

  it.each([
    ['undefined', undefined, 'the triage answered undefined, not an assessment'],
    [
      'an unknown action',
      { action: 'reboot', reason: 'turn it off and on' },
      'the triage answered {"action":"reboot","reason":"turn it off and on"}, not an assessment',
    ],
    [
      'an empty reason',
      { action: 'stop-sessions', reason: '' },
      'the triage answered {"action":"stop-sessions","reason":""}, not an assessment',
    ],
    [
      'a blank reason',
      { action: 'stop-sessions', reason: '   ' },
      'the triage answered {"action":"stop-sessions","reason":"   "}, not an assessment',
    ],
    ['null', null, 'the triage answered null, not an assessment'],
    ['a bare string', 'stop-sessions', 'the triage answered "stop-sessions", not an assessment'],
  ])(
    'answering %s: escalated with a reason naming the answer; patrols keep finishing, the Deacon is not restarted',
    async (_what, answer, reason) => {
      const { t, sink, calls } = await dockedRigWithGhost(() => answer);
      const first = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
      expect(first.situation).toEqual(dockedSituation());
      expect(first.assessment.action).toBe('escalate');
      expect(first.assessment.reason.startsWith(reason)).toBe(true);
      expect(first.assessment.reason).toContain(
        '{ action: none | stop-sessions | restart-witness | escalate, reason: non-empty string }',
      );
      const from = t.events.indexOf(first);
      await t.advance(4 * TIMINGS.heartbeatMs);
      const finished = eventsOf(since(t, from), 'patrol.finished');
      expect(finished.length).toBeGreaterThanOrEqual(4);
      const assessed = eventsOf(since(t, from), 'boot.assessed');
      expect(assessed).toHaveLength(finished.length);
      for (const e of assessed) expect(e.assessment).toEqual(first.assessment);
      expect(calls).toHaveLength(assessed.length);
      // Never acted on as stop-sessions: the session still runs.
      expect((await t.driver.status(GHOST)).state).toBe('running');
      const reports = sink.reports('boot:');
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ incidentKey: DOCKED_KEY, severity: 'high' });
      expect(reports[0]?.title).toContain(reason);
      const status = await t.town.status();
      expect(status.deacon).toMatchObject({ state: 'running', restarts: 0, crashLoop: false });
      await t.stop();
    },
  );

  // Reports refuse titles over 500 characters: a long reason (or a long error of the triage)
  // must not make the report, and so the patrol, fail.
  it.each([
    [
      'a long escalation reason',
      () => ({ action: 'escalate', reason: `abandoned: ${'x'.repeat(600)}` }),
    ],
    [
      'a triage error with a long message',
      () => {
        throw new Error(`upstream said: ${'y'.repeat(600)}`);
      },
    ],
  ])('%s is still reported once, and the patrols still finish', async (_what, answer) => {
    const { t, sink } = await dockedRigWithGhost(answer);
    const assessed = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(assessed.assessment.action).toBe('escalate');
    const from = t.events.indexOf(assessed);
    await t.advance(3 * TIMINGS.heartbeatMs);
    expect(eventsOf(since(t, from), 'patrol.finished').length).toBeGreaterThanOrEqual(2);
    expect(sink.reports('boot:').map((r) => r.incidentKey)).toEqual([DOCKED_KEY]);
    expect((await t.town.status()).deacon).toMatchObject({ restarts: 0, crashLoop: false });
    await t.stop();
  });
});

describe('Boot: acting on the assessment', () => {
  it('the default triage stops a docked rig’s leftover session', async () => {
    const { t, sink } = await dockedRigWithGhost(undefined);
    const assessed = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(assessed).toMatchObject({
      situation: dockedSituation(),
      assessment: {
        action: 'stop-sessions',
        reason: 'rig api is docked but 1 session(s) still run',
      },
    });
    await finishOf(t, assessed);
    expect(await t.driver.status(GHOST)).toMatchObject({ state: 'exited', signal: 'SIGTERM' });
    const from = t.events.length;
    await t.advance(3 * TIMINGS.heartbeatMs);
    expect(eventsOf(since(t, from), 'boot.assessed')).toEqual([]);
    expect(sink.reports()).toEqual([]);
    await t.stop();
  });

  it('a failure to act is reported under the same key, once, and never fails the patrol', async () => {
    const { t, sink } = await dockedRigWithGhost(undefined, { wrapDriver: failingStopOfGhost });
    const first = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(first.assessment.action).toBe('stop-sessions');
    await finishOf(t, first);
    const reports = sink.reports('boot:');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ incidentKey: DOCKED_KEY, severity: 'high', source: 'boot' });
    expect(reports[0]?.title).toBe(
      'rig api: could not stop-sessions (rig api is docked but 1 session(s) still run): the tmux server went away',
    );
    const from = t.events.indexOf(first);
    await t.advance(3 * TIMINGS.heartbeatMs);
    const assessed = eventsOf(since(t, from), 'boot.assessed');
    expect(assessed.length).toBeGreaterThanOrEqual(3);
    expect(eventsOf(since(t, from), 'patrol.finished')).toHaveLength(assessed.length);
    expect(sink.reports('boot:')).toHaveLength(1);
    expect((await t.model.reports.byIncident(DOCKED_KEY))?.count).toBe(assessed.length);
    expect((await t.driver.status(GHOST)).state).toBe('running');
    expect((await t.town.status()).deacon.restarts).toBe(0);
    await t.stop();
  });

  it('an escalation is reported once over many patrols, resolved once the situation is gone, and news again if it recurs', async () => {
    const { t, sink, calls } = await dockedRigWithGhost(() => ({
      action: 'escalate',
      reason: 'a session runs in a docked rig',
    }));
    const first = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    const from = t.events.indexOf(first);
    await t.advance(5 * TIMINGS.heartbeatMs);
    const assessed = eventsOf(since(t, from), 'boot.assessed');
    expect(assessed.length).toBeGreaterThanOrEqual(5);
    expect(calls).toHaveLength(assessed.length);
    const open = await t.model.reports.byIncident(DOCKED_KEY);
    expect(open).toMatchObject({ status: 'open', severity: 'high', count: assessed.length });
    expect(sink.reports('boot:')).toHaveLength(1);
    expect(
      eventsOf(t, 'report', (e) => e.report.incidentKey === DOCKED_KEY && e.created),
    ).toHaveLength(1);

    // The session goes away: the next patrol finds no situation and resolves the incident.
    await t.driver.stop(GHOST);
    const gone = t.events.length;
    const resolving = await t.next('patrol.finished', { withinMs: 2 * TIMINGS.heartbeatMs });
    expect(eventsOf(since(t, gone), 'boot.assessed')).toEqual([]);
    expect(resolving.summary.steps.witnesses).toMatchObject({ triaged: [] });
    const reportStep = eventsOf(
      since(t, gone),
      'patrol.step',
      (e) => e.moleculeId === resolving.moleculeId && e.step === 'report',
    )[0];
    expect(reportStep?.result).toMatchObject({ resolved: 1 });
    expect(await t.model.reports.byIncident(DOCKED_KEY)).toBeUndefined();
    expect(await t.model.reports.get(open?.id as string)).toMatchObject({
      status: 'resolved',
      resolvedAt: resolving.at,
    });
    await t.advance(3 * TIMINGS.heartbeatMs);
    expect(eventsOf(since(t, gone), 'boot.assessed')).toEqual([]);
    expect(sink.reports('boot:')).toHaveLength(1);

    // It comes back: a new incident, news to the Mayor again.
    await startGhost(t, 2);
    const again = await t.next('boot.assessed', { withinMs: 2 * TIMINGS.heartbeatMs });
    await finishOf(t, again);
    const reports = sink.reports('boot:');
    expect(reports).toHaveLength(2);
    expect(reports[1]?.id).not.toBe(open?.id);
    expect(reports[1]).toMatchObject({ incidentKey: DOCKED_KEY, status: 'open', count: 1 });
    await t.stop();
  });
});

describe('Boot: the witness-restarted sequence', () => {
  async function hangingWitness(triage?: TriageAnswer) {
    const store = new FaultyStore();
    const sink = mayorSink();
    let town: TestTown | undefined;
    const scripted = triage ? scriptedTriage(() => town, triage) : undefined;
    const t = await createTestTown({
      store,
      timings: TIMINGS,
      agent: { launch: () => ({ command: ['chatty', '10000'] }) },
      mayor: sink.mayor,
      ...(scripted ? { triage: scripted.triage } : {}),
    });
    town = t;
    const { agent } = await t.work('keeps running');
    const spawned = await t.next('polecat.spawned');
    store.hangRig('api'); // the Witness's survey never finishes: it stops answering pings
    const restarted = await t.next('witness.restarted', {
      withinMs: 3 * TIMINGS.patrolIntervalMs,
    });
    store.releaseRig('api');
    return { t, sink, calls: scripted?.calls ?? [], restarted, agent, spawned };
  }

  it('restart → Boot assesses → exactly one witness-unresponsive report to the Mayor, with Boot’s reason (high on escalate)', async () => {
    const { t, sink, calls, restarted, agent, spawned } = await hangingWitness((s) =>
      s.kind === 'witness-restarted'
        ? { action: 'escalate', reason: 'the api witness keeps hanging' }
        : { action: 'none', reason: 'n/a' },
    );
    expect(restarted.rig).toBe('api');
    const assessed = await waitFor(t, 'boot.assessed', {
      since: t.events.indexOf(restarted),
      where: (e) => e.situation.kind === 'witness-restarted',
      withinMs: TIMINGS.patrolIntervalMs,
    });
    expect(assessed.situation).toMatchObject({ kind: 'witness-restarted', rig: 'api' });
    expect((assessed.situation as { error: string }).error.length).toBeGreaterThan(0);
    expect(assessed.assessment).toEqual({
      action: 'escalate',
      reason: 'the api witness keeps hanging',
    });
    const reportEvent = await waitFor(t, 'report', {
      since: t.events.indexOf(assessed),
      where: (e) => e.report.incidentKey === 'witness-unresponsive:api',
    });
    // The sequence: restart, then Boot, then the report.
    expect(t.events.indexOf(restarted)).toBeLessThan(t.events.indexOf(assessed));
    expect(t.events.indexOf(assessed)).toBeLessThan(t.events.indexOf(reportEvent));
    expect(
      eventsOf(t, 'report', (e) => e.report.incidentKey === 'witness-unresponsive:api').filter(
        (e) => t.events.indexOf(e) < t.events.indexOf(assessed),
      ),
    ).toEqual([]);
    expect(reportEvent.created).toBe(true);

    await t.advance(3 * TIMINGS.patrolIntervalMs);
    const reports = sink.reports('witness-unresponsive:');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      incidentKey: 'witness-unresponsive:api',
      severity: 'high',
      source: 'deacon',
      details: { rig: 'api', action: 'escalate', assessment: 'the api witness keeps hanging' },
    });
    expect(reports[0]?.title).toContain('the api witness keeps hanging');
    // The escalation is that one report: no separate boot: incident for it.
    expect(sink.reports('boot:')).toEqual([]);
    expect(calls.filter((c) => c.situation.kind === 'witness-restarted')).toHaveLength(1);
    expect(
      eventsOf(t, 'boot.assessed', (e) => e.situation.kind === 'witness-restarted'),
    ).toHaveLength(1);
    // The agent's session was adopted, not restarted.
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
    expect((await t.town.status()).deacon.restarts).toBe(0);
    await t.stop();
  });

  it('with the default triage: assessed none, one medium report whose title carries the mechanical reason', async () => {
    const { t, sink, restarted } = await hangingWitness();
    const assessed = await waitFor(t, 'boot.assessed', {
      since: t.events.indexOf(restarted),
      where: (e) => e.situation.kind === 'witness-restarted',
      withinMs: TIMINGS.patrolIntervalMs,
    });
    expect(assessed.assessment.action).toBe('none');
    expect(assessed.assessment.reason).toMatch(
      /^the new witness adopts rig api's running sessions/,
    );
    await finishOf(t, assessed);
    await t.advance(TIMINGS.patrolIntervalMs);
    const reports = sink.reports('witness-unresponsive:');
    expect(reports).toHaveLength(1);
    expect(reports[0]?.severity).toBe('medium');
    expect(reports[0]?.title).toBe(
      `the witness of rig api stopped answering and was restarted; boot: ${assessed.assessment.reason}`,
    );
    expect((await t.town.status()).rigs[0]?.witness).toMatchObject({
      state: 'running',
      restarts: 1,
    });
    await t.stop();
  });
  it('a long reason from Boot still reaches the Mayor in one witness-unresponsive report; the Deacon is not restarted', async () => {
    const reason = `the witness looks wedged: ${'z'.repeat(600)}`;
    const { t, sink, restarted } = await hangingWitness(() => ({ action: 'none', reason }));
    await waitFor(t, 'boot.assessed', {
      since: t.events.indexOf(restarted),
      where: (e) => e.situation.kind === 'witness-restarted',
      withinMs: TIMINGS.patrolIntervalMs,
    });
    const from = t.events.length;
    await t.advance(2 * TIMINGS.patrolIntervalMs);
    expect(eventsOf(since(t, from), 'patrol.finished').length).toBeGreaterThanOrEqual(2);
    expect(sink.reports('witness-unresponsive:')).toHaveLength(1);
    expect((await t.town.status()).deacon).toMatchObject({ restarts: 0, crashLoop: false });
    await t.stop();
  });
});
