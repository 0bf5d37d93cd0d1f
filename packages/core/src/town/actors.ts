import type { ActorSystem, AnyActorRef } from 'xstate';
import { whichChildren } from '../supervisorApi';
import { SYSTEM, WATCH_CHILD, watchId, witnessId } from './names';

/*
 * Typed lookups of the town's actors in its xstate system, and the messages the roles send each
 * other. The flow between roles reads here, instead of as `system.get('…')` casts in each role.
 */

/** The town's xstate actor system (xstate does not export its own `AnyActorSystem`). */
// biome-ignore lint/suspicious/noExplicitAny: xstate's own AnyActorSystem
export type TownSystem = ActorSystem<any>;

function find(system: TownSystem, id: string): AnyActorRef | undefined {
  return system.get(id) as AnyActorRef | undefined;
}

/** The Deacon's supervisor, when it runs. */
export function deaconOf(system: TownSystem): AnyActorRef | undefined {
  return find(system, SYSTEM.deacon);
}

/** The Deacon's supervisor; throws when it does not run (a patrol runs inside it). */
export function requireDeacon(system: TownSystem): AnyActorRef {
  const ref = deaconOf(system);
  if (!ref) throw new Error('the deacon is not running');
  return ref;
}

/** A rig's Witness supervisor, when it runs. */
export function witnessOf(system: TownSystem, rig: string): AnyActorRef | undefined {
  return find(system, witnessId(rig));
}

/** A rig's Witness supervisor; throws when it does not run (its survey runs inside it). */
export function requireWitness(system: TownSystem, rig: string): AnyActorRef {
  const ref = witnessOf(system, rig);
  if (!ref) throw new Error(`the witness of rig ${rig} is not running`);
  return ref;
}

/** Wakes the Deacon's patrol now instead of at the next heartbeat. */
export function wakePatrol(system: TownSystem): void {
  find(system, SYSTEM.patrol)?.send({ type: 'HEARTBEAT' });
}

/** Wakes the Daemon's lifecycle worker now. */
export function wakeLifecycle(system: TownSystem): void {
  find(system, SYSTEM.lifecycle)?.send({ type: 'WAKE' });
}

/** Asks a rig's Witness to survey its polecats now (new work, a changed rig). */
export function surveyRig(system: TownSystem, rig: string): void {
  find(system, watchId(rig))?.send({ type: 'SURVEY' });
}

/** The ping a Witness answers: when its watch last finished a survey, and when it started. */
export interface WitnessPong {
  startedAt: number;
  lastSurveyAt: number | undefined;
}

/**
 * Pings a Witness's survey actor (the Deacon's liveness check of the Witness); resolves with its
 * answer, or undefined when the Witness has no survey actor (it is starting or stopping).
 */
export async function pingWitness(witness: AnyActorRef): Promise<WitnessPong | undefined> {
  const watch = whichChildren(witness).find((c) => c.id === WATCH_CHILD)?.ref;
  if (!watch) return undefined;
  return new Promise<WitnessPong>((resolve) => watch.send({ type: 'PING', reply: resolve }));
}
