import type { ChildBackoffEvent, MayorMessage, SupervisorEvent } from '@belfry/core';
import { createTestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  BUSY_AGENT,
  eventsOf,
  FaultyStore,
  recordSupervision,
  reportsTo,
  TIMINGS,
  until,
} from './chainHelpers';

// Each level recovers the one below it: the Witness its polecats, the Deacon its Witnesses, the
// Daemon the Deacon.

// The Daemon's policy for the Deacon: backoff from 30 s doubling to 10 min (jitter 0.1); 5
// restarts within 15 min make a crash loop, which ends after 30 min without a restart.
const CRASH_LOOP_RESTARTS = 5;
const CRASH_LOOP_QUIET_MS = 30 * 60_000;
const FIRST_BACKOFF_MS = 30_000;

function deaconBackoffs(seen: readonly SupervisorEvent[]): ChildBackoffEvent[] {
  return seen.filter(
    (e): e is ChildBackoffEvent =>
      e.type === 'child.backoff' && e.supervisor === 'town' && e.childId === 'deacon',
  );
}

function deaconRestarts(seen: readonly SupervisorEvent[]): SupervisorEvent[] {
  return seen.filter(
    (e) => e.type === 'child.restarting' && e.supervisor === 'town' && e.childId === 'deacon',
  );
}

/** A town on a {@link FaultyStore}: its Deacon can be made to fail, a Witness to hang. */
async function faultyTown() {
  const store = new FaultyStore();
  const mayor: MayorMessage[] = [];
  const t = await createTestTown({
    store,
    timings: TIMINGS,
    agent: BUSY_AGENT,
    mayor: (m) => {
      mayor.push(m);
    },
  });
  const seen = recordSupervision(t);
  return { t, store, mayor, seen };
}

describe('the recovery chain', () => {
  it("a Witness respawns its polecat's crashed session; nothing above it restarts", async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: BUSY_AGENT });
    const seen = recordSupervision(t);
    const { agent, beadId } = await t.work('long job');
    const first = await t.next('polecat.spawned');
    t.crash(agent);
    const second = await t.next('polecat.spawned', { withinMs: 60_000 });
    expect(second).toMatchObject({ agent, beadId, respawn: true });
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: second.epoch });
    const status = await t.town.status();
    expect(status.deacon.restarts).toBe(0);
    expect(status.rigs[0]?.witness).toMatchObject({ state: 'running', restarts: 0 });
    expect(seen.filter((e) => e.type === 'child.restarting').map((e) => e.supervisor)).toEqual([
      'town/deacon/witness-api',
    ]);
    await t.stop();
  });

  it('a Witness that stops answering gets one patrol cycle of grace, then is restarted and reported once', async () => {
    const { t, store, mayor, seen } = await faultyTown();
    const { agent } = await t.work('keeps running');
    const spawned = await t.next('polecat.spawned');

    store.hangRig('api'); // the Witness's survey never finishes again
    const isWitnessProbe = (e: SupervisorEvent) =>
      e.type === 'child.probeFailed' && e.childId === 'witness-api';
    await until(t, () => seen.some(isWitnessProbe), {
      withinMs: 2 * TIMINGS.patrolIntervalMs,
      what: 'a missed ping',
    });
    const missed = seen.find(isWitnessProbe);
    expect(missed).toMatchObject({ failures: 1, threshold: 2 });
    // The cycle of grace: one missed ping restarts nothing.
    await t.advance(TIMINGS.patrolIntervalMs - 1_000);
    expect(eventsOf(t, 'witness.restarted')).toEqual([]);
    expect((await t.town.status()).rigs[0]?.witness?.restarts).toBe(0);

    const restarted = await t.next('witness.restarted', { withinMs: 5_000 });
    expect(restarted.rig).toBe('api');
    expect(restarted.at - (missed?.at as number)).toBe(TIMINGS.patrolIntervalMs);
    store.releaseRig('api');
    await t.advance(3 * TIMINGS.patrolIntervalMs);

    const status = await t.town.status();
    expect(status.rigs[0]?.witness).toMatchObject({ state: 'running', restarts: 1 });
    expect(eventsOf(t, 'witness.restarted')).toHaveLength(1);
    const created = eventsOf(t, 'report').filter(
      (e) => e.created && e.report.incidentKey === 'witness-unresponsive:api',
    );
    expect(created).toHaveLength(1);
    expect(reportsTo(mayor, 'witness-unresponsive:')).toHaveLength(1);
    // Restarting the Witness leaves its agent alone: same session, adopted by the new Witness.
    expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
    expect(
      eventsOf(t, 'polecat.adopted').some((e) => e.agent === agent && e.at >= restarted.at),
    ).toBe(true);
    expect(eventsOf(t, 'polecat.spawned')).toHaveLength(1);
    await t.stop();
  });

  describe('a failing Deacon', () => {
    it('is restarted by the Daemon with growing backoff; 5 restarts in 15 min make a crash loop, reported once', async () => {
      const { t, store, mayor, seen } = await faultyTown();
      const { agent } = await t.work('keeps working through it');
      const spawned = await t.next('polecat.spawned');
      store.failMolecules = true;

      await until(t, () => deaconRestarts(seen).length >= CRASH_LOOP_RESTARTS - 1, {
        what: 'four Deacon restarts',
      });
      expect((await t.town.status()).deacon.crashLoop).toBe(false);
      await until(t, () => deaconRestarts(seen).length >= CRASH_LOOP_RESTARTS, {
        what: 'the fifth Deacon restart',
      });
      // 30 + 60 + 120 + 240 s of backoff (±10%) put five restarts well inside 15 min.
      const restarts = deaconRestarts(seen);
      expect((restarts.at(-1)?.at as number) - (restarts[0]?.at as number)).toBeLessThan(
        15 * 60_000,
      );
      const status = await t.town.status();
      expect(status.deacon.crashLoop).toBe(true);
      expect(status.deacon.restarts).toBe(CRASH_LOOP_RESTARTS);

      // While it waits out a backoff, the status says until when.
      await until(t, async () => (await t.town.status()).deacon.state === 'backoff', {
        what: 'the Deacon in backoff',
      });
      const inBackoff = await t.town.status();
      expect(inBackoff.deacon.backoffUntil).toBeGreaterThan(t.clock.now());

      // Keep it failing for a while: the heartbeats go on, the incident is reported once.
      await t.advance(8 * 60_000);
      const delays = deaconBackoffs(seen).map((e) => e.delayMs);
      expect(delays.length).toBeGreaterThanOrEqual(CRASH_LOOP_RESTARTS);
      for (let i = 1; i < CRASH_LOOP_RESTARTS; i++)
        expect(delays[i] as number).toBeGreaterThan(delays[i - 1] as number);
      expect(delays[0]).toBeGreaterThanOrEqual(FIRST_BACKOFF_MS * 0.9);
      expect(delays[0]).toBeLessThanOrEqual(FIRST_BACKOFF_MS * 1.1);
      expect(eventsOf(t, 'heartbeat').length).toBeGreaterThanOrEqual(9);
      const created = eventsOf(t, 'report').filter(
        (e) => e.created && e.report.incidentKey === 'deacon-crash-loop',
      );
      expect(created).toHaveLength(1);
      expect(created[0]?.report.severity).toBe('critical');
      expect(reportsTo(mayor, 'deacon-crash-loop')).toHaveLength(1);
      expect((await t.model.reports.byIncident('deacon-crash-loop'))?.count).toBeGreaterThan(1);
      // The levels below were restarted with the Deacon, the agent's session was not.
      expect(await t.session(agent)).toMatchObject({ state: 'running', epoch: spawned.epoch });
      expect(eventsOf(t, 'polecat.spawned')).toHaveLength(1);
      await t.stop();
    });

    it('leaves the crash loop after a quiet period once the Deacon stays up: crashLoop false, report resolved', async () => {
      const { t, store, mayor, seen } = await faultyTown();
      await t.advance(1_000);
      store.failMolecules = true;
      await until(t, () => deaconRestarts(seen).length >= CRASH_LOOP_RESTARTS, {
        what: 'five Deacon restarts',
      });
      await t.advance(2 * TIMINGS.heartbeatMs);
      const report = await t.model.reports.byIncident('deacon-crash-loop');
      expect(report).toBeDefined();

      store.failMolecules = false;
      const lastRestartAt = deaconRestarts(seen).at(-1)?.at as number;
      await until(t, async () => (await t.town.status()).deacon.state === 'running', {
        what: 'the Deacon to come back',
        withinMs: 15 * 60_000,
      });
      const back = await t.next('patrol.finished', { withinMs: TIMINGS.patrolIntervalMs });
      expect(back.at).toBeGreaterThan(lastRestartAt);
      // Not yet 30 min without a restart: the state holds.
      expect((await t.town.status()).deacon.crashLoop).toBe(true);

      await t.advance(CRASH_LOOP_QUIET_MS + 2 * TIMINGS.heartbeatMs);
      const status = await t.town.status();
      expect(status.deacon).toMatchObject({ state: 'running', crashLoop: false });
      expect(deaconRestarts(seen).at(-1)?.at).toBe(lastRestartAt);
      expect(await t.model.reports.byIncident('deacon-crash-loop')).toBeUndefined();
      expect(await t.model.reports.get(report?.id as string)).toMatchObject({
        status: 'resolved',
      });
      expect(reportsTo(mayor, 'deacon-crash-loop')).toHaveLength(1);
      await t.stop();
    });

    it('stays in the crash loop (and reported) while it keeps failing, however slow the restarts get', async () => {
      const { t, store, seen } = await faultyTown();
      await t.advance(1_000);
      store.failMolecules = true;
      await until(t, () => deaconRestarts(seen).length >= CRASH_LOOP_RESTARTS, {
        what: 'five Deacon restarts',
      });
      await t.advance(2 * TIMINGS.heartbeatMs);
      expect(await t.model.reports.byIncident('deacon-crash-loop')).toBeDefined();

      // An hour of a Deacon that never manages a patrol.
      const lastPatrolAt = (await t.town.status()).deacon.lastPatrolAt;
      for (let minute = 0; minute < 60; minute++) {
        await t.advance(60_000);
        const status = await t.town.status();
        expect(status.deacon.lastPatrolAt).toBe(lastPatrolAt);
        expect(
          { minute, crashLoop: status.deacon.crashLoop },
          'the crash-loop state cleared while the Deacon was still failing',
        ).toEqual({ minute, crashLoop: true });
      }
      expect(await t.model.reports.byIncident('deacon-crash-loop')).toBeDefined();
      await t.stop();
    });

    it('once in a crash loop, its restarts are slowed to the backoff maximum (as TownStatus documents)', async () => {
      const { t, store, seen } = await faultyTown();
      await t.advance(1_000);
      store.failMolecules = true;
      await until(t, () => deaconRestarts(seen).length >= CRASH_LOOP_RESTARTS + 1, {
        what: 'a restart after the crash loop began',
        withinMs: 30 * 60_000,
      });
      const delays = deaconBackoffs(seen).map((e) => e.delayMs);
      // The Daemon's backoff for the Deacon: maxMs 600_000, jitter 0.1.
      expect(delays[CRASH_LOOP_RESTARTS]).toBeGreaterThanOrEqual(540_000);
      await t.stop();
    });
  });
});
