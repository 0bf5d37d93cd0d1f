import { describe, fail } from '../internal/validate';

/** The agent id of a polecat: `<rig>/<name>`. */
export function agentId(rig: string, name: string): string {
  return `${rig}/${name}`;
}

/**
 * The town's names and ids in one place: how an agent, its session and the actors of the tree
 * are named, and how a name is read back. A session is `<rig>-<polecat>`, an agent
 * `<rig>/<polecat>`; rig names hold no `/` and polecat names no `-`, so each maps back to one.
 */

const RIG_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/**
 * Checks a rig name for a town: it names sessions (`<rig>-<polecat>`), so it is 1 to 32 letters,
 * digits, `_` or `-`. With polecat names of at most 31 characters and no `-`, every session name
 * fits a driver's 64 characters and maps back to one agent.
 *
 * @throws ConfigError `INVALID_OPTION` at `path`.
 */
export function checkRigName(value: unknown, path: string): string {
  if (typeof value !== 'string' || !RIG_NAME.test(value))
    fail(
      'INVALID_OPTION',
      path,
      `a rig name must be 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it names sessions); got ${describe(value)}`,
    );
  return value;
}

/**
 * The label every session of a town with an id carries, holding that id: a town never stops,
 * adopts or counts a session whose `town` label is another town's.
 */
export const TOWN_LABEL = 'town';

const TOWN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Checks a town's id: 1 to 64 letters, digits, `_` or `-`, starting with a letter or digit (it
 * is a session label, and goes into file names and logs as it is).
 *
 * @throws ConfigError `INVALID_OPTION` at `path`.
 */
export function checkTownId(value: unknown, path: string): string {
  if (typeof value !== 'string' || !TOWN_ID.test(value))
    fail(
      'INVALID_OPTION',
      path,
      `a town id must be 1 to 64 letters, digits, '_' or '-', starting with a letter or digit; got ${describe(value)}`,
    );
  return value;
}

const POLECAT_NAME = /^[a-z][a-z0-9_]{0,30}$/;

/** Checks a polecat name (1 to 31 lowercase letters, digits or `_`). @internal */
export function checkPolecatName(value: unknown, path: string): string {
  if (typeof value !== 'string' || !POLECAT_NAME.test(value)) {
    fail(
      'INVALID_OPTION',
      path,
      `must be 1 to 31 lowercase letters, digits or '_', starting with a letter (no '-': it separates rig and polecat in session names); got ${describe(value)}`,
    );
  }
  return value;
}

/** A polecat's session name: `<rig>-<name>`. */
export function sessionName(rig: string, name: string): string {
  return `${rig}-${name}`;
}

/** The polecat name part of an agent id `<rig>/<name>`. */
export function polecatName(agent: string): string {
  return agent.slice(agent.indexOf('/') + 1);
}

/** The rig part of an agent id `<rig>/<name>`. */
export function rigOfAgent(agent: string): string {
  return agent.slice(0, agent.indexOf('/'));
}

/** The session of an agent id `<rig>/<name>`: `<rig>-<name>`. */
export function agentSession(agent: string): string {
  const slash = agent.indexOf('/');
  return sessionName(agent.slice(0, slash), agent.slice(slash + 1));
}

/**
 * The system ids of the tree's fixed actors (`system.get(id)`); each is also the actor's child
 * id under its supervisor.
 */
export const SYSTEM = {
  deacon: 'deacon',
  patrol: 'deacon-patrol',
  lifecycle: 'lifecycle',
  heartbeat: 'heartbeat',
} as const;

/** The id (and system id) of a rig's Witness supervisor under the Deacon. */
export function witnessId(rig: string): string {
  return `witness-${rig}`;
}

/** The rig of a Witness child id, or undefined for another child. */
export function rigOfWitness(childId: string): string | undefined {
  return childId.startsWith('witness-') ? childId.slice('witness-'.length) : undefined;
}

/** The system id of a rig's survey actor (the Witness's `watch` child). */
export function watchId(rig: string): string {
  return `watch-${rig}`;
}

/** The child id of a polecat actor under its rig's Witness. */
export function polecatChildId(name: string): string {
  return `polecat-${name}`;
}

/** Whether a Witness child id is a polecat's. */
export function isPolecatChild(childId: string): boolean {
  return childId.startsWith('polecat-');
}

/** The child id of a Witness's survey actor (its system id is {@link watchId}). */
export const WATCH_CHILD = 'watch';

/** A fresh child id for one Boot run under the Deacon (Boot is temporary: one per situation). */
export function bootChildId(now: number, random: () => number): string {
  return `boot-${now}-${Math.floor(random() * 1e6)}`;
}

/** The child id of a user poller under the Daemon. */
export function pollerChildId(name: string): string {
  return `poller-${name}`;
}
