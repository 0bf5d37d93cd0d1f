import type {
  FollowedOutput,
  FollowOptions,
  SessionDriver,
  SessionSpec,
  SessionStatus,
  StopOptions,
} from '../driver/SessionDriver';
import { DriverError } from '../errors';
import { TOWN_LABEL } from './names';

/** Whether a session carries another town's label (one without a town label is nobody's). */
function ofAnotherTown(status: SessionStatus, townId: string): boolean {
  const label = status.labels?.[TOWN_LABEL];
  return label !== undefined && label !== townId;
}

/** What this town is told of a session that is another town's: nothing is there. */
function absent(status: SessionStatus): SessionStatus {
  return {
    name: status.name,
    state: 'missing',
    ...(status.host === undefined ? {} : { host: status.host }),
  };
}

/**
 * The driver as one town sees it, when the town has an id: every session it starts carries the
 * id as its `town` label, and a session labelled with another town's id does not exist for it.
 * So two towns on one session space (one tmux server) never stop, adopt, nudge, read or count
 * each other's sessions: `list` leaves them out, `status` answers `missing`, `stop` leaves them
 * alone, and `nudge` and `capture` fail with `NOT_RUNNING` as for a missing session. A session
 * without a town label (started before towns had ids) is still the town's to adopt.
 *
 * A session name is one per session space: while another town's running session holds the name
 * this town's agent needs, `start` fails with `UNAVAILABLE` (not the bead's fault, so not one of
 * its tries: the polecat's supervisor retries it with backoff) and the session starts once the
 * other one has ended (an exited session of any town is replaced, as the driver contract says).
 * Looking and acting are two driver calls; only the other town acting on the same name in
 * between could slip through, which separate session spaces (a socket per town) rule out.
 *
 * @param driver - the driver the town was given.
 * @param townId - the town's id (checked by the town's options).
 * @returns a driver that sees only this town's sessions (and unlabelled ones).
 */
export function townDriver(driver: SessionDriver, townId: string): SessionDriver {
  const held = (status: SessionStatus) =>
    new DriverError({
      code: 'UNAVAILABLE',
      message: `session name ${status.name} is held by a ${status.state} session of another town (${status.labels?.[TOWN_LABEL]}) on this ${driver.kind} driver; this town (${townId}) never touches it and starts its own once that one has ended. Give each town a session space of its own (for tmux, its own socket)`,
    });
  /** Refuses, as a driver refuses a missing session, to act on another town's session. */
  const ours = async (name: string, what: string) => {
    const status = await driver.status(name);
    if (ofAnotherTown(status, townId))
      throw new DriverError({
        code: 'NOT_RUNNING',
        message: `session ${name} is not this town's (it belongs to town ${status.labels?.[TOWN_LABEL]}); nothing to ${what}`,
      });
  };
  const scoped: SessionDriver = {
    kind: driver.kind,
    async start(spec: SessionSpec): Promise<SessionStatus> {
      // An exited one is replaced, as the driver replaces any exited session: waiting for its
      // town to clear it could wait forever (a finished session stays until replaced).
      const before = await driver.status(spec.name);
      if (before.state === 'running' && ofAnotherTown(before, townId)) throw held(before);
      let started: SessionStatus;
      try {
        started = await driver.start({
          ...spec,
          labels: { ...(spec.labels ?? {}), [TOWN_LABEL]: townId },
        });
      } catch (error) {
        if (error instanceof DriverError && error.code === 'EXISTS') {
          const now = await driver.status(spec.name);
          if (now.state === 'running' && ofAnotherTown(now, townId)) throw held(now);
        }
        throw error;
      }
      // Start is idempotent by name and epoch: a session of another town with the same pair
      // (each town counts its own epochs) is answered as if started; it is not this town's.
      if (ofAnotherTown(started, townId)) throw held(started);
      return started;
    },
    async status(name: string): Promise<SessionStatus> {
      const status = await driver.status(name);
      return ofAnotherTown(status, townId) ? absent(status) : status;
    },
    async list(): Promise<SessionStatus[]> {
      return (await driver.list()).filter((s) => !ofAnotherTown(s, townId));
    },
    async nudge(name: string, text: string): Promise<void> {
      await ours(name, 'nudge');
      return driver.nudge(name, text);
    },
    async capture(name: string, options?: { lines?: number }): Promise<string[]> {
      await ours(name, 'capture');
      return driver.capture(name, options);
    },
    ...(typeof driver.follow === 'function'
      ? {
          follow: async (name: string, options?: FollowOptions): Promise<FollowedOutput> => {
            await ours(name, 'follow');
            return (driver.follow as NonNullable<SessionDriver['follow']>)(name, options);
          },
        }
      : {}),
    async stop(name: string, options?: StopOptions): Promise<void> {
      // Stopping a missing session is not an error, and another town's is missing to this one.
      if (ofAnotherTown(await driver.status(name), townId)) return;
      return driver.stop(name, options);
    },
  };
  if (typeof driver.close === 'function') scoped.close = driver.close.bind(driver);
  return scoped;
}
