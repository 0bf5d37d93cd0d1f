import type { SupervisorEvent, TownOptions } from '@belfry/core';
import { createTestTown, SimulatedClock, type TestTown } from '@belfry/testing';
import {
  CountingDriver,
  eventsOf,
  FaultyStore,
  TWO_RIGS as OPTIONS,
  recordSupervision,
  TIMINGS,
  until,
} from './chainHelpers';

/*
 * A started test town of two rigs on a store that can be made to fail (FaultyStore), with helpers
 * that restart the Deacon or a Witness through such a fault.
 */

/** A started test town of two rigs on a FaultyStore and a CountingDriver. */
export async function town(extra: Partial<TownOptions> = {}, store = new FaultyStore()) {
  const clock = new SimulatedClock(1_700_000_000_000);
  const driver = new CountingDriver({ clock });
  const t = await createTestTown({ ...OPTIONS, ...extra, clock, driver, store });
  return Object.assign(t, { driver, store, seen: recordSupervision(t) });
}

/** The agents of every `polecat.spawned` so far, in order. */
export function spawnedAgents(t: TestTown): string[] {
  return eventsOf(t, 'polecat.spawned').map((e) => e.agent);
}

/** Makes the Deacon fail (its patrol cannot read its molecule) until the Daemon restarted it. */
export async function restartDeacon(t: TestTown, store: FaultyStore, seen: SupervisorEvent[]) {
  const restarts = () =>
    seen.filter(
      (e) => e.type === 'child.restarting' && e.supervisor === 'town' && e.childId === 'deacon',
    ).length;
  const before = restarts();
  store.failMolecules = true;
  t.town.wake();
  await until(t, () => restarts() > before, { what: 'a Deacon restart' });
  store.failMolecules = false;
  await until(t, async () => (await t.town.status()).deacon.state === 'running', {
    what: 'the Deacon to come back',
  });
  await t.advance(TIMINGS.patrolIntervalMs);
}

/** Makes a rig's Witness stop answering until the Deacon restarted it. */
export async function restartWitness(t: TestTown, store: FaultyStore, rig: string) {
  const before = eventsOf(t, 'witness.restarted').length;
  store.hangRig(rig);
  await until(t, () => eventsOf(t, 'witness.restarted').length > before, {
    withinMs: 4 * TIMINGS.patrolIntervalMs,
    what: `a restart of the ${rig} Witness`,
  });
  store.releaseRig(rig);
  await t.advance(TIMINGS.patrolIntervalMs);
}
